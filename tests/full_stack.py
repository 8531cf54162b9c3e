"""The whole stack with every kind of data flowing, for the dashboard and cross-reference tests.

The shared ``demo_stack`` fixture (conftest.py) monitors the demo agents only. The dashboards
also show quality, performance and pipeline figures, so this stack adds what produces them,
all real:

- reports written by the real tools on ``tests/fixtures/sample_project`` (pytest JUnit XML,
  coverage.py Cobertura XML, ruff SARIF, pytest-benchmark JSON) plus the committed bandit SARIF,
  read by the exporter's report collectors; the quality gate, regression and trend analyzers
  on top; a second round of reports (a partial test run) so the trend analyzer has a change;
- pipeline events (builds, deployments with commit times, validations, an incident) posted to
  the exporter's ingest API, so the DORA histograms have observations;
- a real Alertmanager (``alerting/alertmanager.yml``) the exporter's alert stage delivers to;
- a third-party processor plugin (installed for the exporter process through a real
  ``implmon.components`` entry point) that fails every other cycle, as buggy plugins do, so
  the error accounting has something to count;
- a real Prometheus scraping the exporter every second with ``rules/`` loaded.

Test modules load this file as a plugin (``pytest_plugins = ["full_stack"]``), so the
session-scoped :func:`full_stack_session` fixture is started once for all of them.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import quality_reports as qr
import yaml
from implmon.stack import alertmanager_config, free_port, start_stack


def http_json(url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@dataclass
class FullStack:
    """What the tests read from the running stack: the exporter's and Prometheus's answers."""

    workdir: Path
    exporter_url: str
    prometheus_url: str

    def query(self, promql: str) -> dict[str, Any]:
        """Prometheus's whole answer to an instant query (status, data or error)."""
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            result: dict[str, Any] = http_json(url)
        except urllib.error.HTTPError as err:  # 400/422: a bad query; the body says why
            result = json.loads(err.read())
        return result

    def query_range(self, promql: str, seconds: float, step: float) -> dict[str, Any]:
        """Prometheus's answer to a range query over the last ``seconds``."""
        end = time.time()
        params = {"query": promql, "start": end - seconds, "end": end, "step": step}
        url = f"{self.prometheus_url}/api/v1/query_range?" + urllib.parse.urlencode(params)
        try:
            result: dict[str, Any] = http_json(url)
        except urllib.error.HTTPError as err:
            result = json.loads(err.read())
        return result

    def label_values(self, label: str, match: str) -> list[str]:
        url = f"{self.prometheus_url}/api/v1/label/{label}/values?" + urllib.parse.urlencode(
            {"match[]": match}
        )
        values: list[str] = http_json(url)["data"]
        return values

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"{self.exporter_url}/metrics", timeout=10) as response:
            text: str = response.read().decode()
            return text


def write_reports(project: Path, reports: Path, *, partial: bool) -> None:
    """Run the real tools on the sample project; ``partial`` runs part of the unit suite (as a
    half-skipped CI run would), so the second round differs from the first."""
    select = ["-k", "clamp"] if partial else []
    qr.run(
        project,
        ["-m", "coverage", "run", "--branch", "--source=samplepkg", "-m", "pytest", "-q",
         "tests_unit", *select, f"--junitxml={reports / 'junit-unit.xml'}",
         "-o", "junit_suite_name=unit", "-p", "no:randomly"],
        ok_codes=(0, 1),
    )  # fmt: skip
    qr.run(project, ["-m", "coverage", "xml", "-o", str(reports / "coverage.xml")])
    if not partial:
        # SAMPLE_FAIL=1: the integration suite reports a failing test, as a broken build would.
        qr.pytest_junit(
            project, "tests_integration", "integration", reports / "junit-integration.xml",
            env={"SAMPLE_FAIL": "1"},
        )  # fmt: skip
        qr.ruff_reports(project, reports / "ruff.sarif")
        shutil.copy(qr.STATIC_REPORTS / "bandit.sarif", reports / "bandit.sarif")
        qr.benchmark_json(project, reports / "benchmark.json", seconds=0.001, rounds=5)
        shutil.copy(reports / "benchmark.json", reports / "baseline.json")


