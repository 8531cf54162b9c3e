"""Ingest benchmark: durable events per second and acknowledgement latency, and a crash loop.

Runs the real exporter (``implmon run``) as a subprocess on a fresh store and drives
``POST /api/v1/events`` from client processes, each holding several keep-alive connections
(a minimal HTTP/1.1 client, so the clients spend little CPU of the shared machine). Every event
is acknowledged only after its group commit, so events/s here are durable events/s.

    .venv/bin/python bench/ingest.py throughput [--synchronous full] [--events 40000] [--naive]
    .venv/bin/python bench/ingest.py crash [--iterations 20]

``crash``: the exporter takes events as fast as the clients can send them and is killed with
SIGKILL at a random moment; after a restart every acknowledged event must be in the store and
counted exactly once in ``/metrics`` (``tests/test_crash.py`` runs a few iterations).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from implmon.stack import Process, free_port, start_exporter, wait_http

TOKEN = "bench-token"


def event_body(event_id: str) -> bytes:
    """The event for an id ("<prefix>-<n>"): the same id always gives the same event, so a
    retry is a duplicate, not a conflict."""
    i = int(event_id.rsplit("-", 1)[1])
    return json.dumps({
        "kind": "deployment", "id": event_id,
        "environment": ("development", "testing", "staging", "production")[i % 4],
        "outcome": "failure" if i % 10 == 0 else "success",
        "duration_seconds": (i % 600) / 10,
    }).encode()


def request_bytes(port: int, body: bytes) -> bytes:
    return (
        f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@dataclass
class ClientResult:
    acked: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


async def _connection(port: int, ids: list[str], out: ClientResult,
                      deadline: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for event_id in ids:
            if time.monotonic() > deadline:
                break
            payload = request_bytes(port, event_body(event_id))
            t0 = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            match = re.search(rb"(?i)content-length: *(\d+)", head)
            if match:
                await reader.readexactly(int(match.group(1)))
            out.latencies.append(time.perf_counter() - t0)
            out.statuses[status] = out.statuses.get(status, 0) + 1
            if 200 <= status < 300:
                out.acked.append(event_id)
            else:
                out.errors += 1
    except (OSError, asyncio.IncompleteReadError):
        out.errors += 1  # the exporter went away (crash mode)
    finally:
        writer.close()


def _client(args: tuple[int, list[str], int, float, Any]) -> None:
    port, ids, connections, duration, queue = args
    out = ClientResult()
    deadline = time.monotonic() + duration

    async def main() -> None:
        per = [ids[i::connections] for i in range(connections)]
        await asyncio.gather(*(
            _connection(port, chunk, out, deadline) for chunk in per
        ))

    asyncio.run(main())
    queue.put((out.acked, out.latencies, out.errors, out.statuses))


def drive(port: int, ids: list[str], *, processes: int, connections: int,
          duration: float = 3600.0) -> tuple[ClientResult, float]:
    """Send ``ids`` from ``processes`` client processes; returns results and elapsed seconds."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    shards = [ids[i::processes] for i in range(processes)]
    procs = [
        ctx.Process(target=_client, args=((port, shard, connections, duration, queue),))
        for shard in shards
    ]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    total = ClientResult()
    for _ in procs:
        acked, latencies, errors, statuses = queue.get()
        total.acked += acked
        total.latencies += latencies
        total.errors += errors
        for k, v in statuses.items():
            total.statuses[k] = total.statuses.get(k, 0) + v
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    return total, elapsed


def exporter_config(store: Path, synchronous: str) -> str:
    # A long interval: the benchmark measures ingest, not the monitor loop.
    return (f"interval: 5s\nstore_path: {store}\nstore_synchronous: {synchronous}\n"
            f"ingest:\n  token: {TOKEN}\n")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# The ingest API alone, with group commit turned off (one transaction per event): the naive
# baseline the group commit is measured against. argv: port, store path, synchronous.
NAIVE_SERVER = """
import asyncio, signal, sys
from pathlib import Path
from aiohttp import web
from implmon import ingest

async def main() -> None:
    app = web.Application()
    api = ingest.setup_routes(app, store_path=Path(sys.argv[2]), synchronous=sys.argv[3],
                              token_value="TOKEN", listen_host="127.0.0.1")
    api.store.max_batch = 1
    app.router.add_get("/-/ready", lambda request: web.Response(text="ok"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(sys.argv[1])).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()

asyncio.run(main())
""".replace("TOKEN", TOKEN)


def _server(work: Path, synchronous: str, port: int, naive: bool) -> Process:
    if not naive:
        return start_exporter(work, exporter_config(work / "events.db", synchronous), port)
    proc = Process("naive ingest", [sys.executable, "-c", NAIVE_SERVER, str(port),
                                    str(work / "events.db"), synchronous], work / "naive.log")
    wait_http(f"http://127.0.0.1:{port}/-/ready", proc=proc)
    return proc


