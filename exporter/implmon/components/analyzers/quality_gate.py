"""Analyzer ``quality_gate``: coverage, failed tests and findings against thresholds per build type.

The seed's build types (development, testing, staging, production) each get their own
:class:`GateThresholds`: a development build may carry warnings that a production build may not.
Every cycle the analyzer evaluates the latest reports' figures (:class:`QualityFacts`, from the
samples of the junit, coverage and sarif collectors) against every configured build type:

- ``implmon_quality_gate_passed{gate,build_type}``: 1 passed, 0 failed;
- ``implmon_quality_gate_violations{gate,build_type}``: how many thresholds are violated;
- the finding ``ImplmonQualityGateViolated`` (quality monitoring) per failing build type, with
  the violations in its description and the build type's ``severity``.

A threshold with no data to check (no coverage report, say) is a violation when
``require_reports`` is true, the default: a gate that cannot see is not a gate that passed.

The evaluation is a plain function, :func:`evaluate_gate`, for the ``ImplementationValidator``'s
quality validation, which fails a build on the same gate (:func:`gate_hook` wraps it as the
validator's ``quality`` hook)::

    from implmon.components.analyzers.quality_gate import (
        GateThresholds, QualityFacts, evaluate_gate)

    facts = QualityFacts.from_reports(junit=[Path("junit.xml")], coverage=[Path("coverage.xml")],
                                      sarif=[Path("ruff.sarif")])
    result = evaluate_gate(GateThresholds(min_line_coverage=0.8, max_failed_tests=0,
                                          max_findings={"critical": 0}), facts)
    result.passed, [(c.name, c.passed, c.detail) for c in result.checks]

>>> facts = QualityFacts(line_coverage=0.72, failed_tests=0, findings={"critical": 1})
>>> result = evaluate_gate(GateThresholds(min_line_coverage=0.8, max_findings={"critical": 0}),
...                        facts)
>>> result.passed, result.violations
(False, ('line coverage 72.0% is below 80.0%', 'critical findings 1 exceed 0'))
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from implmon.component import (
    Analysis,
    Analyzer,
    ComponentSettings,
    Finding,
    MonitoringType,
    Severity,
)
from implmon.components.collectors.coverage import CoverageCounts, parse_cobertura_file
from implmon.components.collectors.junit import parse_junit_file
from implmon.components.collectors.sarif import (
    CODE_SEVERITIES,
    SECURITY_SEVERITIES,
    parse_sarif_file,
)
from implmon.events import BuildType
from implmon.metrics import Sample

if TYPE_CHECKING:  # the validator is imported when a hook runs, not with the analyzer
    from implmon.validator import Check

__all__ = [
    "GateCheck",
    "GateResult",
    "GateThresholds",
    "QualityFacts",
    "QualityGateAnalyzer",
    "QualityGateSettings",
    "evaluate_gate",
    "gate_hook",
]

SEVERITIES = SECURITY_SEVERITIES + CODE_SEVERITIES


class GateThresholds(BaseModel):
    """The thresholds of one build type; a threshold left out is not checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_line_coverage: float | None = Field(default=None, ge=0.0, le=1.0)
    min_branch_coverage: float | None = Field(default=None, ge=0.0, le=1.0)
    max_failed_tests: int | None = Field(default=None, ge=0)
    """Failed plus errored tests, over all suites."""
    max_findings: dict[str, int] = {}
    """Severity to the most findings allowed, over all tools: security severities (critical,
    high, medium, low) and SARIF levels of code findings (error, warning, note, none)."""
    require_reports: bool = True
    """A threshold with no data to check counts as violated."""
    severity: Severity = Severity.WARNING
    """Severity of the finding when this build type's gate fails."""

    @field_validator("max_findings")
    @classmethod
    def _known_severities(cls, value: dict[str, int]) -> dict[str, int]:
        for severity, limit in value.items():
            if severity not in SEVERITIES:
                raise ValueError(f"{severity!r} is not one of {', '.join(SEVERITIES)}")
            if limit < 0:
                raise ValueError(f"max_findings.{severity} must be >= 0")
        return value


