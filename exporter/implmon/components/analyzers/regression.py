"""Analyzer ``regression``: benchmark results against a committed baseline, robust to noise.

Each benchmark's stable statistic (``statistic``, default ``min``: noise on a shared machine
only ever adds time, so the fastest round is the steadiest estimate of the code's cost; use
``median`` when the code itself varies) from ``implmon_performance_benchmark_seconds`` is
divided by the same statistic in the baseline file:

- ``implmon_performance_regression_ratio{benchmark}``: current over baseline, above 1 is slower;
- ``implmon_performance_regression_detected{benchmark}``: 1 once the ratio has been above
  ``1 + tolerance`` in each of the last ``consecutive_runs`` runs, so one noisy run is not a
  regression; and then the finding ``ImplmonBenchmarkRegressed`` (performance monitoring).

A *run* is a new result, not a monitor cycle: the same report is seen every cycle, so a
benchmark's run counts once, when its statistics (and rounds) change. Two real runs giving
bit-identical floats would count once, which only delays a finding.

The baseline file is a pytest-benchmark JSON file (``--benchmark-json`` of a run on the
reference commit, committed to the repository) or a flat JSON/YAML mapping of benchmark to
seconds. Its keys must be the labels the benchmark collector exports (``fullname`` by default).
It is read at start (a missing or unreadable baseline is a configuration error) and again when
it changes; a changed file that cannot be read is logged once and the previous baseline kept.

The same comparison is a plain function for the ``ImplementationValidator``'s performance
validation::

    from implmon.components.analyzers.regression import compare_to_baseline, load_baseline
    from implmon.components.collectors.benchmark import load_benchmark_stats

    current = load_benchmark_stats(Path("bench.json"), "min")
    result = compare_to_baseline([current], load_baseline(Path("baseline.json"), "min"),
                                 tolerance=0.10)
    failed = [c for c in result if c.regressed]

or, as the validator's ``performance`` hook, :func:`regression_hook`.

>>> [c.regressed for c in compare_to_baseline([{"a": 1.3}, {"a": 1.03}], {"a": 1.0})]
[False]
>>> [round(c.ratio, 2) for c in compare_to_baseline([{"a": 1.3}, {"a": 1.3}], {"a": 1.0},
...                                                    consecutive_runs=2)]
[1.3]
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import Field, model_validator

from implmon.component import (
    Analysis,
    Analyzer,
    ComponentSettings,
    Finding,
    MonitoringType,
    Severity,
)
from implmon.components.collectors.benchmark import load_benchmark_stats
from implmon.components.collectors.reports import ReportError, load_json, read_report
from implmon.config import ConfigPath
from implmon.metrics import Sample

if TYPE_CHECKING:  # the validator is imported when a hook runs, not with the analyzer
    from implmon.validator import Check

__all__ = [
    "Comparison",
    "RegressionAnalyzer",
    "RegressionSettings",
    "compare_to_baseline",
    "load_baseline",
    "regression_hook",
]

log = logging.getLogger("implmon.analyzers.regression")


@dataclass(frozen=True, slots=True)
class Comparison:
    """One benchmark against its baseline, as of the latest run."""

    benchmark: str
    current: float
    baseline: float
    ratio: float
    regressed: bool
    """The ratio exceeded 1 + tolerance in each of the last ``consecutive_runs`` runs."""


def _ratio(current: float, baseline: float) -> float:
    return current / baseline if baseline > 0 else float("inf") if current > 0 else 1.0


def compare_to_baseline(
    runs: Sequence[Mapping[str, float]],
    baseline: Mapping[str, float],
    *,
    tolerance: float = 0.10,
    consecutive_runs: int = 1,
) -> list[Comparison]:
    """Compare the latest of ``runs`` (oldest first; each maps benchmark to seconds) with
    ``baseline``, for every benchmark in both.

    A benchmark regressed when its ratio is above ``1 + tolerance`` in each of the last
    ``consecutive_runs`` runs; a run that lacks the benchmark breaks the streak. Sorted by
    benchmark.
    """
    if consecutive_runs < 1:
        raise ValueError("consecutive_runs must be at least 1")
    if not runs:
        return []
    latest = runs[-1]
    recent = runs[-consecutive_runs:]
    out: list[Comparison] = []
    for name in sorted(set(latest) & set(baseline)):
        ratios = [_ratio(run[name], baseline[name]) for run in recent if name in run]
        regressed = len(ratios) == consecutive_runs and all(r > 1 + tolerance for r in ratios)
        out.append(Comparison(name, latest[name], baseline[name], ratios[-1], regressed))
    return out


def load_baseline(
    path: Path, statistic: str = "min", *, label: Literal["fullname", "name"] = "fullname"
) -> dict[str, float]:
    """Benchmark to seconds from a baseline file: pytest-benchmark JSON, or a flat JSON or YAML
    mapping. ReportError (naming the problem) if it cannot be used."""
    data = read_report(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            doc: Any = yaml.safe_load(data)
        except yaml.YAMLError as err:
            raise ReportError(f"not valid YAML: {err}") from None
    else:
        doc = load_json(data)
    if isinstance(doc, dict) and "benchmarks" in doc:
        return load_benchmark_stats(path, statistic, label=label)
    if not isinstance(doc, dict) or not doc:
        raise ReportError(
            "a baseline is pytest-benchmark JSON or a mapping of benchmark to seconds"
        )
    out: dict[str, float] = {}
    for name, seconds in doc.items():
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ReportError(f"baseline of {name!r} is not a number of seconds: {seconds!r}")
        out[str(name)] = float(seconds)
    return out


def regression_hook(
    results: Path,
    baseline: Path,
    *,
    statistic: Literal["min", "median", "mean"] = "min",
    tolerance: float = 0.10,
    label: Literal["fullname", "name"] = "fullname",
) -> Callable[[object], Awaitable[list[Check]]]:
    """A performance validation hook for :class:`~implmon.validator.ImplementationValidator`:
    a pytest-benchmark results file against a baseline file, one ``Check`` per benchmark in
    both. One run is what a build has, so one run over the tolerance fails it.

    >>> from implmon.validator import ImplementationValidator
    >>> validator = ImplementationValidator(
    ...     performance=regression_hook(Path("bench.json"), Path("baseline.json")))
    """

    async def benchmark_regression(_implementation: object) -> list[Check]:
        from implmon.events import ValidationOutcome
        from implmon.validator import Check

        current = await asyncio.to_thread(load_benchmark_stats, results, statistic, label=label)
        base = await asyncio.to_thread(load_baseline, baseline, statistic, label=label)
        return [
            Check(
                f"benchmark {c.benchmark} {statistic} <= baseline + {tolerance:.0%}",
                ValidationOutcome.FAILED if c.regressed else ValidationOutcome.PASSED,
                f"ratio {c.ratio:.3f} ({c.current:.6g}s against {c.baseline:.6g}s)",
            )
            for c in compare_to_baseline([current], base, tolerance=tolerance)
        ]

    return benchmark_regression


class RegressionSettings(ComponentSettings):
    baseline: ConfigPath
    """Baseline file, relative to the config file's directory."""
    statistic: Literal["min", "median", "mean"] = "min"
    tolerance: float = Field(default=0.10, ge=0.0)
    """Slower than the baseline by more than this fraction is a regressed run (0.10: 10%)."""
    consecutive_runs: int = Field(default=2, ge=1, le=100)
    baseline_label: Literal["fullname", "name"] = "fullname"
    """How the baseline file's benchmarks are named, if it is pytest-benchmark JSON."""
    severity: Severity = Severity.WARNING

    @model_validator(mode="after")
    def _baseline_is_usable(self) -> RegressionSettings:
        # Only once the config resolved the path against its own directory: a relative path
        # here is resolved by the analyzer against its base_dir, and checked there.
        if self.baseline.is_absolute():
            try:
                load_baseline(self.baseline, self.statistic, label=self.baseline_label)
            except (ReportError, OSError) as err:
                raise ValueError(f"baseline {self.baseline}: {_reason(err)}") from None
        return self


