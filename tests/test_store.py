"""The event store on a real SQLite file: durability, idempotency, rebuild, retention, DORA."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from implmon.events import Event, parse_event
from implmon.metrics import HistogramValue, Sample
from implmon.store import EventStore, StoreError, Synchronous


def ev(**fields: Any) -> Event:
    return parse_event(fields)


def deploy(i: int | str, env: str, outcome: str, at: str, **extra: Any) -> Event:
    return ev(kind="deployment", id=f"d{i}", environment=env, outcome=outcome, timestamp=at,
              **extra)


def by_key(samples: list[Sample]) -> dict[tuple[str, tuple[tuple[str, str], ...]], Any]:
    return {
        (s.metric, tuple(sorted(s.labels.items()))): s.value
        for s in samples
        if not s.metric.startswith("implmon_store_")
    }


def value(samples: list[Sample], metric: str, **labels: str) -> Any:
    return by_key(samples)[(metric, tuple(sorted(labels.items())))]


@pytest.mark.parametrize("sync", [Synchronous.NORMAL, Synchronous.FULL])
async def test_restart_rebuilds_the_same_figures(tmp_path: Path, sync: Synchronous) -> None:
    path = tmp_path / "events.db"
    async with EventStore(path, synchronous=sync) as store:
        results = await asyncio.gather(*(
            store.append(ev(kind="build", id=f"b{i}", build_type="testing",
                            outcome="success" if i % 3 else "failure",
                            duration_seconds=i / 10, trace_id=f"{i:032x}"))
            for i in range(200)
        ))
        assert [r.result for r in results] == ["stored"] * 200
        assert sorted(r.seq for r in results) == list(range(1, 201))
        before = by_key(store.samples())
        (commits,) = [s.value for s in store.samples() if s.metric == "implmon_store_commits_total"]
        # Group commit: 200 concurrent appends share far fewer transactions.
        assert isinstance(commits, float) and commits < 200
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    async with EventStore(path, synchronous=sync) as again:
        assert by_key(again.samples()) == before
        assert value(again.samples(), "implmon_builds_total", build_type="testing",
                     outcome="failure") == 67
        hist = value(again.samples(), "implmon_build_duration_seconds", build_type="testing")
        assert isinstance(hist, HistogramValue) and hist.count == 200
        assert hist.exemplars  # trace ids survive the restart too
        dup = await again.append(ev(kind="build", id="b5", build_type="testing",
                                    outcome="success", duration_seconds=0.5,
                                    trace_id=f"{5:032x}"))
        assert dup.result == "duplicate" and dup.seq == 6
        assert by_key(again.samples()) == before


async def test_conflicting_reuse_of_an_id(tmp_path: Path) -> None:
    async with EventStore(tmp_path / "e.db") as store:
        a = await store.append(deploy(1, "staging", "success", "2026-01-01T00:00:00Z"))
        b = await store.append(deploy(1, "staging", "failure", "2026-01-01T00:00:00Z"))
        assert (a.result, b.result) == ("stored", "conflict")
        assert b.event.outcome.value == "success"  # the original
        assert not b.accepted
        assert [e.id for _, _, e in store.events()] == ["d1"]


async def test_checkpoint_and_retention_keep_counters(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    async with EventStore(path, retention_seconds=3600) as store:
        for i in range(50):
            # Received two hours ago: older than the retention period.
            await store.append(deploy(i, "production", "success", "2026-01-01T00:00:00Z",
                                      duration_seconds=1.0), received=1.0)
        await store.append(deploy("new", "production", "failure", "2026-01-01T01:00:00Z"))
        before = by_key(store.samples())
        store.checkpoint()
    with sqlite3.connect(path) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM events").fetchone()
        (upto,) = conn.execute("SELECT upto_seq FROM checkpoint").fetchone()
    assert rows == 1  # only the recent event is left
    assert upto == 51
    async with EventStore(path, retention_seconds=3600) as again:
        assert by_key(again.samples()) == before
        assert value(again.samples(), "implmon_deployments_total", environment="production",
                     outcome="success") == 50
        rows_sample = next(s for s in again.samples() if s.metric == "implmon_store_events")
        assert rows_sample.value == 1


async def test_replay_after_checkpoint_counts_each_event_once(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    async with EventStore(path) as store:
        for i in range(10):
            await store.append(deploy(i, "testing", "success", "2026-01-01T00:00:00Z"))
        store.checkpoint()
    async with EventStore(path) as store:  # starts from the checkpoint (upto 10)
        for i in range(10, 15):
            await store.append(deploy(i, "testing", "success", "2026-01-01T00:00:00Z"))
    async with EventStore(path) as store:
        assert value(store.samples(), "implmon_deployments_total", environment="testing",
                     outcome="success") == 15


async def test_dora_figures(tmp_path: Path) -> None:
    async with EventStore(tmp_path / "e.db") as store:
        events = [
            # lead time 1h (commit 09:00, deployed 10:00)
            deploy(1, "production", "success", "2026-01-01T10:00:00Z",
                   commit_time="2026-01-01T09:00:00Z", duration_seconds=30),
            # fails at 11:00; a second failure does not move the start of the outage
            deploy(2, "production", "failure", "2026-01-01T11:00:00Z"),
            deploy(3, "production", "failure", "2026-01-01T11:10:00Z"),
            # restored at 11:30: time to restore 30 min
            deploy(4, "production", "success", "2026-01-01T11:30:00Z",
                   commit_time="2026-01-01T11:20:00Z"),
            # an incident at 12:00 resolved at 12:05: time to restore 5 min
            ev(kind="incident", id="i1", environment="production", status="opened",
               timestamp="2026-01-01T12:00:00Z"),
            ev(kind="incident", id="i2", environment="production", status="resolved",
               timestamp="2026-01-01T12:05:00Z"),
            deploy(5, "staging", "cancelled", "2026-01-01T12:00:00Z"),
            deploy(6, "staging", "failure", "2026-01-01T13:00:00Z"),
        ]
        for e in events:
            await store.append(e)
        s = store.samples()
        assert value(s, "implmon_deployments_total", environment="production",
                     outcome="failure") == 2
        assert value(s, "implmon_incidents_total", environment="production") == 1
        lead = value(s, "implmon_deployment_lead_time_seconds", environment="production")
        assert (lead.count, lead.sum) == (2, 3600 + 600)
        ttr = value(s, "implmon_deployment_time_to_restore_seconds", environment="production")
        assert (ttr.count, ttr.sum) == (2, 1800 + 300)
        assert value(s, "implmon_environment_failed", environment="production") == 0
        assert value(s, "implmon_environment_failed", environment="staging") == 1
        assert value(s, "implmon_deployment_last_success_timestamp_seconds",
                     environment="production") == 1767267000.0  # 11:30
        # Change failure rate = failed / all deployments, cancelled included in "all".
        staging = {o: value(s, "implmon_deployments_total", environment="staging", outcome=o)
                   for o in ("success", "failure", "cancelled")}
        assert staging == {"success": 0, "failure": 1, "cancelled": 1}


async def test_unwritable_store_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    store = EventStore(blocker / "e.db")
    with pytest.raises(StoreError, match=f"event store {blocker}/e.db: cannot open"):
        await store.start()


async def test_same_id_twice_in_one_batch(tmp_path: Path) -> None:
    async with EventStore(tmp_path / "e.db") as store:
        e = deploy(1, "staging", "success", "2026-01-01T00:00:00Z")
        other = deploy(1, "staging", "failure", "2026-01-01T00:00:00Z")
        results = await asyncio.gather(store.append(e), store.append(e), store.append(other))
        assert [r.result for r in results] == ["stored", "duplicate", "conflict"]
        assert {r.seq for r in results} == {1}
        assert value(store.samples(), "implmon_deployments_total", environment="staging",
                     outcome="success") == 1


async def test_two_processes_sharing_the_file_see_each_others_events(tmp_path: Path) -> None:
    """Two stores on one file (as an SDK process and the exporter would be): each folds in the
    other's events, when idle (polling) and before its own next write."""
    path = tmp_path / "shared.db"
    async with EventStore(path, poll_interval=0.05) as exporter, \
            EventStore(path, poll_interval=3600) as tool:
        await tool.append(deploy("t1", "production", "success", "2026-01-01T00:00:00Z"))
        for _ in range(100):  # the exporter's poll picks it up
            if value(exporter.samples(), "implmon_deployments_total",
                     environment="production", outcome="success") == 1:
                break
            await asyncio.sleep(0.02)
        assert value(exporter.samples(), "implmon_deployments_total",
                     environment="production", outcome="success") == 1
        await exporter.append(deploy("e1", "production", "failure", "2026-01-01T00:10:00Z"))
        # The tool never polls; its next write folds in the exporter's failure first, then its
        # own success (a restore: the failure came before it in the file).
        again = await tool.append(deploy("e1", "production", "failure", "2026-01-01T00:10:00Z"))
        assert again.result == "duplicate"
        await tool.append(deploy("t2", "production", "success", "2026-01-01T00:40:00Z"))
        for _ in range(100):
            if by_key(exporter.samples()) == by_key(tool.samples()):
                break
            await asyncio.sleep(0.02)
        assert by_key(exporter.samples()) == by_key(tool.samples())
        ttr = value(tool.samples(), "implmon_deployment_time_to_restore_seconds",
                    environment="production")
        assert (ttr.count, ttr.sum) == (1, 1800)
    async with EventStore(path) as restarted:  # and a rebuild agrees with both
        assert value(restarted.samples(), "implmon_deployments_total",
                     environment="production", outcome="success") == 2


async def test_an_unreadable_row_from_elsewhere_does_not_stop_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    async with EventStore(path, poll_interval=3600) as store:
        await store.append(deploy(1, "testing", "success", "2026-01-01T00:00:00Z"))
        with sqlite3.connect(path) as other:  # another writer, storing something unreadable
            other.execute("INSERT INTO events (id, kind, received, body) "
                          "VALUES ('x', 'deployment', 0, 'not json')")
        result = await asyncio.wait_for(
            store.append(deploy(2, "testing", "success", "2026-01-01T00:00:00Z")), 10)
        assert result.result == "stored"
        result = await asyncio.wait_for(
            store.append(deploy(3, "testing", "success", "2026-01-01T00:00:00Z")), 10)
        assert result.result == "stored" and result.seq == 4
        assert value(store.samples(), "implmon_deployments_total", environment="testing",
                     outcome="success") == 3
    async with EventStore(path) as again:  # and a restart skips it too
        assert value(again.samples(), "implmon_deployments_total", environment="testing",
                     outcome="success") == 3
