"""Shared fixtures: the real stack (demo agents, exporter, Prometheus, Alertmanager) on free
loopback ports, started through :mod:`implmon.stack` exactly as ``make demo`` starts it."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from implmon.demo import demo_config
from implmon.stack import (
    Process,
    free_port,
    free_port_block,
    prometheus_config,
    start_agents,
    start_exporter,
    start_prometheus,
)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


def http_json(url: str, data: bytes | None = None, method: str | None = None,
              headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def http_text(url: str, headers: dict[str, str] | None = None) -> str:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        text: str = resp.read().decode()
        return text


@dataclass
class Stack:
    """The running demo stack; ``query`` runs PromQL against its Prometheus."""

    workdir: Path
    agents_port: int
    exporter_port: int
    prometheus_port: int
    processes: list[Process] = field(default_factory=list)

    @property
    def exporter_url(self) -> str:
        return f"http://127.0.0.1:{self.exporter_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    def agent_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.agents_port + index}"

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        body = http_json(url)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, promql: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll until the query returns something; fail with the query if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(promql)
            if result:
                return result
            time.sleep(0.5)
        raise AssertionError(f"{promql!r} returned nothing within {timeout:g}s")


@pytest.fixture(scope="session")
def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Demo agents (event-processor flapping every 4 s), the exporter (1 s cycles, down after
    one failed check) and Prometheus (1 s scrapes, rules/ loaded), shared by the session."""
    workdir = tmp_path_factory.mktemp("stack")
    stack = Stack(workdir, free_port(), free_port(), free_port())
    # The agents need five consecutive ports: take a base that has them.
    stack.agents_port = free_port_block(5)
    try:
        stack.processes.append(start_agents(workdir, stack.agents_port, flap_period=4.0))
        stack.processes.append(start_exporter(workdir, demo_config(
            "127.0.0.1", stack.agents_port, interval="1s", store_path=workdir / "implmon.db",
            failure_threshold=1), stack.exporter_port))
        stack.processes.append(start_prometheus(workdir, prometheus_config(
            f"127.0.0.1:{stack.exporter_port}", scrape_interval="1s"), stack.prometheus_port))
        stack.wait_for('up{job="implmon"} == 1')
        yield stack
    finally:
        for proc in reversed(stack.processes):
            proc.stop()
