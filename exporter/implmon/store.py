"""The durable event store: one SQLite file in WAL mode, written by group commit.

An event is acknowledged only after the transaction holding it has committed. One writer thread
owns the connection: it takes every request waiting in its queue, inserts them all in one
transaction and commits once, then wakes each request. While a commit is in progress new
requests queue up and share the next one, so durability costs one commit per batch rather than
per event (``synchronous=FULL``, an fsync per commit, stays fast for the same reason).

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
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

from implmon.dora import Histogram, PipelineAggregates
from implmon.events import Event, dump_event, parse_event
from implmon.metrics import CATALOGUE, Sample

__all__ = ["AppendResult", "EventStore", "StoreError", "Synchronous"]

log = logging.getLogger(__name__)

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


_Request = tuple[Event, str, float, "asyncio.Future[AppendResult]", asyncio.AbstractEventLoop]


class EventStore:
    """Durable, idempotent event storage plus the pipeline aggregates over it.

    ``samples()`` (a :class:`~implmon.component.SampleProvider`) returns the pipeline
    families and the store's own figures.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: Synchronous | str = Synchronous.NORMAL,
        retention_seconds: float | None = None,
        checkpoint_interval: float = CHECKPOINT_INTERVAL,
    ) -> None:
        self.path = Path(path)
        self.synchronous = Synchronous(synchronous)
        self.retention_seconds = retention_seconds
        self.checkpoint_interval = checkpoint_interval
        self.aggregates = PipelineAggregates()
        self._lock = threading.Lock()  # guards aggregates and the figures below
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
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

    async def start(self) -> None:
        """Open (or create) the file, rebuild the aggregates and start the writer thread."""
        await asyncio.to_thread(self._open)
        self._thread = threading.Thread(target=self._run, name="implmon-store", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Commit what is queued, write a checkpoint and close the file."""
        if self._thread is None or self._closed:
            return
        self._closed = True
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # The writer thread owns the connection after start; check_same_thread is off only
            # so that _open (run in a helper thread) can prepare it.
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
        for _seq, received, body in conn.execute(
            "SELECT seq, received, body FROM events WHERE seq > ? ORDER BY seq", (upto,)
        ):
            self.aggregates.apply(parse_event(body), received)
            replayed += 1
        self._dirty = replayed > 0
        self._count_rows(conn)
        log.info(
            "event store %s: %d events, %d replayed after the checkpoint at seq %d",
            self.path,
            self._rows,
            replayed,
            upto,
        )

    def _count_rows(self, conn: sqlite3.Connection) -> None:
        rows, oldest = conn.execute("SELECT count(*), min(received) FROM events").fetchone()
        with self._lock:
            self._rows = int(rows)
            self._oldest = float(oldest) if oldest is not None else None

    # --- appending --------------------------------------------------------------------------

    async def append(self, event: Event, *, received: float | None = None) -> AppendResult:
        """Store the event durably; returns once its transaction has committed."""
        if self._thread is None or self._closed:
            raise StoreError(f"event store {self.path}: not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AppendResult] = loop.create_future()
        body = dump_event(event)
        self._queue.put((event, body, time.time() if received is None else received, future, loop))
        return await future

    def _run(self) -> None:
        conn = self._conn
        assert conn is not None
        stop = False
        while not stop:
            try:
                first = self._queue.get(timeout=self.checkpoint_interval / 2)
            except queue.Empty:
                self._maybe_checkpoint(conn, force=False)
                continue
            batch: list[_Request] = []
            if first is None:
                stop = True
            else:
                batch.append(first)
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    continue
                batch.append(item)
            if batch:
                self._write(conn, batch)
            self._maybe_checkpoint(conn, force=stop)
        conn.close()

    def _write(self, conn: sqlite3.Connection, batch: Sequence[_Request]) -> None:
        results: list[AppendResult | BaseException] = []
        fresh: list[tuple[Event, float]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for event, body, received, _f, _l in batch:
                cur = conn.execute(
                    "INSERT INTO events (id, kind, received, body) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (id) DO NOTHING",
                    (event.id, event.kind, received, body),
                )
                if cur.rowcount == 1:
                    assert cur.lastrowid is not None
                    results.append(AppendResult("stored", cur.lastrowid, event, received))
                    fresh.append((event, received))
                    continue
                seq, orig_received, orig_body = conn.execute(
                    "SELECT seq, received, body FROM events WHERE id = ?", (event.id,)
                ).fetchone()
                result = "duplicate" if orig_body == body else "conflict"
                results.append(
                    AppendResult(result, int(seq), parse_event(orig_body), float(orig_received))
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("event store %s: write of %d events failed: %s", self.path, len(batch), exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            err = StoreError(f"event store {self.path}: write failed: {exc}")
            results = [err] * len(batch)
            fresh = []
        with self._lock:
            for event, received in fresh:
                self.aggregates.apply(event, received)
            for (event, *_rest), res in zip(batch, results, strict=True):
                key = (event.kind, res.result if isinstance(res, AppendResult) else "error")
                self._results[key] = self._results.get(key, 0.0) + 1.0
            if fresh:
                self._dirty = True
                self._rows += len(fresh)
                if self._oldest is None:
                    self._oldest = fresh[0][1]
            self._commits += 1
            self._batch_hist.observe(float(len(batch)), None, 0.0)
        # One wake-up per loop for the whole batch.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, AppendResult | BaseException]]]
        by_loop = {}
        for (_e, _b, _r, future, loop), res in zip(batch, results, strict=True):
            by_loop.setdefault(loop, []).append((future, res))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, items)
            except RuntimeError:  # the caller's loop has closed: nobody is waiting any more
                log.debug("event store %s: a caller's event loop closed before its ack", self.path)

    def _maybe_checkpoint(self, conn: sqlite3.Connection, *, force: bool) -> None:
        now = time.monotonic()
        if not self._dirty or (
            not force and now - self._last_checkpoint < self.checkpoint_interval
        ):
            return
        self._last_checkpoint = now
        try:
            with self._lock:
                state = json.dumps(self.aggregates.to_state(), separators=(",", ":"))
                self._dirty = False
            conn.execute("BEGIN IMMEDIATE")
            (upto,) = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
            conn.execute(
                "INSERT INTO checkpoint (one, upto_seq, written, state) VALUES (1, ?, ?, ?) "
                "ON CONFLICT (one) DO UPDATE SET upto_seq = excluded.upto_seq, "
                "written = excluded.written, state = excluded.state",
                (upto, time.time(), state),
            )
            pruned = 0
            if self.retention_seconds is not None:
                cur = conn.execute(
                    "DELETE FROM events WHERE seq <= ? AND received < ?",
                    (upto, time.time() - self.retention_seconds),
                )
                pruned = cur.rowcount
            conn.execute("COMMIT")
            if pruned:
                conn.execute("PRAGMA incremental_vacuum")
                log.info("event store %s: retention removed %d events", self.path, pruned)
            self._count_rows(conn)
        except sqlite3.Error as exc:
            log.error("event store %s: checkpoint failed: %s", self.path, exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._dirty = True

    def checkpoint(self) -> None:
        """Ask the writer to checkpoint (and apply retention) at its next chance."""
        self._last_checkpoint = 0.0
        self._dirty = True

    # --- reading ----------------------------------------------------------------------------

    def samples(self) -> list[Sample]:
        """Pipeline families plus the store's own figures (a SampleProvider)."""
        with self._lock:
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


def _resolve(items: list[tuple[Any, AppendResult | BaseException]]) -> None:
    for future, res in items:
        if future.done():  # the request was cancelled (client went away); the event is stored
            continue
        if isinstance(res, BaseException):
            future.set_exception(res)
        else:
            future.set_result(res)
