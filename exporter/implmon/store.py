"""The durable event store: one SQLite file in WAL mode, written by group commit.

An event is acknowledged only after the transaction holding it has committed. One writer thread
owns the connection: it takes every request waiting in its queue, inserts them all in one
transaction and commits once, then wakes each request. While a commit is in progress new
requests queue up and share the next one, so durability costs one commit per batch rather than
per event (``synchronous=FULL``, an fsync per commit, stays fast for the same reason).

Several processes may share one file (an exporter and a deploy tool embedding the SDK): SQLite
serialises their transactions, and each store folds in the others' events in file order, before
its own next batch and, when idle, every ``poll_interval`` seconds.

Event ids are unique: sending an id again returns the stored event (``duplicate`` when the
content is the same, ``conflict`` when it differs) and records nothing. The pipeline aggregates
(:mod:`implmon.dora`) are rebuilt at start from the last checkpoint plus the events after it, so
counters never go backwards across restarts. Retention deletes events older than the retention
period once a checkpoint covers them (idempotency holds for as long as an event is kept).

>>> import asyncio, tempfile, pathlib
>>> from implmon.events import parse_event
>>> async def demo(path: pathlib.Path) -> str:
...     async with EventStore(path) as store:
...         event = parse_event({"kind": "build", "id": "b1", "build_type": "testing",
...                              "outcome": "success"})
...         first = await store.append(event)
...         again = await store.append(event)
...         return f"{first.result} {again.result}"
>>> with tempfile.TemporaryDirectory() as d:
...     asyncio.run(demo(pathlib.Path(d) / "events.db"))
'stored duplicate'
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from implmon.dora import Histogram, PipelineAggregates
from implmon.events import Event, dump_event, parse_event
from implmon.metrics import CATALOGUE, Sample

__all__ = ["AppendResult", "EventStore", "StoreError", "Synchronous"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    received REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoint (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    upto_seq INTEGER NOT NULL,
    written REAL NOT NULL,
    state TEXT NOT NULL
);
"""
# Checkpoint the aggregates this often (seconds) when events arrived, bounding start-up replay.
CHECKPOINT_INTERVAL = 30.0
# An idle writer looks for events other processes sharing the file stored this often (seconds).
POLL_INTERVAL = 1.0
# At most this many events share one transaction.
MAX_BATCH = 1024


class Synchronous(StrEnum):
    """SQLite's ``synchronous`` setting. In WAL mode ``normal`` survives a process crash
    (SIGKILL) but may lose the last commits on power loss; ``full`` fsyncs every commit."""

    NORMAL = "normal"
    FULL = "full"