def throughput(events: int, synchronous: str, processes: int, connections: int,
               naive: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        port = free_port()
        with _server(work, synchronous, port, naive):
            # Warm up (connections, code paths), then measure.
            drive(port, [f"warm-{i}" for i in range(2000)], processes=1, connections=8)
            ids = [f"ev-{i}" for i in range(events)]
            result, elapsed = drive(port, ids, processes=processes, connections=connections)
        with sqlite3.connect(work / "events.db") as conn:
            (rows,) = conn.execute("SELECT count(*) FROM events WHERE id LIKE 'ev-%'").fetchone()
    assert rows == len(result.acked), (rows, len(result.acked))
    return {
        "server": "naive: one commit per event" if naive else "implmon run (group commit)",
        "synchronous": synchronous,
        "clients": f"{processes} processes x {connections} connections",
        "events": len(result.acked),
        "errors": result.errors,
        "events_per_second": round(len(result.acked) / elapsed),
        "p50_ms": round(statistics.median(result.latencies) * 1000, 2),
        "p99_ms": round(percentile(result.latencies, 0.99) * 1000, 2),
    }


def scrape_deployments(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
        if line.startswith("implmon_deployments_total{")
    )


def crash_iteration(work: Path, port: int, round_: int, synchronous: str = "normal",
                    kill_after: tuple[float, float] = (0.3, 1.5)) -> dict[str, Any]:
    """One crash: load, SIGKILL at a random moment, restart, check every ack is counted once."""
    store = work / "events.db"
    config = exporter_config(store, synchronous)
    ids = [f"r{round_}-{i}" for i in range(200_000)]
    exporter: Process = start_exporter(work, config, port)
    delay = random.uniform(*kill_after)

    def killer() -> None:
        time.sleep(delay)
        exporter.signal(signal.SIGKILL)

    t = threading.Thread(target=killer)
    t.start()
    result, _ = drive(port, ids, processes=1, connections=16, duration=delay + 5)
    t.join()
    exporter.popen.wait(10)
    exporter.stop()
    with start_exporter(work, config, port) as again:
        with sqlite3.connect(store) as conn:
            stored = {r[0] for r in conn.execute("SELECT id FROM events")}
            (total,) = conn.execute("SELECT count(*) FROM events").fetchone()
        missing = [i for i in result.acked if i not in stored]
        counted = scrape_deployments(port)
        # Retrying acknowledged events records nothing new.
        retry, _ = drive(port, result.acked[:50], processes=1, connections=4)
        after_retry = scrape_deployments(port)
        with sqlite3.connect(store) as conn:
            (total_after,) = conn.execute("SELECT count(*) FROM events").fetchone()
        again.stop()
    return {
        "round": round_,
        "killed_after_s": round(delay, 2),
        "acked": len(result.acked),
        "stored_total": total,
        "missing_acked": len(missing),
        "counted": counted,
        "retry_statuses": retry.statuses,
        "rows_after_retry": total_after,
        "counted_after_retry": after_retry,
    }


def crash_loop(iterations: int, synchronous: str = "normal") -> list[dict[str, Any]]:
    """Run the crash iterations on one store; raises AssertionError on any lost or double."""
    rounds = []
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        port = free_port()
        for i in range(iterations):
            r = crash_iteration(work, port, i, synchronous)
            rounds.append(r)
            print(json.dumps(r), file=sys.stderr)
            assert r["missing_acked"] == 0, r
            assert r["counted"] == r["stored_total"], r  # every stored event counted once
            assert r["rows_after_retry"] == r["stored_total"], r
            assert set(r["retry_statuses"]) <= {200}, r
    return rounds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    tp = sub.add_parser("throughput")
    tp.add_argument("--events", type=int, default=40_000)
    tp.add_argument("--synchronous", choices=("normal", "full"), default="normal")
    tp.add_argument("--processes", type=int, default=2)
    tp.add_argument("--connections", type=int, default=16, help="per client process")
    tp.add_argument("--naive", action="store_true",
                    help="baseline: the ingest API alone with one commit per event")
    cr = sub.add_parser("crash")
    cr.add_argument("--iterations", type=int, default=20)
    cr.add_argument("--synchronous", choices=("normal", "full"), default="normal")
    args = parser.parse_args()
    print(f"# {os.cpu_count()} CPUs, {sys.version.split()[0]}", file=sys.stderr)
    if args.mode == "throughput":
        print(json.dumps(throughput(args.events, args.synchronous, args.processes,
                                    args.connections, args.naive)))
    else:
        rounds = crash_loop(args.iterations, args.synchronous)
        print(json.dumps({
            "iterations": len(rounds),
            "acked_total": sum(r["acked"] for r in rounds),
            "missing_acked": sum(r["missing_acked"] for r in rounds),
            "double_counted": sum(r["counted"] - r["stored_total"] for r in rounds),
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