@dataclass(frozen=True, slots=True)
class QualityFacts:
    """The figures a gate checks; None means no report said."""

    line_coverage: float | None = None
    branch_coverage: float | None = None
    failed_tests: int | None = None
    findings: dict[str, int] | None = None

    @classmethod
    def from_samples(
        cls, samples: Iterable[Sample], coverage_component: str = "all"
    ) -> QualityFacts:
        """Figures from a cycle's samples (the junit, coverage and sarif collectors')."""
        coverage: dict[str, float] = {}
        failed: int | None = None
        findings: dict[str, int] | None = None
        for s in samples:
            if not isinstance(s.value, int | float):
                continue
            if s.metric == "implmon_quality_coverage_ratio":
                if s.labels.get("component") == coverage_component:
                    coverage[s.labels.get("kind", "")] = float(s.value)
            elif s.metric == "implmon_quality_tests":
                failed = failed or 0
                if s.labels.get("result") in ("failed", "error"):
                    failed += int(s.value)
            elif s.metric == "implmon_quality_findings":
                findings = findings if findings is not None else dict.fromkeys(SEVERITIES, 0)
                severity = s.labels.get("severity", "")
                findings[severity] = findings.get(severity, 0) + int(s.value)
        return cls(coverage.get("line"), coverage.get("branch"), failed, findings)

    @classmethod
    def from_reports(
        cls,
        *,
        junit: Iterable[Path] = (),
        coverage: Iterable[Path] = (),
        sarif: Iterable[Path] = (),
    ) -> QualityFacts:
        """Figures straight from report files, parsed as the collectors parse them.

        Raises :class:`~implmon.components.collectors.reports.ReportError` (naming the problem)
        for an unusable file; the caller adds which file it was.
        """
        junit, coverage, sarif = list(junit), list(coverage), list(sarif)
        failed = None
        if junit:
            failed = 0
            for path in junit:
                totals = parse_junit_file(path).totals()
                failed += totals["failed"] + totals["error"]
        line = branch = None
        if coverage:
            counts = sum((parse_cobertura_file(p).total for p in coverage), CoverageCounts())
            line, branch = counts.ratio("line"), counts.ratio("branch")
        findings: dict[str, int] | None = None
        if sarif:
            findings = dict.fromkeys(SEVERITIES, 0)
            for path in sarif:
                for (_tool, severity, _category), n in parse_sarif_file(path).totals().items():
                    findings[severity] = findings.get(severity, 0) + n
        return cls(line, branch, failed, findings)


