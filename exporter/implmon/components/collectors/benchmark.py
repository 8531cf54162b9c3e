"""pytest-benchmark JSON results: per benchmark min, median, mean and stddev, and rounds.

Reads the file ``pytest --benchmark-json=PATH`` writes, and the files ``--benchmark-autosave``
keeps under ``.benchmarks/``. When several matched files hold the same benchmark (a glob over
saved runs), the newest report wins, so pointing ``paths`` at the saved-runs folder exports the
latest run of each benchmark. The report timestamp is the file's ``datetime`` (UTC).

Benchmarks are labelled by ``fullname`` (``tests/test_x.py::test_parse[small]``), unique
within a project, or by ``name`` (``benchmark_label: name``), shorter but ambiguous across
files.

Exported: ``implmon_performance_benchmark_seconds{benchmark,stat}`` for each of ``stats``
(default min, median, mean, stddev; pytest-benchmark also has max, iqr, q1, q3) and
``implmon_performance_benchmark_rounds{benchmark}``.

>>> doc = {"datetime": "2024-05-01T10:00:00+00:00", "benchmarks": [{"name": "t",
...     "fullname": "a.py::t", "stats": {"min": 0.1, "median": 0.2, "mean": 0.2,
...     "stddev": 0.01, "rounds": 5}}]}
>>> import json
>>> report, ts = parse_benchmark_json(json.dumps(doc).encode())
>>> report.benchmarks["a.py::t"].stats["median"], ts
(0.2, 1714557600.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from implmon.components.collectors.reports import (
    DEFAULT_MAX_FILE_BYTES,
    ParsedReport,
    ReportCollector,
    ReportError,
    ReportSettings,
    load_json,
    number,
    parse_timestamp,
    read_report,
)
from implmon.metrics import Sample

__all__ = [
    "STATS",
    "BenchmarkCollector",
    "BenchmarkReport",
    "BenchmarkResult",
    "load_benchmark_stats",
    "parse_benchmark_json",
]

STATS = ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3")


@dataclass(frozen=True, slots=True)
class BenchmarkResult:
    """One benchmark's statistics in seconds, and how many rounds measured them."""

    name: str
    fullname: str
    stats: Mapping[str, float]
    rounds: int


@dataclass(frozen=True, slots=True)
class BenchmarkReport:
    """The benchmarks of one pytest-benchmark JSON file, by fullname."""

    benchmarks: Mapping[str, BenchmarkResult]


def parse_benchmark_json(data: bytes) -> tuple[BenchmarkReport, float | None]:
    """Parse pytest-benchmark JSON bytes: the report and its own timestamp (None if absent)."""
    doc = load_json(data)
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise ReportError("not a pytest-benchmark report: no 'benchmarks' list")
    results: dict[str, BenchmarkResult] = {}
    for index, bench in enumerate(doc["benchmarks"]):
        where = f"benchmarks[{index}]"
        if not isinstance(bench, dict) or not isinstance(bench.get("stats"), dict):
            raise ReportError(f"{where} has no 'stats' object")
        name = str(bench.get("name") or "")
        fullname = str(bench.get("fullname") or name)
        if not fullname:
            raise ReportError(f"{where} has no name")
        raw = bench["stats"]
        stats = {s: number(raw[s], f"{where}.stats.{s}") for s in STATS if s in raw}
        for required in ("min", "median", "mean"):
            if required not in stats:
                raise ReportError(f"{where}.stats.{required} is missing")
        if any(value < 0 for value in stats.values()):
            raise ReportError(f"{where}.stats has a negative duration")
        rounds = int(number(raw.get("rounds"), f"{where}.stats.rounds", default=0))
        results[fullname] = BenchmarkResult(name or fullname, fullname, stats, rounds)
    return BenchmarkReport(results), parse_timestamp(doc.get("datetime"))


def load_benchmark_stats(
    path: Path,
    statistic: str = "median",
    *,
    label: Literal["fullname", "name"] = "fullname",
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> dict[str, float]:
    """One statistic of every benchmark in a pytest-benchmark JSON file, by label.

    What :func:`implmon.components.analyzers.regression.compare_to_baseline` takes, for the
    current run and for a baseline file written by the same tool. ReportError if unusable.
    """
    report, _ = parse_benchmark_json(read_report(path, max_bytes))
    out: dict[str, float] = {}
    for result in report.benchmarks.values():
        if statistic not in result.stats:
            raise ReportError(f"{path}: {result.fullname} has no {statistic!r} statistic")
        out[result.fullname if label == "fullname" else result.name] = result.stats[statistic]
    return out


class BenchmarkCollector(ReportCollector[BenchmarkReport]):
    """Benchmark statistics from pytest-benchmark JSON files.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "b.json").write_text('{"benchmarks": [{"name": "t", "stats": {"min": 1,'
    ...     ' "median": 2, "mean": 2, "stddev": 0, "rounds": 3}}]}')
    >>> c = BenchmarkCollector(BenchmarkCollector.Settings(kind="benchmark", name="bench",
    ...                                                     paths=["*.json"]), base_dir=d)
    >>> [(s.labels.get("stat"), s.value) for s in c.collect_now()][:2]
    [('min', 1.0), ('median', 2.0)]
    """

    kind = "benchmark"
    what = "pytest-benchmark report"

    class Settings(ReportSettings):
        benchmark_label: Literal["fullname", "name"] = "fullname"
        stats: list[Literal["min", "max", "mean", "stddev", "median", "iqr", "q1", "q3"]] = [
            "min",
            "median",
            "mean",
            "stddev",
        ]

    def parse(self, path: Path, data: bytes) -> tuple[BenchmarkReport, float | None]:
        return parse_benchmark_json(data)

    def samples(self, reports: Sequence[ParsedReport[BenchmarkReport]]) -> list[Sample]:
        latest: dict[str, tuple[float, BenchmarkResult]] = {}
        for report in reports:
            for result in report.content.benchmarks.values():
                label = (
                    result.fullname
                    if self.settings.benchmark_label == "fullname"
                    else (result.name)
                )
                seen = latest.get(label)
                if seen is None or report.timestamp >= seen[0]:
                    latest[label] = (report.timestamp, result)
        out: list[Sample] = []
        for label in sorted(latest):
            result = latest[label][1]
            for stat in self.settings.stats:
                if stat in result.stats:
                    out.append(
                        Sample(
                            "implmon_performance_benchmark_seconds",
                            {"benchmark": label, "stat": stat},
                            result.stats[stat],
                        )
                    )
            out.append(
                Sample(
                    "implmon_performance_benchmark_rounds",
                    {"benchmark": label},
                    float(result.rounds),
                )
            )
        return out
