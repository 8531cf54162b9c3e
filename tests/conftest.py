"""Shared fixtures: the real stack (demo agents, exporter, Prometheus, Alertmanager) on free
loopback ports, started through :mod:`implmon.stack` exactly as ``make demo`` starts it."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from implmon.stack import Stack as RunningStack
from implmon.stack import start_stack

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
    """The running demo stack (:class:`implmon.stack.Stack`); ``query`` runs PromQL against its
    Prometheus."""

    running: RunningStack

    @property
    def exporter_url(self) -> str:
        return self.running.exporter_url

    @property
    def prometheus_url(self) -> str:
        return self.running.prometheus_url

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
    one failed check) and Prometheus (1 s scrapes, rules/ loaded), no Alertmanager, shared by
    the session."""
    workdir = tmp_path_factory.mktemp("stack")
    with start_stack(workdir, alertmanager_yml=None, interval="1s", flap_period=4.0,
                     failure_threshold=1) as running:
        stack = Stack(running)
        stack.wait_for('up{job="implmon"} == 1')
        yield stack
