"""/metrics of a real exporter after SDK calls and ingested events: the pipeline families carry
the right values, exemplars appear in OpenMetrics, and promtool finds nothing to complain about.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from implmon.builder import Build
from implmon.deployer import Deployment, DeploymentError
from implmon.manager import ImplementationManager
from implmon.stack import free_port, start_exporter

TOKEN = "pipeline-metrics-token"


def post(url: str, event: dict[str, Any]) -> int:
    req = urllib.request.Request(
        f"{url}/api/v1/events", data=json.dumps(event).encode(), method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def scrape(url: str, openmetrics: bool = False) -> str:
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    req = urllib.request.Request(f"{url}/metrics", headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(resp.read().decode())


def series(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.split(" # ")[0].rsplit(" ", 1)
            out[name] = float(value)
    return out


async def sdk_calls(store: Path) -> tuple[Build, Deployment]:
    """A deploy tool embedding the SDK: one build, one good and one failed deployment."""
    async def tests(build: Build) -> bool:
        return True

    async with ImplementationManager.open(store, tester=tests) as manager:
        build = await manager.builder.build_system(["api"], "production", version="1.4.2",
                                                   build_id="sdk-build-1")
        dep = await manager.deployer.deploy_system(build, "production",
                                                   deployment_id="sdk-deploy-1")

        async def broken(d: Deployment) -> None:
            raise RuntimeError("helm upgrade timed out")

        manager.deployer.deploy = broken
        with pytest.raises(DeploymentError):
            await manager.deployer.deploy_system(build, "production",
                                                 deployment_id="sdk-deploy-2")
    return build, dep


@pytest.mark.integration
async def test_pipeline_families_after_sdk_calls_and_ingest(tmp_path: Path) -> None:
    store = tmp_path / "events.db"
    await sdk_calls(store)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (tmp_path / "ingest-token").write_text(TOKEN + "\n")
    config = (f"interval: 0.2s\nstore_path: {store}\n"
              f"ingest:\n  token_file: {tmp_path / 'ingest-token'}\n")
    with start_exporter(tmp_path, config, port):
        # Ingested from CI: a successful production deployment restoring the failed one, with
        # its change time (lead time 1h) and a trace id; a staging build; a validation.
        assert post(url, {
            "kind": "deployment", "id": "ci-77", "environment": "production",
            "outcome": "success", "duration_seconds": 42.5, "version": "1.4.3",
            "commit_time": "2026-11-24T09:00:00Z", "timestamp": "2026-11-24T10:00:00Z",
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
        }) == 201
        assert post(url, {"kind": "build", "id": "ci-b1", "build_type": "staging",
                          "outcome": "failure", "duration_seconds": 310.0}) == 201
        assert post(url, {"kind": "validation", "id": "ci-v1", "validation_type": "quality",
                          "outcome": "passed"}) == 201
        assert post(url, {"kind": "build", "id": "ci-b1", "build_type": "staging",
                          "outcome": "failure", "duration_seconds": 310.0}) == 200
        assert post(url, {"kind": "build", "id": "bad", "build_type": "nightly"}) == 400

        # /metrics is rendered once per cycle: wait for one that has the last event.
        for _ in range(50):
            text = scrape(url)
            if 'implmon_ingest_requests_total{code="400"} 1' in text:
                break
            time.sleep(0.1)
        values = series(text)
        assert values['implmon_builds_total{build_type="production",outcome="success"}'] == 1
        assert values['implmon_builds_total{build_type="staging",outcome="failure"}'] == 1
        assert values['implmon_builds_total{build_type="testing",outcome="success"}'] == 0
        assert values['implmon_build_duration_seconds_count{build_type="staging"}'] == 1
        assert values['implmon_build_duration_seconds_bucket{build_type="staging",le="300.0"}'] \
            == 0
        assert values['implmon_build_duration_seconds_bucket{build_type="staging",le="600.0"}'] \
            == 1
        dep = 'implmon_deployments_total{environment="production",outcome='
        assert values[dep + '"success"}'] == 2  # SDK + CI
        assert values[dep + '"failure"}'] == 1  # SDK
        assert values['implmon_deployment_duration_seconds_count{environment="production"}'] == 3
        lead = "implmon_deployment_lead_time_seconds"
        assert values[f'{lead}_count{{environment="production"}}'] == 1
        assert values[f'{lead}_sum{{environment="production"}}'] == 3600
        assert values['implmon_deployment_time_to_restore_seconds_count'
                      '{environment="production"}'] == 1
        assert values['implmon_environment_failed{environment="production"}'] == 0
        assert values['implmon_validations_total{validation_type="quality",outcome="passed"}'] \
            == 1
        assert values['implmon_store_events'] == 6
        assert values['implmon_ingest_requests_total{code="201"}'] == 3
        assert values['implmon_ingest_requests_total{code="200"}'] == 1

        # Exemplars only in OpenMetrics: the CI deployment's trace id on its bucket.
        om = scrape(url, openmetrics=True)
        assert re.search(
            r'^implmon_deployment_duration_seconds_bucket\{environment="production",le="60.0"\} '
            r'\S+ # \{trace_id="0af7651916cd43dd8448eb211c80319c"\} 42.5 \S+$', om, re.M), om
        assert "# {" not in text
        assert om.endswith("# EOF\n")

        lint = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                              capture_output=True, check=False)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        assert lint.stdout.strip() == "" and lint.stderr.strip() == ""
