"""The junit collector on reports pytest writes at test time, and on other writers' dialects."""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET  # our own trusted test output
from datetime import datetime
from pathlib import Path

import pytest
import quality_reports as qr
from implmon.components.collectors.junit import JUnitCollector, parse_junit_file
from implmon.metrics import Sample

SUITES = {"unit": ("tests_unit", {}), "integration": ("tests_integration", {"SAMPLE_FAIL": "1"})}


@pytest.fixture(scope="module")
def pytest_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, int]]]:
    """Two real pytest runs (suites ``unit`` and ``integration``, the second failing)."""
    root = tmp_path_factory.mktemp("junit")
    project = qr.copy_project(root)
    reports = root / "reports"
    reports.mkdir()
    summaries = {
        suite: qr.pytest_junit(project, tests, suite, reports / f"{suite}.xml", env)
        for suite, (tests, env) in SUITES.items()
    }
    return reports, summaries


def collector(base: Path, **settings: object) -> JUnitCollector:
    return JUnitCollector(
        JUnitCollector.Settings(kind="junit", name="tests", paths=["*.xml"], **settings),
        base_dir=base,
    )


def test_counts_match_pytest_summary(pytest_run: tuple[Path, dict[str, dict[str, int]]]) -> None:
    reports, summaries = pytest_run
    samples = collector(reports).collect_now()
    qr.assert_in_catalogue(samples)
    for suite, summary in summaries.items():
        for result, count in summary.items():
            assert qr.value(samples, "implmon_quality_tests", suite=suite, result=result) == count
    assert summaries["integration"]["failed"] == 1  # the fixture did fail on purpose


def test_durations_and_timestamp_come_from_the_report(
    pytest_run: tuple[Path, dict[str, dict[str, int]]],
) -> None:
    reports, _ = pytest_run
    samples = collector(reports).collect_now()
    stamps = []
    for suite in SUITES:
        element = ET.parse(reports / f"{suite}.xml").find("testsuite")
        assert element is not None
        assert qr.value(samples, "implmon_quality_suite_duration_seconds", suite=suite) == (
            float(element.get("time", "nan"))
        )
        stamps.append(datetime.fromisoformat(element.get("timestamp", "")).timestamp())
    newest = qr.value(samples, "implmon_quality_report_timestamp_seconds", source="tests")
    assert newest == max(stamps)
    age = qr.value(samples, "implmon_quality_report_age_seconds", source="tests")
    assert 0 <= age < 600
    assert qr.value(samples, "implmon_quality_report_files", source="tests") == 2
    assert qr.value(samples, "implmon_quality_report_errors_total", source="tests") == 0
    assert qr.value(samples, "implmon_quality_report_stale", source="tests") == 0


def test_no_test_names_as_labels_by_default(
    pytest_run: tuple[Path, dict[str, dict[str, int]]],
) -> None:
    reports, _ = pytest_run
    samples = collector(reports).collect_now()
    assert all("test" not in s.labels for s in samples)


def test_per_test_breakdown_is_capped_and_keeps_failures(
    pytest_run: tuple[Path, dict[str, dict[str, int]]],
) -> None:
    reports, summaries = pytest_run
    samples = collector(reports, per_test=True, max_tests=3).collect_now()
    qr.assert_in_catalogue(samples)
    failed = [s for s in samples if s.metric == "implmon_quality_test_failed"]
    assert len(failed) == 3
    total_tests = sum(sum(s.values()) for s in summaries.values())
    assert total_tests > 3  # so the cap did cut
    assert sum(s.value for s in failed) == summaries["integration"]["failed"]
    failing = next(s for s in failed if s.value == 1)
    assert failing.labels == {
        "suite": "integration",
        "test": "tests_integration.test_flow.test_fails_on_demand",
    }


def test_file_label_for_pytest_default_suite_names(tmp_path: Path) -> None:
    project = qr.copy_project(tmp_path)
    summary = qr.pytest_junit(project, "tests_unit", "pytest", tmp_path / "lint-job.xml")
    samples = collector(tmp_path, suite_label="file").collect_now()
    assert (
        qr.value(samples, "implmon_quality_tests", suite="lint-job", result="passed")
        == (summary["passed"])
    )


