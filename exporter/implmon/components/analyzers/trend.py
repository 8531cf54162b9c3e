"""Analyzer ``trend``: coverage and test counts against the report before the latest one.

Coverage that slips a little with every merge never trips an absolute threshold until it is too
late; a count of tests that drops usually means a suite was skipped or not collected. This
analyzer remembers, per series, the value from the previous report and the latest one:

- ``implmon_quality_coverage_change_ratio{component,kind}``: latest coverage minus the previous
  report's (-0.02 is two percentage points lost);
- ``implmon_quality_tests_change{suite}``: tests in the latest report of the suite (every
  result) minus those in the previous one;
- findings ``ImplmonCoverageDecreased`` when coverage fell by more than ``max_coverage_drop``
  and ``ImplmonTestCountDecreased`` when a suite lost more than ``max_tests_drop`` tests
  (quality monitoring).

A new report is noticed through the report timestamp of the collector named in
``coverage_source``/``tests_source`` (``implmon_quality_report_timestamp_seconds{source}``),
so a new report with unchanged figures counts (the change becomes 0). Without a source, a new
report is noticed when the figures change, and a report identical to the previous one is not
seen as new. The history is in memory: after a restart, the first report has nothing to compare
with.

>>> a = TrendAnalyzer(TrendSettings(kind="trend", name="trend"))
>>> def cov(v): return [Sample("implmon_quality_coverage_ratio",
...                            {"component": "all", "kind": "line"}, v)]
>>> a.analyze(cov(0.80)).findings
[]
>>> [f.alertname for f in a.analyze(cov(0.75)).findings]
['ImplmonCoverageDecreased']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from implmon.component import (
    Analysis,
    Analyzer,
    ComponentSettings,
    Finding,
    MonitoringType,
    Severity,
)
from implmon.metrics import Sample

__all__ = ["TrendAnalyzer", "TrendSettings"]

Key = tuple[str, ...]


class TrendSettings(ComponentSettings):
    coverage_source: str | None = None
    """Name of the coverage collector, whose report timestamp tells a new report."""
    tests_source: str | None = None
    """Name of the junit collector, whose report timestamp tells a new report."""
    max_coverage_drop: float = Field(default=0.005, ge=0.0, le=1.0)
    """A coverage ratio falling by more than this (0.005: half a percentage point) is a finding."""
    max_tests_drop: int = Field(default=0, ge=0)
    """A suite losing more than this many tests is a finding."""
    severity: Severity = Severity.WARNING


@dataclass(slots=True)
class _Series:
    """Latest and previous report's values of one family, and what marked the latest."""

    current: dict[Key, float] = field(default_factory=dict)
    previous: dict[Key, float] = field(default_factory=dict)
    stamp: float | None = None

    def update(self, values: Mapping[Key, float], stamp: float | None, by_stamp: bool) -> None:
        if not values:
            return
        new = stamp != self.stamp if by_stamp else dict(values) != self.current
        if not new:
            return
        if self.current:
            self.previous = self.current
        self.current = dict(values)
        self.stamp = stamp

    def changes(self) -> dict[Key, float]:
        return {k: v - self.previous[k] for k, v in self.current.items() if k in self.previous}


class TrendAnalyzer(Analyzer):
    """Coverage and test counts against the previous report."""

    kind = "trend"
    Settings = TrendSettings

    def __init__(self, settings: TrendSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.settings: TrendSettings = settings
        self._coverage = _Series()
        self._tests = _Series()

    def analyze(self, samples: Sequence[Sample]) -> Analysis:
        coverage: dict[Key, float] = {}
        tests: dict[Key, float] = {}
        stamps: dict[str, float] = {}
        for s in samples:
            if not isinstance(s.value, int | float):
                continue
            if s.metric == "implmon_quality_coverage_ratio":
                coverage[s.labels.get("component", ""), s.labels.get("kind", "")] = float(s.value)
            elif s.metric == "implmon_quality_tests":
                key = (s.labels.get("suite", ""),)
                tests[key] = tests.get(key, 0.0) + float(s.value)
            elif s.metric == "implmon_quality_report_timestamp_seconds":
                stamps[s.labels.get("source", "")] = float(s.value)
        cov_source, test_source = self.settings.coverage_source, self.settings.tests_source
        self._coverage.update(coverage, stamps.get(cov_source or ""), cov_source is not None)
        self._tests.update(tests, stamps.get(test_source or ""), test_source is not None)

        out: list[Sample] = []
        findings: list[Finding] = []
        for (component, kind), change in sorted(self._coverage.changes().items()):
            labels = {"component": component, "kind": kind}
            out.append(Sample("implmon_quality_coverage_change_ratio", labels, change))
            if -change > self.settings.max_coverage_drop:
                now = self._coverage.current[component, kind]
                findings.append(
                    Finding(
                        alertname="ImplmonCoverageDecreased",
                        severity=self.settings.severity,
                        monitoring_type=MonitoringType.QUALITY,
                        summary=(
                            f"{kind.capitalize()} coverage of {component} fell by "
                            f"{-change:.1%} to {now:.1%}."
                        ),
                        description=(
                            f"The latest coverage report has {kind} coverage {now:.2%} for "
                            f"{component}, {-change:.2%} less than the report before it; the "
                            f"tolerance is {self.settings.max_coverage_drop:.2%}."
                        ),
                        labels=labels,
                    )
                )
        for (suite,), change in sorted(self._tests.changes().items()):
            out.append(Sample("implmon_quality_tests_change", {"suite": suite}, change))
            if -change > self.settings.max_tests_drop:
                now = self._tests.current[(suite,)]
                findings.append(
                    Finding(
                        alertname="ImplmonTestCountDecreased",
                        severity=self.settings.severity,
                        monitoring_type=MonitoringType.QUALITY,
                        summary=f"Suite {suite} lost {-change:.0f} test(s).",
                        description=(
                            f"The latest report of suite {suite} has {now:.0f} tests, "
                            f"{-change:.0f} fewer than the report before it (at most "
                            f"{self.settings.max_tests_drop} may go): tests deleted, skipped at "
                            "collection or not collected."
                        ),
                        labels={"suite": suite},
                    )
                )
        return Analysis(out, findings)