def _reason(err: Exception) -> str:
    return err.strerror or str(err) if isinstance(err, OSError) else str(err)


class RegressionAnalyzer(Analyzer):
    """Benchmark statistics against a baseline file.

    >>> import json, tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "base.json").write_text(json.dumps({"t": 1.0}))
    >>> a = RegressionAnalyzer(RegressionSettings(kind="regression", name="perf",
    ...     baseline="base.json", consecutive_runs=1), base_dir=d)
    >>> run = [Sample("implmon_performance_benchmark_seconds", {"benchmark": "t", "stat": "min"},
    ...               1.3)]
    >>> [f.alertname for f in a.analyze(run).findings]
    ['ImplmonBenchmarkRegressed']
    """

    kind = "regression"
    Settings = RegressionSettings

    def __init__(self, settings: RegressionSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.settings: RegressionSettings = settings
        self.baseline_path = (
            settings.baseline
            if settings.baseline.is_absolute()
            else self.base_dir / settings.baseline
        )
        self._baseline_version = self._version()
        try:
            self.baseline = self._load()
        except (ReportError, OSError) as err:
            raise ValueError(
                f"analyzer {self.name}: baseline {self.baseline_path}: {err}"
            ) from None
        # Per benchmark: the identity of the last run seen, and the latest runs' values.
        self._last_run: dict[str, tuple[tuple[str, float], ...]] = {}
        self._runs: dict[str, deque[float]] = {}

    def _version(self) -> tuple[int, int] | None:
        try:
            stat = self.baseline_path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def _load(self) -> dict[str, float]:
        return load_baseline(
            self.baseline_path, self.settings.statistic, label=self.settings.baseline_label
        )

    def _refresh_baseline(self) -> None:
        version = self._version()
        if version is None or version == self._baseline_version:
            return
        self._baseline_version = version
        try:
            self.baseline = self._load()
        except (ReportError, OSError) as err:
            log.warning(
                "analyzer %s: cannot use changed baseline %s: %s; keeping the previous one",
                self.name,
                self.baseline_path,
                err,
            )

    def analyze(self, samples: Sequence[Sample]) -> Analysis:
        self._refresh_baseline()
        runs: dict[str, dict[str, float]] = {}
        for sample in samples:
            if sample.metric in (
                "implmon_performance_benchmark_seconds",
                "implmon_performance_benchmark_rounds",
            ) and isinstance(sample.value, float | int):
                name = sample.labels.get("benchmark", "")
                runs.setdefault(name, {})[sample.labels.get("stat", "rounds")] = float(sample.value)
        for name, stats in runs.items():
            if self.settings.statistic not in stats:
                continue
            identity = tuple(sorted(stats.items()))
            if self._last_run.get(name) == identity:
                continue  # the same run as last cycle
            self._last_run[name] = identity
            history = self._runs.setdefault(name, deque(maxlen=self.settings.consecutive_runs))
            history.append(stats[self.settings.statistic])
        out: list[Sample] = []
        findings: list[Finding] = []
        for name in sorted(set(runs) & set(self.baseline)):
            if name not in self._runs:
                continue
            recent = list(self._runs[name])
            (comparison,) = compare_to_baseline(
                [{name: v} for v in recent],
                {name: self.baseline[name]},
                tolerance=self.settings.tolerance,
                consecutive_runs=self.settings.consecutive_runs,
            )
            labels = {"benchmark": name}
            out.append(Sample("implmon_performance_regression_ratio", labels, comparison.ratio))
            out.append(
                Sample(
                    "implmon_performance_regression_detected", labels, float(comparison.regressed)
                )
            )
            if comparison.regressed:
                findings.append(self._finding(comparison))
        return Analysis(out, findings)

    def _finding(self, c: Comparison) -> Finding:
        stat = self.settings.statistic
        runs = self.settings.consecutive_runs
        return Finding(
            alertname="ImplmonBenchmarkRegressed",
            severity=self.settings.severity,
            monitoring_type=MonitoringType.PERFORMANCE,
            summary=f"Benchmark {c.benchmark} is {c.ratio - 1:.0%} slower than its baseline.",
            description=(
                f"The {stat} of benchmark {c.benchmark} is {c.current:.6g}s against a baseline of "
                f"{c.baseline:.6g}s (ratio {c.ratio:.3f}), above the tolerance of "
                f"{self.settings.tolerance:.0%} in each of the last {runs} run(s). "
                f"Baseline: {self.baseline_path}."
            ),
            labels={"benchmark": c.benchmark},
        )
