"""The benchmark collector and the regression analyzer on real pytest-benchmark runs.

The sample benchmark sleeps ``SAMPLE_BENCH_SECONDS`` per round. Real runs (no scaled copies):
a baseline at 10 ms, a run 30% slower (13 ms) and one 3% slower (10.3 ms). A sleep's floor
does not move with machine load, so the min statistic of each run sits just above its sleep
and the ratios land near 1.30 and 1.03: the test's margins are 20 and 7 points of tolerance.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import quality_reports as qr
from implmon.components.analyzers.regression import (
    RegressionAnalyzer,
    RegressionSettings,
    compare_to_baseline,
    load_baseline,
    regression_hook,
)
from implmon.components.collectors.benchmark import BenchmarkCollector, load_benchmark_stats

BASE_SECONDS = 0.010
TOLERANCE = 0.10


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench")
    project = qr.copy_project(root)
    out = {}
    for name, factor in (("baseline", 1.0), ("slow30", 1.30), ("slow30b", 1.30), ("slow3", 1.03)):
        out[name] = root / f"{name}.json"
        qr.benchmark_json(project, out[name], seconds=BASE_SECONDS * factor)
    return out


def collector(base: Path, pattern: str, **settings: object) -> BenchmarkCollector:
    return BenchmarkCollector(
        BenchmarkCollector.Settings(kind="benchmark", name="bench", paths=[pattern], **settings),
        base_dir=base,
    )


def test_stats_match_the_json(runs: dict[str, Path]) -> None:
    path = runs["baseline"]
    samples = collector(path.parent, path.name).collect_now()
    qr.assert_in_catalogue(samples)
    doc = json.loads(path.read_text())
    (bench,) = doc["benchmarks"]
    for stat in ("min", "median", "mean", "stddev"):
        assert (
            qr.value(
                samples,
                "implmon_performance_benchmark_seconds",
                benchmark=bench["fullname"],
                stat=stat,
            )
            == bench["stats"][stat]
        )
    assert (
        qr.value(samples, "implmon_performance_benchmark_rounds", benchmark=bench["fullname"])
        == bench["stats"]["rounds"]
    )
    assert bench["stats"]["min"] >= BASE_SECONDS  # it really slept
    assert qr.value(samples, "implmon_quality_report_timestamp_seconds", source="bench") == (
        datetime.fromisoformat(doc["datetime"]).timestamp()
    )


def test_newest_report_wins_and_name_label(runs: dict[str, Path]) -> None:
    base = runs["baseline"].parent
    samples = collector(base, "*.json", benchmark_label="name").collect_now()
    newest = max(runs.values(), key=lambda p: json.loads(p.read_text())["datetime"])
    expected = json.loads(newest.read_text())["benchmarks"][0]["stats"]["median"]
    assert (
        qr.value(
            samples, "implmon_performance_benchmark_seconds", benchmark="test_sleepy", stat="median"
        )
        == expected
    )


def test_30_percent_slower_is_flagged_3_percent_is_not(runs: dict[str, Path]) -> None:
    baseline = load_baseline(runs["baseline"], "min")
    slow30 = load_benchmark_stats(runs["slow30"], "min")
    slow3 = load_benchmark_stats(runs["slow3"], "min")
    (flagged,) = compare_to_baseline([slow30], baseline, tolerance=TOLERANCE)
    (quiet,) = compare_to_baseline([slow3], baseline, tolerance=TOLERANCE)
    assert flagged.regressed and not quiet.regressed
    assert flagged.ratio == pytest.approx(1.30, abs=0.08)
    assert quiet.ratio == pytest.approx(1.03, abs=0.05)


def test_analyzer_needs_consecutive_slow_runs(runs: dict[str, Path], tmp_path: Path) -> None:
    """The collector watches one path the CI overwrites; the analyzer flags the regression only
    after the second slow run, and the ratio is the one the two JSON files give."""
    live = tmp_path / "bench.json"
    watch = collector(tmp_path, "bench.json")
    analyzer = RegressionAnalyzer(
        RegressionSettings(
            kind="regression",
            name="perf",
            baseline=runs["baseline"],
            tolerance=TOLERANCE,
            consecutive_runs=2,
        ),
        base_dir=tmp_path,
    )

    def cycle(run: str) -> tuple[float, float, list[str]]:
        live.write_bytes(runs[run].read_bytes())
        result = analyzer.analyze(watch.collect_now())
        name = next(iter(analyzer.baseline))
        return (
            qr.value(list(result.samples), "implmon_performance_regression_ratio", benchmark=name),
            qr.value(
                list(result.samples), "implmon_performance_regression_detected", benchmark=name
            ),
            [f.alertname for f in result.findings],
        )

    def stat_min(run: str) -> float:
        return float(json.loads(runs[run].read_text())["benchmarks"][0]["stats"]["min"])

    ratio, detected, findings = cycle("slow3")
    assert ratio == stat_min("slow3") / stat_min("baseline") and detected == 0 and not findings
    ratio, detected, findings = cycle("slow30")
    assert ratio == stat_min("slow30") / stat_min("baseline")
    assert detected == 0 and not findings  # one slow run is not yet a regression
    # The same report seen again in the next cycle is not a second run.
    assert analyzer.analyze(watch.collect_now()).findings == []
    ratio, detected, findings = cycle("slow30b")
    assert detected == 1 and findings == ["ImplmonBenchmarkRegressed"]
    ratio, detected, findings = cycle("slow3")
    assert detected == 0 and not findings  # a good run ends the streak


def test_flat_baseline_file_and_bad_baseline(tmp_path: Path) -> None:
    (tmp_path / "baseline.yaml").write_text("a.py::t: 0.5\n")
    assert load_baseline(tmp_path / "baseline.yaml") == {"a.py::t": 0.5}
    (tmp_path / "broken.json").write_text('{"a.py::t": "fast"}')
    with pytest.raises(ValueError, match=r"broken.json.*not a number of seconds"):
        RegressionAnalyzer(
            RegressionSettings(kind="regression", name="perf", baseline=Path("broken.json")),
            base_dir=tmp_path,
        )


async def test_validator_performance_validation(runs: dict[str, Path]) -> None:
    """The real ImplementationValidator with the baseline comparison as its performance hook."""
    from implmon.events import ValidationOutcome, ValidationType
    from implmon.validator import ImplementationValidator

    def validator(run: str) -> ImplementationValidator:
        return ImplementationValidator(
            component=None,
            system=None,
            performance=regression_hook(runs[run], runs["baseline"], tolerance=TOLERANCE),
        )

    slow = await validator("slow30").validate_implementation([])
    assert slow.results[ValidationType.PERFORMANCE].outcome is ValidationOutcome.FAILED
    fine = await validator("slow3").validate_implementation([])
    assert fine.results[ValidationType.PERFORMANCE].outcome is ValidationOutcome.PASSED
    (check,) = fine.results[ValidationType.PERFORMANCE].checks
    assert check.name == "benchmark benchmarks/test_bench.py::test_sleepy min <= baseline + 10%"