PLUGIN_MODULE = '''
"""A processor plugin that raises on every other cycle (for the dashboard tests)."""
from implmon.component import Processor


class FlakyProcessor(Processor):
    kind = "flaky"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0

    def process(self, samples):
        self.calls += 1
        if self.calls % 2:
            raise RuntimeError("flaky plugin failed, as plugins sometimes do")
        return samples
'''


def install_plugin(directory: Path) -> dict[str, str]:
    """Write the plugin and its distribution metadata (what pip would install) into
    ``directory``; returns the environment that puts it on the exporter's path."""
    directory.mkdir()
    (directory / "implmon_flaky_plugin.py").write_text(PLUGIN_MODULE)
    dist = directory / "implmon_flaky_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: implmon-flaky-plugin\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[implmon.components]\nflaky = implmon_flaky_plugin:FlakyProcessor\n"
    )
    return {"PYTHONPATH": str(directory)}


def exporter_config(demo_config: str, workdir: Path) -> str:
    """The demo config plus report collectors, the quality and performance analyzers and the
    plugin processor."""
    config: dict[str, Any] = yaml.safe_load(demo_config)
    reports = workdir / "reports"
    config["collectors"] += [
        {"kind": "junit", "name": "tests", "paths": [f"{reports}/junit-*.xml"],
         "per_test": True},
        {"kind": "coverage", "name": "coverage", "paths": [f"{reports}/coverage.xml"],
         "components": {"samplepkg": "samplepkg"}},
        {"kind": "sarif", "name": "lint", "paths": [f"{reports}/*.sarif"]},
        {"kind": "benchmark", "name": "benchmarks", "paths": [f"{reports}/benchmark.json"]},
    ]  # fmt: skip
    config["analyzers"] += [
        {"kind": "quality_gate", "name": "main",
         "build_types": {"development": {"max_failed_tests": 100},
                         "production": {"min_line_coverage": 0.99, "max_failed_tests": 0}}},
        {"kind": "regression", "name": "regression", "baseline": str(reports / "baseline.json"),
         "consecutive_runs": 1},
        {"kind": "trend", "name": "trend", "coverage_source": "coverage",
         "tests_source": "tests"},
    ]  # fmt: skip
    config["processors"] = [{"kind": "flaky", "name": "flaky"}]
    return yaml.safe_dump(config, sort_keys=False)


def pipeline_events(batch: int) -> list[dict[str, Any]]:
    """A small, realistic history: builds of two types, a failed then fixed production
    deployment (time to restore), deployments with commit times (lead time), validations of
    the four types and an incident opened and resolved. Ids are unique per ``batch``."""
    now = datetime.now(UTC)

    def at(minutes_ago: float) -> str:
        return (now - timedelta(minutes=minutes_ago)).isoformat()

    events: list[dict[str, Any]] = [
        {"kind": "build", "id": "b1", "build_type": "development", "outcome": "success",
         "duration_seconds": 95.0, "timestamp": at(50), "trace_id": "0af7651916cd43dd8448eb211c8031"
         "9c"},
        {"kind": "build", "id": "b2", "build_type": "production", "outcome": "failure",
         "duration_seconds": 240.0, "timestamp": at(45)},
        {"kind": "build", "id": "b3", "build_type": "production", "outcome": "success",
         "duration_seconds": 210.0, "timestamp": at(40)},
        {"kind": "deployment", "id": "d1", "environment": "staging", "outcome": "success",
         "duration_seconds": 60.0, "timestamp": at(35), "commit_time": at(120)},
        {"kind": "deployment", "id": "d2", "environment": "production", "outcome": "failure",
         "duration_seconds": 80.0, "timestamp": at(30), "commit_time": at(125)},
        {"kind": "deployment", "id": "d3", "environment": "production", "outcome": "success",
         "duration_seconds": 75.0, "timestamp": at(20), "commit_time": at(60)},
        {"kind": "incident", "id": "i1", "environment": "staging", "status": "opened",
         "timestamp": at(15)},
        {"kind": "incident", "id": "i2", "environment": "staging", "status": "resolved",
         "timestamp": at(5)},
    ]  # fmt: skip
    for i, vt in enumerate(("component", "system", "quality", "performance")):
        events.append(
            {"kind": "validation", "id": f"v{i}", "validation_type": vt,
             "outcome": "failed" if vt == "quality" else "passed",
             "duration_seconds": 10.0 + i, "timestamp": at(10)}
        )  # fmt: skip
    for event in events:
        event["id"] = f"{event['id']}-{batch}"
    return events


