"""Quality and performance components through the real exporter runtime: a config file,
the factory, the monitor's cycle and the Prometheus exposition, on reports the real tools wrote.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import quality_reports as qr
from implmon.config import load_config
from implmon.runtime import Runtime

CONFIG = """
interval: 1s
listen_address: 127.0.0.1:0
store_path: implmon.db
collectors:
  - {kind: junit, name: tests, paths: ["reports/junit-*.xml"]}
  - {kind: coverage, name: coverage, paths: ["reports/coverage.xml"],
     components: {samplepkg.textio: text, samplepkg: core}}
  - {kind: sarif, name: lint, paths: ["reports/*.sarif"]}
  - {kind: benchmark, name: benchmarks, paths: ["reports/benchmark.json"]}
analyzers:
  - kind: quality_gate
    name: main
    build_types:
      development: {max_failed_tests: 5}
      production: {max_failed_tests: 0, max_findings: {high: 0}}
  - {kind: regression, name: perf, baseline: baseline/benchmark.json, consecutive_runs: 1}
  - {kind: trend, name: trend, coverage_source: coverage, tests_source: tests}
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("e2e")
    project = qr.copy_project(root)
    reports = root / "reports"
    reports.mkdir()
    (root / "baseline").mkdir()
    qr.pytest_junit(project, "tests_unit", "unit", reports / "junit-unit.xml")
    qr.pytest_junit(
        project, "tests_integration", "integration", reports / "junit-int.xml", {"SAMPLE_FAIL": "1"}
    )
    qr.coverage_reports(project, reports / "coverage.xml", root / "coverage.json")
    qr.ruff_reports(project, reports / "ruff.sarif")
    qr.benchmark_json(project, root / "baseline" / "benchmark.json", seconds=0.01)
    qr.benchmark_json(project, reports / "benchmark.json", seconds=0.013)
    (root / "implmon.yaml").write_text(CONFIG)
    return root


async def test_one_cycle_exports_quality_and_performance(workdir: Path, tmp_path: Path) -> None:
    runtime = Runtime(load_config(workdir / "implmon.yaml"))
    await runtime.start()
    try:
        snapshot = await runtime.monitor.run_cycle()
        for name in ("tests", "coverage", "lint", "benchmarks"):
            assert snapshot.collectors[name][0], snapshot.collectors[name]
        alertnames = {f.alertname for f in snapshot.findings}
        assert {"ImplmonQualityGateViolated", "ImplmonBenchmarkRegressed"} <= alertnames
        gate = {
            s.labels["build_type"]: s.value
            for s in snapshot.samples
            if s.metric == "implmon_quality_gate_passed"
        }
        assert gate == {"development": 1.0, "production": 0.0}
        text = runtime.exposition.text.decode()
        assert 'implmon_quality_tests{suite="integration",result="failed"} 1' in text
        assert 'implmon_quality_coverage_ratio{component="text",kind="line"}' in text
        assert 'implmon_performance_regression_detected{benchmark="benchmarks/test_bench.py' in text
        if shutil.which("promtool"):
            (tmp_path / "metrics.txt").write_text(text)
            with (tmp_path / "metrics.txt").open() as handle:
                lint = subprocess.run(
                    ["promtool", "check", "metrics"],
                    stdin=handle,
                    capture_output=True,
                    text=True,
                    check=False,
                )
            quality_lines = [
                line
                for line in (lint.stdout + lint.stderr).splitlines()
                if "quality" in line or "performance" in line
            ]
            assert not quality_lines, quality_lines

        # A report broken mid-write: the collector still succeeds, its values stay, stale.
        good = (workdir / "reports" / "coverage.xml").read_bytes()
        before = [s for s in snapshot.samples if s.metric == "implmon_quality_coverage_ratio"]
        (workdir / "reports" / "coverage.xml").write_bytes(good[:100])
        try:
            broken = await runtime.monitor.run_cycle()
        finally:
            (workdir / "reports" / "coverage.xml").write_bytes(good)
        assert broken.collectors["coverage"][0]
        after = [s for s in broken.samples if s.metric == "implmon_quality_coverage_ratio"]
        assert after == before
        assert qr.value(broken.samples, "implmon_quality_report_stale", source="coverage") == 1
        assert (
            qr.value(broken.samples, "implmon_quality_report_errors_total", source="coverage") == 1
        )
    finally:
        await runtime.close()
