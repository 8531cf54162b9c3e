"""The quality gate and trend analyzers on reports the real tools write from the sample project.

Thresholds are set just above or just below the figures the run produced (read from the tools'
own JSON outputs or pytest's summary), so a pass and a fail are both exercised without
hard-coding what the sample project measures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import quality_reports as qr
from implmon.component import MonitoringType, Severity
from implmon.components.analyzers.quality_gate import (
    GateThresholds,
    QualityFacts,
    QualityGateAnalyzer,
    QualityGateSettings,
    evaluate_gate,
    gate_hook,
)
from implmon.components.analyzers.trend import TrendAnalyzer, TrendSettings
from implmon.components.collectors.coverage import CoverageCollector
from implmon.components.collectors.junit import JUnitCollector
from implmon.components.collectors.sarif import SarifCollector
from implmon.metrics import Sample


class Reports:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.project = qr.copy_project(root)
        self.failed = qr.pytest_junit(
            self.project,
            "tests_integration",
            "integration",
            root / "junit-integration.xml",
            {"SAMPLE_FAIL": "1"},
        )["failed"]
        qr.coverage_reports(self.project, root / "coverage.xml", root / "coverage.json")
        self.coverage = json.loads((root / "coverage.json").read_text())["totals"]
        self.diagnostics = qr.ruff_reports(self.project, root / "ruff.sarif")

    def samples(self) -> list[Sample]:
        out: list[Sample] = []
        for c in (
            JUnitCollector(
                JUnitCollector.Settings(kind="junit", name="tests", paths=["junit-*.xml"]),
                base_dir=self.root,
            ),
            CoverageCollector(
                CoverageCollector.Settings(kind="coverage", name="cov", paths=["coverage.xml"]),
                base_dir=self.root,
            ),
            SarifCollector(
                SarifCollector.Settings(kind="sarif", name="lint", paths=["*.sarif"]),
                base_dir=self.root,
            ),
        ):
            out.extend(c.collect_now())
        return out


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Reports:
    return Reports(tmp_path_factory.mktemp("quality"))


def test_facts_from_samples_equal_facts_from_files(reports: Reports) -> None:
    from_samples = QualityFacts.from_samples(reports.samples())
    from_files = QualityFacts.from_reports(
        junit=[reports.root / "junit-integration.xml"],
        coverage=[reports.root / "coverage.xml"],
        sarif=[reports.root / "ruff.sarif"],
    )
    assert from_samples == from_files
    line = reports.coverage["covered_lines"] / reports.coverage["num_statements"]
    assert from_files.line_coverage == pytest.approx(line)
    assert from_files.failed_tests == reports.failed == 1
    assert from_files.findings is not None
    assert sum(from_files.findings.values()) == len(reports.diagnostics)


def test_gate_passes_and_fails_around_the_measured_figures(reports: Reports) -> None:
    facts = QualityFacts.from_samples(reports.samples())
    assert facts.line_coverage is not None and facts.failed_tests is not None
    lenient = GateThresholds(
        min_line_coverage=facts.line_coverage - 0.01,
        max_failed_tests=facts.failed_tests,
        max_findings={"critical": 0},
    )
    strict = GateThresholds(
        min_line_coverage=facts.line_coverage + 0.01,
        max_failed_tests=facts.failed_tests - 1,
        max_findings={"high": 0},
    )
    assert evaluate_gate(lenient, facts).passed
    result = evaluate_gate(strict, facts)
    assert not result.passed
    assert len(result.violations) == 3
    assert [c.passed for c in result.checks] == [False, False, False]


def test_missing_reports_fail_the_gate_unless_told_otherwise() -> None:
    facts = QualityFacts(failed_tests=0)
    assert not evaluate_gate(GateThresholds(min_line_coverage=0.5), facts).passed
    assert evaluate_gate(GateThresholds(min_line_coverage=0.5, require_reports=False), facts).passed
    assert evaluate_gate(GateThresholds(min_line_coverage=0.5), facts).violations == (
        "no line coverage report",
    )


def test_analyzer_gate_per_build_type(reports: Reports) -> None:
    facts = QualityFacts.from_samples(reports.samples())
    assert facts.failed_tests is not None
    analyzer = QualityGateAnalyzer(
        QualityGateSettings(
            kind="quality_gate",
            name="main",
            build_types={
                "development": GateThresholds(max_failed_tests=facts.failed_tests),
                "production": GateThresholds(max_failed_tests=0, severity=Severity.CRITICAL),
            },
        )
    )
    result = analyzer.analyze(reports.samples())
    qr.assert_in_catalogue(list(result.samples))
    samples = list(result.samples)
    assert qr.value(samples, "implmon_quality_gate_passed", build_type="development") == 1
    assert qr.value(samples, "implmon_quality_gate_passed", build_type="production") == 0
    assert qr.value(samples, "implmon_quality_gate_violations", build_type="production") == 1
    (finding,) = result.findings
    assert finding.alertname == "ImplmonQualityGateViolated"
    assert finding.severity is Severity.CRITICAL
    assert finding.monitoring_type is MonitoringType.QUALITY
    assert finding.labels == {"gate": "main", "build_type": "production"}
    assert f"failed tests {facts.failed_tests} exceed 0" in finding.description


def test_unknown_severity_in_thresholds_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="'severe' is not one of critical"):
        GateThresholds(max_findings={"severe": 0})


def test_trend_flags_coverage_and_test_count_drops(tmp_path: Path) -> None:
    """Two real runs: the full unit suite, then only part of it (-k clamp): fewer tests ran
    and less code was covered, as when a suite is half-skipped."""
    project = qr.copy_project(tmp_path)
    cov = CoverageCollector(
        CoverageCollector.Settings(kind="coverage", name="cov", paths=["coverage.xml"]),
        base_dir=tmp_path,
    )
    tests = JUnitCollector(
        JUnitCollector.Settings(kind="junit", name="tests", paths=["unit.xml"]), base_dir=tmp_path
    )
    trend = TrendAnalyzer(
        TrendSettings(kind="trend", name="trend", coverage_source="cov", tests_source="tests")
    )

    def run(select: str) -> tuple[list[Sample], set[str], float, int]:
        args = [
            "-m",
            "coverage",
            "run",
            "--branch",
            "--source=samplepkg",
            "-m",
            "pytest",
            "-q",
            "tests_unit",
            f"--junitxml={tmp_path / 'unit.xml'}",
            "-o",
            "junit_suite_name=unit",
        ]
        proc = qr.run(project, [*args, "-k", select] if select else args)
        qr.run(project, ["-m", "coverage", "json", "-o", str(tmp_path / "cov.json")])
        qr.run(project, ["-m", "coverage", "xml", "-o", str(tmp_path / "coverage.xml")])
        totals = json.loads((tmp_path / "cov.json").read_text())["totals"]
        result = trend.analyze([*cov.collect_now(), *tests.collect_now()])
        return (
            list(result.samples),
            {f.alertname for f in result.findings},
            totals["covered_lines"] / totals["num_statements"],
            sum(qr.summary_counts(proc.stdout).values()),
        )

    first, first_findings, full_line, full_tests = run("")
    assert not first_findings
    assert not [s for s in first if s.metric == "implmon_quality_coverage_change_ratio"]
    second, findings, part_line, part_tests = run("clamp")
    assert findings == {"ImplmonCoverageDecreased", "ImplmonTestCountDecreased"}
    assert part_line < full_line and part_tests < full_tests
    assert qr.value(
        second, "implmon_quality_coverage_change_ratio", component="all", kind="line"
    ) == pytest.approx(part_line - full_line)
    assert qr.value(second, "implmon_quality_tests_change", suite="unit") == (
        part_tests - full_tests
    )
    # The same reports seen again: nothing new, the change and the findings stay.
    again = trend.analyze([*cov.collect_now(), *tests.collect_now()])
    assert {f.alertname for f in again.findings} == findings
    # A new report with the same figures is a new report: the change becomes 0.
    third, third_findings, _, _ = run("clamp")
    assert not third_findings
    assert qr.value(third, "implmon_quality_tests_change", suite="unit") == 0


async def test_validator_fails_a_build_on_the_same_gate(reports: Reports) -> None:
    """The real ImplementationValidator with the gate as its quality hook, over the same files."""
    from implmon.events import ValidationOutcome, ValidationType
    from implmon.validator import ImplementationValidator

    files = {
        "junit": [reports.root / "junit-integration.xml"],
        "coverage": [reports.root / "coverage.xml"],
        "sarif": [reports.root / "ruff.sarif"],
    }
    facts = QualityFacts.from_reports(**files)
    assert facts.failed_tests is not None and facts.line_coverage is not None
    lenient = GateThresholds(
        max_failed_tests=facts.failed_tests, min_line_coverage=facts.line_coverage
    )
    strict = GateThresholds(max_failed_tests=0, min_line_coverage=facts.line_coverage)
    passing = ImplementationValidator(
        component=None, system=None, quality=gate_hook(lenient, **files)
    )
    failing = ImplementationValidator(
        component=None, system=None, quality=gate_hook(strict, **files)
    )
    assert (await passing.validate_implementation([])).passed
    report = await failing.validate_implementation([])
    result = report.results[ValidationType.QUALITY]
    assert result.outcome is ValidationOutcome.FAILED
    assert [(c.outcome, c.detail) for c in result.checks] == [
        (ValidationOutcome.PASSED, f"line coverage {facts.line_coverage:.1%}"),
        (ValidationOutcome.FAILED, f"failed tests {facts.failed_tests} exceed 0"),
    ]
    # An unreadable report: the check could not run, which is "error", not "passed".
    (reports.root / "empty.xml").write_bytes(b"")
    broken = ImplementationValidator(
        component=None, system=None, quality=gate_hook(strict, junit=[reports.root / "empty.xml"])
    )
    report = await broken.validate_implementation([])
    assert report.results[ValidationType.QUALITY].outcome is ValidationOutcome.ERROR