@dataclass(frozen=True, slots=True)
class GateCheck:
    """One threshold: what, whether it held, and the figures (maps onto a validator Check)."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class GateResult:
    """The outcome of one gate: passed when every check passed."""

    checks: tuple[GateCheck, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def violations(self) -> tuple[str, ...]:
        return tuple(c.detail for c in self.checks if not c.passed)


def evaluate_gate(thresholds: GateThresholds, facts: QualityFacts) -> GateResult:
    """Check ``facts`` against ``thresholds``: one :class:`GateCheck` per threshold set."""
    checks: list[GateCheck] = []
    missing = not thresholds.require_reports  # what a threshold without data yields

    for kind, minimum, actual in (
        ("line", thresholds.min_line_coverage, facts.line_coverage),
        ("branch", thresholds.min_branch_coverage, facts.branch_coverage),
    ):
        if minimum is None:
            continue
        name = f"{kind} coverage >= {minimum:.1%}"
        if actual is None:
            checks.append(GateCheck(name, missing, f"no {kind} coverage report"))
        elif actual < minimum:
            checks.append(
                GateCheck(name, False, f"{kind} coverage {actual:.1%} is below {minimum:.1%}")
            )
        else:
            checks.append(GateCheck(name, True, f"{kind} coverage {actual:.1%}"))

    if thresholds.max_failed_tests is not None:
        limit = thresholds.max_failed_tests
        name = f"failed tests <= {limit}"
        if facts.failed_tests is None:
            checks.append(GateCheck(name, missing, "no test report"))
        elif facts.failed_tests > limit:
            checks.append(
                GateCheck(name, False, f"failed tests {facts.failed_tests} exceed {limit}")
            )
        else:
            checks.append(GateCheck(name, True, f"failed tests {facts.failed_tests}"))

    for severity, limit in thresholds.max_findings.items():
        name = f"{severity} findings <= {limit}"
        if facts.findings is None:
            checks.append(GateCheck(name, missing, "no static-analysis report"))
            continue
        count = facts.findings.get(severity, 0)
        if count > limit:
            checks.append(GateCheck(name, False, f"{severity} findings {count} exceed {limit}"))
        else:
            checks.append(GateCheck(name, True, f"{severity} findings {count}"))
    return GateResult(tuple(checks))


def gate_hook(
    thresholds: GateThresholds,
    *,
    junit: Iterable[Path] = (),
    coverage: Iterable[Path] = (),
    sarif: Iterable[Path] = (),
) -> Callable[[object], Awaitable[list[Check]]]:
    """A quality validation hook for :class:`~implmon.validator.ImplementationValidator`: the
    gate over report files, read when the validation runs, one ``Check`` per threshold.

    An unusable report raises (the validator records ``error``: the check could not run).

    >>> from implmon.validator import ImplementationValidator
    >>> validator = ImplementationValidator(quality=gate_hook(GateThresholds(max_failed_tests=0)))
    """
    paths = (list(junit), list(coverage), list(sarif))

    async def quality_gate(_implementation: object) -> list[Check]:
        from implmon.events import ValidationOutcome
        from implmon.validator import Check

        facts = await asyncio.to_thread(
            QualityFacts.from_reports, junit=paths[0], coverage=paths[1], sarif=paths[2]
        )
        return [
            Check(
                f"quality gate: {c.name}",
                ValidationOutcome.PASSED if c.passed else ValidationOutcome.FAILED,
                c.detail,
            )
            for c in evaluate_gate(thresholds, facts).checks
        ]

    return quality_gate


class QualityGateSettings(ComponentSettings):
    build_types: dict[BuildType, GateThresholds] = Field(min_length=1)
    """Thresholds per build type; only the build types listed are evaluated."""
    coverage_component: str = "all"
    """The ``component`` of ``implmon_quality_coverage_ratio`` the coverage thresholds check."""


class QualityGateAnalyzer(Analyzer):
    """The quality gate over the latest reports, for every configured build type.

    >>> a = QualityGateAnalyzer(QualityGateSettings(kind="quality_gate", name="gate",
    ...     build_types={"production": {"max_failed_tests": 0}}))
    >>> failing = [Sample("implmon_quality_tests", {"suite": "unit", "result": "failed"}, 2.0)]
    >>> [(f.alertname, f.labels["build_type"]) for f in a.analyze(failing).findings]
    [('ImplmonQualityGateViolated', 'production')]
    """

    kind = "quality_gate"
    Settings = QualityGateSettings

    def __init__(self, settings: QualityGateSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.settings: QualityGateSettings = settings

    def analyze(self, samples: Sequence[Sample]) -> Analysis:
        facts = QualityFacts.from_samples(samples, self.settings.coverage_component)
        out: list[Sample] = []
        findings: list[Finding] = []
        for build_type, thresholds in sorted(self.settings.build_types.items()):
            result = evaluate_gate(thresholds, facts)
            labels = {"gate": self.name, "build_type": build_type.value}
            out.append(Sample("implmon_quality_gate_passed", labels, float(result.passed)))
            out.append(
                Sample("implmon_quality_gate_violations", labels, float(len(result.violations)))
            )
            if not result.passed:
                findings.append(
                    Finding(
                        alertname="ImplmonQualityGateViolated",
                        severity=thresholds.severity,
                        monitoring_type=MonitoringType.QUALITY,
                        summary=(
                            f"Quality gate {self.name} fails for {build_type.value} builds "
                            f"({len(result.violations)} violation(s))."
                        ),
                        description="; ".join(result.violations) + ".",
                        labels=labels,
                    )
                )
        return Analysis(out, findings)