def test_parses_only_when_the_file_changes(
    tmp_path: Path, pytest_run: tuple[Path, dict[str, dict[str, int]]]
) -> None:
    reports, _ = pytest_run
    copy = tmp_path / "unit.xml"
    copy.write_bytes((reports / "unit.xml").read_bytes())
    parsed: list[Path] = []

    class Counting(JUnitCollector):
        def parse(self, path: Path, data: bytes):  # type: ignore[no-untyped-def]
            parsed.append(path)
            return super().parse(path, data)

    c = Counting(Counting.Settings(kind="junit", name="t", paths=["*.xml"]), base_dir=tmp_path)
    first = c.collect_now()
    second = c.collect_now()
    assert parsed == [copy]

    def without_age(samples: list[Sample]) -> list[Sample]:
        return [s for s in samples if s.metric != "implmon_quality_report_age_seconds"]

    assert without_age(first) == without_age(second)
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    c.collect_now()
    assert parsed == [copy, copy]


def test_bad_file_keeps_last_good_values_stale(
    tmp_path: Path,
    pytest_run: tuple[Path, dict[str, dict[str, int]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    reports, summaries = pytest_run
    target = tmp_path / "integration.xml"
    good = (reports / "integration.xml").read_bytes()
    target.write_bytes(good)
    c = collector(tmp_path)
    before = c.collect_now()
    target.write_bytes(good[: len(good) // 2])  # truncated mid-write
    with caplog.at_level(logging.WARNING):
        after = c.collect_now()
        again = c.collect_now()  # the same broken version: no second line, no second count
    assert [r.getMessage() for r in caplog.records if str(target) in r.getMessage()] == [
        caplog.records[0].getMessage()
    ]
    assert "not well-formed XML" in caplog.records[0].getMessage()
    assert qr.value(after, "implmon_quality_report_errors_total", source="tests") == 1
    assert qr.value(again, "implmon_quality_report_errors_total", source="tests") == 1
    assert qr.value(after, "implmon_quality_report_stale", source="tests") == 1
    for metric in ("implmon_quality_tests", "implmon_quality_suite_duration_seconds"):
        assert [s for s in after if s.metric == metric] == [s for s in before if s.metric == metric]
    assert (
        qr.value(after, "implmon_quality_tests", suite="integration", result="failed")
        == (summaries["integration"]["failed"])
    )
    target.write_bytes(good)
    os.utime(target, ns=(0, target.stat().st_mtime_ns + 1_000_000_000))
    healed = c.collect_now()
    assert qr.value(healed, "implmon_quality_report_stale", source="tests") == 0
    assert qr.value(healed, "implmon_quality_report_errors_total", source="tests") == 1


@pytest.mark.parametrize("name", ["surefire.xml", "gotestsum.xml", "jest-junit.xml"])
def test_other_writers_dialects(name: str) -> None:
    """Hand-written samples of other tools' formats (labelled so in each file): the collector's
    counts from <testcase> elements agree with the counts the format carries in attributes."""
    path = qr.STATIC_REPORTS / name
    report = parse_junit_file(path)
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    assert len(report.suites) == len(suites)
    for parsed, element in zip(report.suites, suites, strict=True):
        assert parsed.name == element.get("name")
        assert sum(parsed.counts.values()) == int(element.get("tests", "-1"))
        assert parsed.counts["failed"] == int(element.get("failures", "-1"))
        # gotestsum leaves out "skipped"; the others carry every count.
        assert parsed.counts["error"] == int(element.get("errors", "0"))
        if element.get("skipped") is not None:
            assert parsed.counts["skipped"] == int(element.get("skipped", "-1"))


def test_suites_are_capped_failures_first(tmp_path: Path) -> None:
    """Many suites (as Surefire writes, one file per class): the failing ones keep their label,
    the rest add up under "other", and no test is lost from the totals."""
    sizes = {f"com.example.Test{i:02d}": i % 4 + 1 for i in range(12)}
    failing = "com.example.Test07"
    for name, n in sizes.items():
        cases = "".join(
            f'<testcase name="t{j}" classname="{name}" time="0.1">'
            + ("<failure/>" if name == failing and j == 0 else "")
            + "</testcase>"
            for j in range(n)
        )
        (tmp_path / f"TEST-{name}.xml").write_text(
            f'<testsuite name="{name}" tests="{n}">{cases}</testsuite>'
        )
    samples = collector(tmp_path, max_suites=4).collect_now()
    suites = {s.labels["suite"] for s in samples if s.metric == "implmon_quality_tests"}
    assert len(suites) == 4 and failing in suites and "other" in suites
    total = sum(s.value for s in samples if s.metric == "implmon_quality_tests")
    assert total == sum(sizes.values())
    failed = sum(
        s.value
        for s in samples
        if s.metric == "implmon_quality_tests" and s.labels["result"] == "failed"
    )
    assert failed == 1
    assert qr.value(samples, "implmon_quality_tests", suite=failing, result="failed") == 1
