"""The coverage collector on Cobertura XML that coverage.py writes at test time.

Expected values come from coverage.py's JSON report of the same run: another reporter of the
same data, read here with ``json``, not through the collector's Cobertura parser.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import quality_reports as qr
from implmon.components.collectors.coverage import CoverageCollector

COMPONENTS = {"samplepkg": "core", "samplepkg.textio": "text"}


@pytest.fixture(scope="module")
def coverage_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    root = tmp_path_factory.mktemp("coverage")
    project = qr.copy_project(root)
    qr.coverage_reports(project, root / "coverage.xml", root / "coverage.json")
    return root, json.loads((root / "coverage.json").read_text())


def collector(base: Path, name: str = "coverage.xml", **settings: object) -> CoverageCollector:
    return CoverageCollector(
        CoverageCollector.Settings(kind="coverage", name="cov", paths=[name], **settings),
        base_dir=base,
    )


def expected_by_component(report: dict[str, object]) -> dict[str, dict[str, float]]:
    """Line and branch ratios per component from coverage.py's JSON per-file summaries."""
    sums: dict[str, list[int]] = {}
    files = report["files"]
    assert isinstance(files, dict)
    for filename, data in files.items():
        package = str(Path(filename).parent).replace("/", ".")
        component = COMPONENTS[package]
        summary = data["summary"]
        acc = sums.setdefault(component, [0, 0, 0, 0])
        acc[0] += summary["covered_lines"]
        acc[1] += summary["num_statements"]
        acc[2] += summary["covered_branches"]
        acc[3] += summary["num_branches"]
    return {c: {"line": a[0] / a[1], "branch": a[2] / a[3]} for c, a in sums.items()}


def test_total_matches_coverage_py(coverage_run: tuple[Path, dict[str, object]]) -> None:
    base, report = coverage_run
    samples = collector(base).collect_now()
    qr.assert_in_catalogue(samples)
    totals = report["totals"]
    assert isinstance(totals, dict)
    assert qr.value(samples, "implmon_quality_coverage_ratio", component="all", kind="line") == (
        pytest.approx(totals["covered_lines"] / totals["num_statements"])
    )
    assert qr.value(
        samples, "implmon_quality_coverage_ratio", component="all", kind="branch"
    ) == pytest.approx(totals["covered_branches"] / totals["num_branches"])
    # Something is left uncovered on purpose, so the figures are not trivially 1.
    assert totals["covered_lines"] < totals["num_statements"]


def test_packages_map_to_components(coverage_run: tuple[Path, dict[str, object]]) -> None:
    base, report = coverage_run
    samples = collector(base, components=COMPONENTS).collect_now()
    for component, ratios in expected_by_component(report).items():
        for kind, ratio in ratios.items():
            assert qr.value(
                samples, "implmon_quality_coverage_ratio", component=component, kind=kind
            ) == pytest.approx(ratio)


def test_unmapped_packages_only_count_in_the_total(
    coverage_run: tuple[Path, dict[str, object]],
) -> None:
    base, _ = coverage_run
    only_text = collector(base, components={"samplepkg.textio": "text"}).collect_now()
    assert {
        s.labels["component"] for s in only_text if s.metric == "implmon_quality_coverage_ratio"
    } == {"all", "text"}
    with_rest = collector(
        base, components={"samplepkg.textio": "text"}, unmapped_component="other"
    ).collect_now()
    assert {
        s.labels["component"] for s in with_rest if s.metric == "implmon_quality_coverage_ratio"
    } == {"all", "text", "other"}


def test_timestamp_is_the_reports_own(coverage_run: tuple[Path, dict[str, object]]) -> None:
    base, _ = coverage_run
    samples = collector(base).collect_now()
    millis = ET.parse(base / "coverage.xml").getroot().get("timestamp")
    assert millis is not None
    assert qr.value(samples, "implmon_quality_report_timestamp_seconds", source="cov") == (
        int(millis) / 1000
    )


def test_no_branch_series_without_branch_data(tmp_path: Path) -> None:
    project = qr.copy_project(tmp_path)
    qr.run(
        project, ["-m", "coverage", "run", "--source=samplepkg", "-m", "pytest", "-q", "tests_unit"]
    )
    qr.run(project, ["-m", "coverage", "xml", "-o", str(tmp_path / "coverage.xml")])
    samples = collector(tmp_path).collect_now()
    kinds = {s.labels["kind"] for s in samples if s.metric == "implmon_quality_coverage_ratio"}
    assert kinds == {"line"}


def test_gcovr_shape_with_doctype_and_seconds_timestamp() -> None:
    """A hand-written sample of gcovr's Cobertura (labelled so in the file): its DOCTYPE is
    accepted (never fetched), its seconds timestamp is not taken for milliseconds, and the
    per-component figures add up to the root's counts."""
    path = qr.STATIC_REPORTS / "gcovr-cobertura.xml"
    samples = collector(
        path.parent,
        path.name,
        components={"src.util": "util", "src": "core"},
    ).collect_now()
    root = ET.parse(path).getroot()
    assert qr.value(samples, "implmon_quality_report_timestamp_seconds", source="cov") == (
        float(root.get("timestamp", "nan"))
    )
    assert qr.value(samples, "implmon_quality_coverage_ratio", component="all", kind="line") == (
        int(root.get("lines-covered", "0")) / int(root.get("lines-valid", "1"))
    )
    lines = {
        package.get("name"): [int(line.get("hits", "0")) > 0 for line in package.iter("line")]
        for package in root.iter("package")
    }
    assert qr.value(samples, "implmon_quality_coverage_ratio", component="util", kind="line") == (
        sum(lines["src.util"]) / len(lines["src.util"])
    )
    assert sum(map(len, lines.values())) == int(root.get("lines-valid", "0"))