@contextmanager
def full_stack(workdir: Path) -> Iterator[FullStack]:
    """Start everything, feed it, and wait until Prometheus has scraped the results."""
    reports = workdir / "reports"
    reports.mkdir()
    project = qr.copy_project(workdir)
    write_reports(project, reports, partial=False)
    plugin_env = install_plugin(workdir / "plugins")

    with start_stack(
        workdir,
        # Nothing listens there: these tests read metrics, not notifications.
        alertmanager_yml=alertmanager_config(f"http://127.0.0.1:{free_port()}/"),
        interval="1s",
        flap_period=3.0,
        failure_threshold=1,
        extend_exporter_config=lambda demo_config: exporter_config(demo_config, workdir),
        exporter_env=plugin_env,
    ) as running:
        stack = FullStack(workdir, running.exporter_url, running.prometheus_url)
        # Post only once Prometheus has scraped the counters at zero, so increase() sees events.
        deadline = time.monotonic() + 30
        while not stack.query('implmon_deployments_total{job="implmon"}')["data"]["result"]:
            assert time.monotonic() < deadline, "Prometheus never scraped the exporter"
            time.sleep(0.5)
        # A histogram series is born with its first observations, which increase() cannot
        # see; a dashboard sees later ones. So: one batch, a scrape of it, a second batch.
        _post(stack, pipeline_events(1))
        _wait_for(stack, ["implmon_deployment_time_to_restore_seconds_bucket"])
        _post(stack, pipeline_events(2))
        # Let a few cycles see the first reports, then replace them: the trend needs two.
        time.sleep(3)
        write_reports(project, reports, partial=True)
        _wait_until_scraped(stack)
        yield stack


@pytest.fixture(scope="session")
def full_stack_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullStack]:
    """The running, fed stack, shared by the dashboard-query and cross-reference tests."""
    with full_stack(tmp_path_factory.mktemp("full-stack")) as running:
        yield running


def _post(stack: FullStack, events: list[dict[str, Any]]) -> None:
    for event in events:
        answer = http_json(f"{stack.exporter_url}/api/v1/events", event)
        assert answer["status"] == "stored", answer


def _wait_until_scraped(stack: FullStack) -> None:
    """Until Prometheus has the trend's change series, the second batch of events and a firing
    alert, plus a few more scrapes so that rate() over them has two samples."""
    _wait_for(
        stack,
        [
            "implmon_quality_tests_change",
            "increase(implmon_deployment_time_to_restore_seconds_count[1m]) > 0",
            'ALERTS{alertstate="firing"}',
        ],
    )
    time.sleep(4)


def _wait_for(stack: FullStack, probes: list[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    missing = probes
    while time.monotonic() < deadline:
        missing = [q for q in probes if not stack.query(q).get("data", {}).get("result")]
        if not missing:
            return
        time.sleep(0.5)
    raise AssertionError(f"never scraped: {missing}")
