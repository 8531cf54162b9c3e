"""The exporter's GC policy: collection paused during a cycle, survivors frozen after it, and
big lists released a slice at a time."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from implmon.component import Collector, ComponentSettings
from implmon.gcpolicy import CyclePolicy, release_piecewise, sole_owner
from implmon.metrics import Sample
from implmon.monitor import ImplementationMonitor, Pipeline


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.enable()
    gc.set_threshold(*threshold)


def test_release_piecewise_empties_the_list() -> None:
    items: list[object] = [object() for _ in range(10_000)]
    release_piecewise(items)
    assert items == []


def test_sole_owner_counts_other_references() -> None:
    items: list[int] = [1, 2, 3]
    assert sole_owner(items, expected=1)
    holder = {"also": items}
    assert not sole_owner(items, expected=1)
    del holder
    assert sole_owner(items, expected=1)


class Flaky(Collector):
    kind = "flaky"

    async def collect(self) -> list[Sample]:
        assert not gc.isenabled(), "automatic collection runs during the cycle"
        return [Sample("implmon_host_cpus", {}, 2.0)]


async def test_policy_pauses_collection_during_cycles_and_freezes_after() -> None:
    policy = CyclePolicy()
    monitor = ImplementationMonitor(
        Pipeline(collectors=[Flaky(ComponentSettings(kind="flaky", name="f"))]), interval=0.05,
        before_cycle=policy.before_cycle, after_cycle=policy.after_cycle)
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    while monitor.cycles["success"] < 3:
        await asyncio.sleep(0.01)
    stop.set()
    await task
    assert monitor._collectors["f"].success  # the assertion inside collect() held
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[2] == 1_000_000


async def test_collection_resumes_when_a_cycle_fails() -> None:
    policy = CyclePolicy()
    monitor = ImplementationMonitor(Pipeline(), interval=0.05, before_cycle=policy.before_cycle,
                                    after_cycle=policy.after_cycle)

    async def broken() -> None:
        raise RuntimeError("cycle blew up")

    monitor.run_cycle = broken  # type: ignore[method-assign,assignment]
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    while monitor.cycles["failure"] < 2:
        await asyncio.sleep(0.01)
    stop.set()
    await task
    assert gc.isenabled()


def test_release_piecewise_empties_a_dict() -> None:
    series = {(str(i),): float(i) for i in range(10_000)}
    release_piecewise(series)
    assert series == {}
