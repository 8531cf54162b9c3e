"""The monitor loop: failing, hanging and garbage-returning collectors never break a cycle or
/metrics; their last good values are kept and marked stale; other stages are guarded too."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from implmon.component import Analysis, Analyzer, Collector, ComponentSettings, Processor
from implmon.config import load_config
from implmon.metrics import Sample
from implmon.monitor import ImplementationMonitor, Pipeline
from implmon.registry import ComponentRegistry
from implmon.runtime import Runtime
from implmon.server import create_app
from prometheus_client.parser import text_string_to_metric_families


def value(samples: Sequence[Sample], metric: str, **labels: str) -> float | None:
    for s in samples:
        if s.metric == metric and all(s.labels.get(k) == v for k, v in labels.items()):
            assert isinstance(s.value, float | int)
            return float(s.value)
    return None


class Scripted(Collector):
    """Plays one behaviour per call from a script: a number, 'raise', 'hang', 'ignore-cancel'
    (hangs and swallows cancellation) or 'garbage'."""

    kind = "scripted"

    def __init__(self, name: str, script: list[object]) -> None:
        super().__init__(ComponentSettings(kind="scripted", name=name))
        self.script = script
        self.calls = 0

    async def collect(self) -> Sequence[Sample]:
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if step == "raise":
            raise RuntimeError("disk on fire")
        if step == "hang":
            await asyncio.sleep(3600)
        if step == "ignore-cancel":
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                try:
                    await asyncio.sleep(end - time.monotonic())
                except asyncio.CancelledError:
                    continue
        if step == "garbage":
            return [Sample("implmon_system_health_ratio", {"bogus": "x"}, 1.0)]
        if step == "not-a-list":
            return "hello"  # type: ignore[return-value]
        assert isinstance(step, float)
        return [Sample("implmon_host_cpus", {}, step)]


def monitor_for(*collectors: Collector, timeout: float = 0.2) -> ImplementationMonitor:
    pipeline = Pipeline(collectors=list(collectors),
                        timeouts={c.name: timeout for c in collectors})
    return ImplementationMonitor(pipeline, interval=1.0)


@pytest.mark.parametrize("failure", ["raise", "hang", "garbage", "not-a-list", "ignore-cancel"])
async def test_failing_collector_is_a_metric_and_keeps_stale_values(failure: str) -> None:
    bad = Scripted("bad", [4.0, failure])
    good = Scripted("good", [1.0])
    monitor = monitor_for(bad, good)

    first = await monitor.run_cycle()
    assert value(first.samples, "implmon_collector_success", collector="bad") == 1.0
    first_success = value(first.samples, "implmon_collector_last_success_timestamp_seconds",
                          collector="bad")

    started = time.monotonic()
    second = await monitor.run_cycle()
    assert time.monotonic() - started < 0.9, "a failing collector held up the cycle"
    assert value(second.samples, "implmon_collector_success", collector="bad") == 0.0
    assert value(second.samples, "implmon_collector_success", collector="good") == 1.0
    assert value(second.samples, "implmon_collector_stale", collector="bad") == 1.0
    assert value(second.samples, "implmon_collector_last_success_timestamp_seconds",
                 collector="bad") == first_success
    # The last good value is still exported.
    assert value(second.samples, "implmon_host_cpus") is not None
    duration = value(second.samples, "implmon_collector_duration_seconds", collector="bad")
    assert duration is not None and duration >= (0.19 if failure in ("hang", "ignore-cancel")
                                                 else 0.0)
    _, _, _, error = second.collectors["bad"]
    expected = {"raise": "RuntimeError: disk on fire", "hang": "deadline of 0.2s exceeded",
                "ignore-cancel": "deadline of 0.2s exceeded",
                "garbage": "returned garbage: item 0: implmon_system_health_ratio needs labels "
                           "[], got ['bogus']",
                "not-a-list": "returned garbage: returned str, not a list of samples"}[failure]
    assert error == expected


async def test_collector_that_ignores_cancellation_is_not_run_twice() -> None:
    stubborn = Scripted("stubborn", ["ignore-cancel"])
    monitor = monitor_for(stubborn, timeout=0.1)
    await monitor.run_cycle()
    second = await monitor.run_cycle()  # the first run is still going (it lasts 1 s)
    assert stubborn.calls == 1
    assert second.collectors["stubborn"][3] == "previous run is still running past its deadline"
    await asyncio.sleep(1.1)
    await monitor.run_cycle()
    assert stubborn.calls == 2


class Exploding(Processor, Analyzer):  # type: ignore[misc]
    kind = "exploding"

    def process(self, samples: list[Sample]) -> list[Sample]:
        raise ValueError("bad regex state")

    def analyze(self, samples: Sequence[Sample]) -> Analysis:
        raise KeyError("component")


async def test_failing_processor_and_analyzer_are_counted_and_skipped() -> None:
    broken = Exploding(ComponentSettings(kind="exploding", name="boom"))
    monitor = ImplementationMonitor(
        Pipeline(collectors=[Scripted("good", [2.0])], processors=[broken],
                 analyzers=[broken]), interval=1.0)
    snapshot = await monitor.run_cycle()
    assert value(snapshot.samples, "implmon_host_cpus") == 2.0
    assert value(snapshot.samples, "implmon_component_errors_total",
                 component="boom", role="processor") == 2.0  # counted by name: both roles
    assert monitor.cycles["success"] == 1


async def test_hanging_collector_does_not_slow_scrapes(tmp_path: Path) -> None:
    """/metrics serves the last snapshot while a collector hangs through its deadline."""
    config_file = tmp_path / "implmon.yaml"
    config_file.write_text("interval: 1s\ncollectors:\n  - {kind: system, name: host}\n")
    runtime = Runtime(load_config(config_file), registry=ComponentRegistry.default())
    app = create_app(runtime)
    async with TestClient(TestServer(app)) as client:
        hanging = Scripted("hanging", ["hang"])
        runtime.monitor.pipeline.collectors.append(hanging)
        runtime.monitor.pipeline.timeouts["hanging"] = 0.8
        latencies = []
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            resp = await client.get("/metrics")
            assert resp.status == 200
            body = await resp.text()
            latencies.append(time.perf_counter() - t0)
            await asyncio.sleep(0.05)
        families = {f.name: f for f in text_string_to_metric_families(body)}
        success = {s.labels["collector"]: s.value
                   for s in families["implmon_collector_success"].samples}
        assert success == {"host": 1.0, "hanging": 0.0}
        # Scrapes kept answering while the collector hung: none waited for the deadline.
        assert max(latencies) < 0.5, latencies
        assert len(latencies) > 20


async def test_ready_after_first_cycle_lists_components(tmp_path: Path) -> None:
    config_file = tmp_path / "implmon.yaml"
    config_file.write_text("interval: 1s\ncollectors:\n  - {kind: system, name: host}\n"
                           "analyzers:\n  - {kind: health, name: health}\n")
    runtime = Runtime(load_config(config_file))
    async with TestClient(TestServer(create_app(runtime))) as client:
        await asyncio.wait_for(_first_cycle(runtime), timeout=5)
        resp = await client.get("/-/ready")
        body = await resp.json()
        assert resp.status == 200
        assert body["ready"] is True
        assert body["components"]["host"]["up"] is True
        assert body["components"]["health"]["role"] == "analyzer"
        assert body["components"]["prometheus"]["kind"] == "prometheus"


async def _first_cycle(runtime: Runtime) -> None:
    while not runtime.monitor.ready:
        await asyncio.sleep(0.05)


async def test_reload_with_invalid_file_keeps_running_config(tmp_path: Path) -> None:
    config_file = tmp_path / "implmon.yaml"
    config_file.write_text("interval: 1s\ncollectors:\n  - {kind: system, name: host}\n")
    runtime = Runtime(load_config(config_file))
    async with TestClient(TestServer(create_app(runtime))) as client:
        await asyncio.wait_for(_first_cycle(runtime), timeout=5)
        host = runtime.monitor.pipeline.collectors[0]

        config_file.write_text("interval: 1s\ncollectors:\n  - {kind: sytem, name: host}\n")
        resp = await client.post("/-/reload")
        assert resp.status == 400
        errors = (await resp.json())["errors"]
        assert errors == [f"{config_file}:3: collectors[0].kind: unknown collector kind "
                          "'sytem'; known: " + ", ".join(
                              ComponentRegistry.default().kinds(host.role))]
        assert runtime.monitor.pipeline.collectors == [host]
        snapshot = await runtime.monitor.run_cycle()
        assert value(snapshot.samples, "implmon_config_last_reload_successful") == 0.0

        config_file.write_text("interval: 2s\ncollectors:\n  - {kind: system, name: host}\n"
                               "  - {kind: system, name: host2}\n")
        resp = await client.post("/-/reload")
        assert resp.status == 200
        # The unchanged collector is kept (its state survives), the new one is added.
        assert runtime.monitor.pipeline.collectors[0] is host
        assert [c.name for c in runtime.monitor.pipeline.collectors] == ["host", "host2"]
        assert runtime.monitor.interval == 2.0
        snapshot = await runtime.monitor.run_cycle()
        assert value(snapshot.samples, "implmon_config_last_reload_successful") == 1.0

        # The status page refreshes at the new interval (never faster than every 5 s).
        config_file.write_text("interval: 12s\ncollectors:\n  - {kind: system, name: host}\n")
        assert (await client.post("/-/reload")).status == 200
        page = await (await client.get("/")).text()
        assert '<meta http-equiv="refresh" content="12">' in page


class RaisingSink:
    """An alert stage with a bug: process() raises."""

    def __init__(self) -> None:
        self.calls = 0

    async def process(self, findings: Sequence[object]) -> None:
        self.calls += 1
        raise ConnectionError("bug in the sink")

    def samples(self) -> list[Sample]:
        return []


async def test_raising_alert_stage_is_counted_not_a_failed_cycle() -> None:
    sink = RaisingSink()
    monitor = ImplementationMonitor(Pipeline(collectors=[Scripted("good", [1.0])]), interval=1.0,
                                    alert_sink=sink)  # type: ignore[arg-type]
    await monitor.run_cycle()
    snapshot = await monitor.run_cycle()
    assert sink.calls == 2
    assert value(snapshot.samples, "implmon_component_errors_total",
                 component="alert-stage", role="alerter") == 2.0
    assert value(snapshot.samples, "implmon_monitor_cycles_total", outcome="success") == 2.0
    assert set(monitor.cycles) == {"success"}


def _series(n: int) -> list[Sample]:
    return [Sample("implmon_component_up", {"component": f"c{i}", "type": "agent"}, float(i % 2))
            for i in range(n)]


@pytest.mark.parametrize(("position", "bad", "message"), [
    (3000, "not a sample", "item 3000 is a str, not a Sample"),
    (2048, Sample("implmon_component_up", {"component": "x"}, 1.0),
     "item 2048: implmon_component_up needs labels ['component', 'type'], got ['component']"),
    (4100, Sample("implmon_component_up", {"component": "x", "type": 7}, 1.0),  # type: ignore[dict-item]
     "item 4100: implmon_component_up has a label value that is not a string"),
    (5, Sample("implmon_component_up", {"component": "x", "type": "y"}, "1"),  # type: ignore[arg-type]
     "item 5: implmon_component_up value '1' is not a number"),
    (4999, Sample("implmon_no_such_metric", {}, 1.0), "unknown metric 'implmon_no_such_metric'"),
])
def test_check_samples_names_the_bad_item_in_any_slice(position: int, bad: object,
                                                       message: str) -> None:
    """Validation runs a slice of 2048 samples at a time; the error still names the item."""
    from implmon.monitor import GarbageError, check_samples

    samples: list[object] = [*_series(5000)]
    samples[position] = bad
    with pytest.raises(GarbageError, match=re.escape(message)):
        check_samples(samples)


def test_check_samples_keeps_mixed_families_and_plain_numbers() -> None:
    from implmon.monitor import check_samples

    class Numpyish(float):
        def __repr__(self) -> str:
            return f"np.float64({float(self)!r})"

    mixed = [*_series(3000), Sample("implmon_system_health_ratio", {}, 0.5), *_series(10),
             Sample("implmon_system_health_ratio", {}, Numpyish(0.25)),
             Sample("implmon_host_cpus", {}, 2)]
    checked = check_samples(tuple(mixed))
    assert checked[:3011] == mixed[:3011] and checked[-1] == mixed[-1]
    # A float subclass comes back as a plain float: the exposition writes repr(value).
    assert type(checked[3011].value) is float and checked[3011].value == 0.25