class StoreError(RuntimeError):
    """The store could not be opened or written; the message names the file."""


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What happened to an appended event. ``event`` is the stored one (the original for a
    duplicate or conflict); ``received`` its receive time, Unix seconds."""

    result: str  # stored, duplicate, conflict
    seq: int
    event: Event
    received: float

    @property
    def accepted(self) -> bool:
        return self.result != "conflict"


_Request = tuple[Event, str, float, "asyncio.Future[AppendResult]"]
# Queued by the ticker to wake an idle writer for its checkpoint.
_TICK: Any = ("tick",)
# What the SQLite thread returns for a batch: (id -> seq) for the new rows; for ids that were
# there before, (seq, received, body) of the stored event; rows other processes added.
_Written = tuple[
    dict[str, int], dict[str, tuple[int, float, str]], list[tuple[int, str, float, str]]
]


class EventStore:
    """Durable, idempotent event storage plus the pipeline aggregates over it.

    ``samples()`` (a :class:`~implmon.component.SampleProvider`) returns the pipeline
    families and the store's own figures. A store belongs to the event loop that started it;
    all SQLite work runs on one helper thread, which does nothing else (so it rarely needs the
    GIL that the loop is using).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: Synchronous | str = Synchronous.NORMAL,
        retention_seconds: float | None = None,
        checkpoint_interval: float = CHECKPOINT_INTERVAL,
        poll_interval: float = POLL_INTERVAL,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.path = Path(path)
        self.poll_interval = poll_interval
        # 1 turns group commit off (one transaction per event): for comparisons only.
        self.max_batch = max_batch
        self.synchronous = Synchronous(synchronous)
        self.retention_seconds = retention_seconds
        self.checkpoint_interval = checkpoint_interval
        self.aggregates = PipelineAggregates()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._executor: ThreadPoolExecutor | None = None
        self._writer: asyncio.Task[None] | None = None
        self._conn: sqlite3.Connection | None = None
        self._last_seq = 0
        self._results: dict[tuple[str, str], float] = {}
        self._commits = 0
        self._batch_hist = Histogram(CATALOGUE["implmon_store_commit_events"].buckets)
        self._rows = 0
        self._oldest: float | None = None
        self._last_checkpoint = 0.0
        self._dirty = False
        self._closed = False

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> EventStore:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _db(self, fn: Callable[..., _T], *args: Any) -> _T:
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def start(self) -> None:
        """Open (or create) the file, rebuild the aggregates and start the writer."""
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="implmon-store")
        try:
            await self._db(self._open)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        self._writer = asyncio.create_task(self._run(), name="implmon-store-writer")

    async def close(self) -> None:
        """Commit what is queued, write a checkpoint and close the file."""
        if self._writer is None or self._closed:
            return
        self._closed = True
        self._queue.put_nowait(None)
        await self._writer
        await self._maybe_checkpoint(force=True)
        conn = self._conn
        if conn is not None:
            await self._db(conn.close)
        assert self._executor is not None
        self._executor.shutdown(wait=True)

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Used only from the executor's single thread; created there too.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous.value.upper()}")
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"event store {self.path}: cannot open: {exc}") from exc
        self._conn = conn
        self._rebuild(conn)
        self._last_checkpoint = time.monotonic()

    def _rebuild(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT upto_seq, state FROM checkpoint WHERE one = 1").fetchone()
        upto = 0
        if row is not None:
            upto = int(row[0])
            self.aggregates = PipelineAggregates.from_state(json.loads(row[1]))
        replayed = 0
        for seq, received, body in conn.execute(
            "SELECT seq, received, body FROM events WHERE seq > ? ORDER BY seq", (upto,)
        ):
            try:
                self.aggregates.apply(parse_event(body), received)
            except ValueError as exc:  # written by something else: skip it, keep starting
                log.error("event store %s: event at seq %d skipped: %s", self.path, seq, exc)
                continue
            replayed += 1
        self._dirty = replayed > 0
        (self._last_seq,) = conn.execute(
            "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'events'"
        ).fetchone()
        self._rows, self._oldest = self._count_rows(conn)
        log.info(
            "event store %s: %d events, %d replayed after the checkpoint at seq %d",
            self.path,
            self._rows,
            replayed,
            upto,
        )

    @staticmethod
    def _count_rows(conn: sqlite3.Connection) -> tuple[int, float | None]:
        rows, oldest = conn.execute("SELECT count(*), min(received) FROM events").fetchone()
        return int(rows), float(oldest) if oldest is not None else None

    # --- appending --------------------------------------------------------------------------

    async def append(
        self, event: Event, *, received: float | None = None, body: str | None = None
    ) -> AppendResult:
        """Store the event durably; returns once its transaction has committed.

        ``body`` is the event's JSON as received, when it came as JSON (it is kept as is, which
        spares serialising it again); otherwise the event is serialised.
        """
        if self._writer is None or self._closed:
            raise StoreError(f"event store {self.path}: not running")
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(
            (
                event,
                dump_event(event) if body is None else body,
                time.time() if received is None else received,
                future,
            )
        )
        return await future

    async def _run(self) -> None:
        stop = False
        # Wakes the writer when it is idle, so that checkpoints happen without traffic too.
        ticker = asyncio.create_task(self._tick(), name="implmon-store-tick")
        try:
            while not stop:
                try:
                    stop = await self._write_next()
                except Exception:  # the writer must outlive any one batch: requests wait on it
                    log.exception("event store %s: writer error; continuing", self.path)
        finally:
            ticker.cancel()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            if self._queue.empty():
                self._queue.put_nowait(_TICK)

    async def _write_next(self) -> bool:
        """Write the next batch (whatever is queued); True when asked to stop."""
        stop = False
        first = await self._queue.get()
        if first is _TICK:
            await self._poll()
            await self._maybe_checkpoint(force=False)
            return False
        batch: list[_Request] = []
        if first is None:
            stop = True
        else:
            batch.append(first)
        while len(batch) < self.max_batch and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                stop = True
            elif item is not _TICK:
                batch.append(item)
        if batch:
            await self._write(batch)
        if not stop:
            await self._maybe_checkpoint(force=False)
        return stop

    def _insert(self, rows: list[tuple[str, str, float, str]], after_seq: int) -> _Written:
        """On the SQLite thread: insert the batch in one transaction; commit."""
        conn = self._conn
        assert conn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
            before = conn.total_changes
            conn.executemany(
                "INSERT INTO events (id, kind, received, body) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                rows,
            )
            inserted = conn.total_changes - before
            # AUTOINCREMENT under the write lock: of the rows after after_seq, the last
            # `inserted` are ours; any before them another process sharing the file committed
            # since we last looked.
            after = conn.execute(
                "SELECT seq, id FROM events WHERE seq > ? ORDER BY seq", (after_seq,)
            ).fetchall()
            split = len(after) - inserted
            fresh = {str(event_id): int(seq) for seq, event_id in after[split:]}
            foreign = [self._row(conn, int(seq)) for seq, _id in after[:split]]
            old: dict[str, tuple[int, float, str]] = {}
            for event_id, _k, _r, _b in rows:
                if event_id not in fresh and event_id not in old:
                    seq, received, body = conn.execute(
                        "SELECT seq, received, body FROM events WHERE id = ?", (event_id,)
                    ).fetchone()
                    old[event_id] = (int(seq), float(received), str(body))
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return fresh, old, foreign

    @staticmethod
    def _row(conn: sqlite3.Connection, seq: int) -> tuple[int, str, float, str]:
        event_id, received, body = conn.execute(
            "SELECT id, received, body FROM events WHERE seq = ?", (seq,)
        ).fetchone()
        return seq, str(event_id), float(received), str(body)

    def _select_after(self, after_seq: int) -> list[tuple[int, str, float, str]]:
        """On the SQLite thread: rows other processes committed after ``after_seq``."""
        conn = self._conn
        assert conn is not None
        return [
            (int(seq), str(i), float(r), str(b))
            for seq, i, r, b in conn.execute(
                "SELECT seq, id, received, body FROM events WHERE seq > ? ORDER BY seq",
                (after_seq,),
            )
        ]

    def _apply_foreign(self, rows: Sequence[tuple[int, str, float, str]]) -> None:
        """Fold in events another process sharing the file stored (in seq order)."""
        for seq, event_id, received, body in rows:
            try:
                self.aggregates.apply(parse_event(body), received)
            except ValueError as exc:  # a writer we do not know stored something unreadable
                log.error(
                    "event store %s: event %s (seq %d) skipped: %s", self.path, event_id, seq, exc
                )
            self._last_seq = max(self._last_seq, seq)
            self._rows += 1
            self._dirty = True
        if rows and self._oldest is None:
            self._oldest = rows[0][2]

    async def _poll(self) -> None:
        try:
            rows = await self._db(self._select_after, self._last_seq)
        except sqlite3.Error as exc:
            log.error("event store %s: reading new events failed: %s", self.path, exc)
            return
        if rows:
            log.debug("event store %s: %d events from another process", self.path, len(rows))
            self._apply_foreign(rows)

    async def _write(self, batch: Sequence[_Request]) -> None:
        rows = [(e.id, e.kind, received, body) for e, body, received, _f in batch]
        try:
            fresh, old, foreign = await self._db(self._insert, rows, self._last_seq)
        except sqlite3.Error as exc:
            log.error("event store %s: write of %d events failed: %s", self.path, len(batch), exc)
            err = StoreError(f"event store {self.path}: write failed: {exc}")
            for _e, _b, _r, future in batch:
                if not future.done():
                    future.set_exception(err)
                self._count(_e.kind, "error")
            return
        self._apply_foreign(foreign)
        if fresh:
            self._last_seq = max(fresh.values())
            self._dirty = True
            self._rows += len(fresh)
            if self._oldest is None:
                self._oldest = batch[0][2]
        self._commits += 1
        self._batch_hist.observe(float(len(batch)), None, 0.0)
        # The first request carrying a new id stored it; a repeat in the same batch is a dup.
        first: dict[str, tuple[int, float, str]] = {}
        for event, body, received, future in batch:
            res: AppendResult | StoreError
            try:
                res = self._result(event, body, received, fresh, old, first)
            except Exception as exc:  # every waiting request gets an answer, whatever happens
                log.exception("event store %s: answering for event %s failed", self.path, event.id)
                res = StoreError(f"event store {self.path}: event {event.id}: {exc}")
            if future.done():  # the request was cancelled; the event is stored all the same
                continue
            if isinstance(res, StoreError):
                future.set_exception(res)
            else:
                self._count(event.kind, res.result)
                future.set_result(res)

    def _result(
        self,
        event: Event,
        body: str,
        received: float,
        fresh: dict[str, int],
        old: dict[str, tuple[int, float, str]],
        first: dict[str, tuple[int, float, str]],
    ) -> AppendResult:
        seq = fresh.get(event.id)
        if seq is not None and event.id not in first:
            first[event.id] = (seq, received, body)
            self.aggregates.apply(event, received)
            return AppendResult("stored", seq, event, received)
        orig_seq, orig_received, orig_body = first.get(event.id) or old[event.id]
        original = parse_event(orig_body)
        return AppendResult(
            # The same event, however its JSON was spelled.
            "duplicate" if original == event else "conflict",
            orig_seq,
            original,
            orig_received,
        )

    def _count(self, kind: str, result: str) -> None:
        key = (kind, result)
        self._results[key] = self._results.get(key, 0.0) + 1.0

    async def _maybe_checkpoint(self, *, force: bool) -> None:
        now = time.monotonic()
        if not self._dirty or (
            not force and now - self._last_checkpoint < self.checkpoint_interval
        ):
            return
        self._last_checkpoint = now
        # The aggregates as of _last_seq: the writer is not inserting while we are here.
        state = json.dumps(self.aggregates.to_state(), separators=(",", ":"))
        self._dirty = False
        try:
            pruned, (self._rows, self._oldest) = await self._db(
                self._checkpoint, state, self._last_seq
            )
        except sqlite3.Error as exc:
            log.error("event store %s: checkpoint failed: %s", self.path, exc)
            self._dirty = True
            return
        if pruned:
            log.info("event store %s: retention removed %d events", self.path, pruned)

    def _checkpoint(self, state: str, upto: int) -> tuple[int, tuple[int, float | None]]:
        conn = self._conn
        assert conn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO checkpoint (one, upto_seq, written, state) VALUES (1, ?, ?, ?) "
                "ON CONFLICT (one) DO UPDATE SET upto_seq = excluded.upto_seq, "
                "written = excluded.written, state = excluded.state",
                (upto, time.time(), state),
            )
            pruned = 0
            if self.retention_seconds is not None:
                pruned = conn.execute(
                    "DELETE FROM events WHERE seq <= ? AND received < ?",
                    (upto, time.time() - self.retention_seconds),
                ).rowcount
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if pruned:
            conn.execute("PRAGMA incremental_vacuum")
        return pruned, self._count_rows(conn)

    def checkpoint(self) -> None:
        """Ask the writer to checkpoint (and apply retention) at its next chance."""
        self._last_checkpoint = 0.0
        self._dirty = True

    # --- reading ----------------------------------------------------------------------------

    def samples(self) -> list[Sample]:
        """Pipeline families plus the store's own figures (a SampleProvider)."""
        out = self.aggregates.samples()
        for (kind, result), value in self._results.items():
            out.append(
                Sample("implmon_store_events_total", {"kind": kind, "result": result}, value)
            )
        out.append(Sample("implmon_store_commits_total", {}, float(self._commits)))
        out.append(Sample("implmon_store_commit_events", {}, self._batch_hist.value()))
        out.append(Sample("implmon_store_events", {}, float(self._rows)))
        if self._oldest is not None:
            out.append(Sample("implmon_store_oldest_event_timestamp_seconds", {}, self._oldest))
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):  # the WAL may not exist (yet)
                size += os.stat(f"{self.path}{suffix}").st_size
        out.append(Sample("implmon_store_size_bytes", {}, float(size)))
        return out

    def events(self, *, after_seq: int = 0, limit: int = 1000) -> list[tuple[int, float, Event]]:
        """Stored events after ``after_seq`` (for reports and tests); opens its own reader."""
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT seq, received, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        finally:
            conn.close()
        return [(int(s), float(r), parse_event(b)) for s, r, b in rows]
