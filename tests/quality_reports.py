"""Real reports from real tools, written at test time from ``tests/fixtures/sample_project``.

Each function copies nothing itself: call :func:`copy_project` once into a temporary directory,
then run the tools there (they write caches and data files next to the code). Every tool runs
as a subprocess of this interpreter, so the versions are the ones the venv pins.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from implmon.metrics import CATALOGUE, Sample

SAMPLE_PROJECT = Path(__file__).parent / "fixtures" / "sample_project"
STATIC_REPORTS = Path(__file__).parent / "fixtures" / "reports"

_SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?)\b")


def copy_project(dest: Path) -> Path:
    """A fresh copy of the sample project under ``dest``."""
    target = dest / "sample_project"
    shutil.copytree(SAMPLE_PROJECT, target)
    return target


def _env(extra: Mapping[str, str] | None, project: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "COVERAGE_")) and k != "PYTHONPATH"
    }
    env["PYTHONPATH"] = str(project)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


def run(
    project: Path,
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    ok_codes: Sequence[int] = (0,),
) -> subprocess.CompletedProcess[str]:
    """Run ``python <args>`` in ``project``; fail loudly with the tool's output otherwise."""
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=project,
        env=_env(env, project),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode not in ok_codes:
        raise AssertionError(f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def pytest_junit(
    project: Path, tests: str, suite: str, out: Path, env: Mapping[str, str] | None = None
) -> dict[str, int]:
    """Run pytest on ``tests`` writing JUnit XML to ``out``; pytest's own summary counts.

    The summary line ("1 failed, 3 passed, 1 skipped, 1 xfailed") is pytest's terminal report,
    independent of the XML writer: the tests compare the collector's figures with it.
    """
    proc = run(
        project,
        [
            "-m",
            "pytest",
            "-q",
            tests,
            f"--junitxml={out}",
            "-o",
            f"junit_suite_name={suite}",
            "-p",
            "no:randomly",
        ],
        env,
        ok_codes=(0, 1),
    )
    return summary_counts(proc.stdout)


def summary_counts(stdout: str) -> dict[str, int]:
    """Counts by JUnit result from pytest's terminal summary line (xfailed is skipped)."""
    last = [line for line in stdout.splitlines() if " in " in line and _SUMMARY.search(line)][-1]
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for n, word in _SUMMARY.findall(last):
        key = {"xpassed": "passed", "xfailed": "skipped", "errors": "error"}.get(word, word)
        counts[key] += int(n)
    return counts


def coverage_reports(project: Path, xml_out: Path, json_out: Path) -> None:
    """Run the unit tests under coverage.py (with branches); write Cobertura XML and JSON."""
    run(
        project,
        [
            "-m",
            "coverage",
            "run",
            "--branch",
            "--source=samplepkg",
            "-m",
            "pytest",
            "-q",
            "tests_unit",
        ],
    )
    run(project, ["-m", "coverage", "xml", "-o", str(xml_out)])
    run(project, ["-m", "coverage", "json", "-o", str(json_out)])


def ruff_reports(project: Path, sarif_out: Path) -> list[dict[str, object]]:
    """Run ruff on the package writing SARIF; return ruff's JSON diagnostics of the same run."""
    args = ["check", "--isolated", "--no-cache", "--select", "F,E,S", "samplepkg"]
    with sarif_out.open("w") as handle:
        subprocess.run(
            [sys.executable, "-m", "ruff", *args, "--output-format", "sarif"],
            cwd=project,
            stdout=handle,
            check=False,
            timeout=60,
        )
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--output-format", "json"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return list(json.loads(proc.stdout))


def benchmark_json(project: Path, out: Path, seconds: float = 0.01, rounds: int = 15) -> None:
    """Run the sample benchmark (a sleep of ``seconds`` per round) writing pytest-benchmark JSON."""
    run(
        project,
        [
            "-m",
            "pytest",
            "-q",
            "benchmarks",
            f"--benchmark-json={out}",
            f"--benchmark-min-rounds={rounds}",
            "--benchmark-max-time=0.000001",
            "--benchmark-warmup=off",
            "--benchmark-disable-gc",
        ],
        {"SAMPLE_BENCH_SECONDS": repr(seconds)},
    )


def assert_in_catalogue(samples: Sequence[Sample]) -> None:
    """Every sample names a catalogue family with exactly its labels (what the monitor checks)."""
    for sample in samples:
        spec = CATALOGUE.get(sample.metric)
        assert spec is not None, f"{sample.metric} is not in the catalogue"
        assert tuple(sample.labels) == spec.labels or set(sample.labels) == set(spec.labels), (
            f"{sample.metric} labels {sorted(sample.labels)} != {spec.labels}"
        )


def value(samples: Sequence[Sample], metric: str, **labels: str) -> float:
    """The one sample of ``metric`` whose labels include ``labels``."""
    found = [
        s
        for s in samples
        if s.metric == metric and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, f"{len(found)} samples of {metric}{labels}"
    result = found[0].value
    assert isinstance(result, float)
    return result
