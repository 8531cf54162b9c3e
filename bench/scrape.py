"""Scrape benchmark: implmon's /metrics against plain prometheus_client, side by side.

Three measurements, each at 1k, 10k and 100k series, in one run:

1. Render: the per-cycle render (text format, warm prefix cache; also the full per-cycle
   build of both formats plus gzip) against ``prometheus_client.generate_latest`` on a
   registry holding the same series. The parsed outputs are checked to be identical.
2. Scrape latency: the real exporter (a subprocess, cycle interval 1 s, so a render is
   running in the background most of the time at 100k series) scraped by two concurrent
   clients asking as Prometheus does (OpenMetrics, gzip); against prometheus_client's own
   aiohttp handler on the same registry (``make_aiohttp_handler``), which renders per scrape.
3. Scrape latency while a collector is slow (it takes 90% of the interval every cycle) against
   the same exporter with fast collectors.

Run:  .venv/bin/python bench/scrape.py  [--sizes 1000,10000,100000] [--duration 8]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from implmon.component import Collector, ComponentSettings
from implmon.exposition import Exposition, Renderer
from implmon.metrics import MetricSpec, MetricType, Sample
from implmon.stack import free_port, wait_http
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

# Seconds each scraper waits between two scrapes (--pause).
PAUSE = 0.01

SPEC = MetricSpec("implmon_bench_series", MetricType.GAUGE,
                  "Synthetic series for the scrape benchmark.", ("component", "shard"))


def samples_for(n: int) -> list[Sample]:
    return [Sample(SPEC.name, {"component": f"component-{i % 500}", "shard": str(i)},
                   float(i) * 1.5) for i in range(n)]


def registry_for(samples: Sequence[Sample]) -> CollectorRegistry:
    class Same:
        def collect(self) -> Iterator[GaugeMetricFamily]:
            family = GaugeMetricFamily(SPEC.name, SPEC.help, labels=list(SPEC.labels))
            for s in samples:
                family.add_metric([s.labels["component"], s.labels["shard"]], s.value)
            yield family

    registry = CollectorRegistry()
    registry.register(Same())  # type: ignore[arg-type]
    return registry


def best_of(fn: Any, repeat: int) -> float:
    """Best wall time of ``repeat`` calls, with the cyclic GC off as timeit does (both sides
    allocate alike; a collection landing in one run would measure the heap, not the code)."""
    times = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return min(times)


def parsed(text: str) -> set[tuple[Any, ...]]:
    return {(s.name, tuple(sorted(s.labels.items())), s.value)
            for f in text_string_to_metric_families(text) for s in f.samples}


def bench_render(n: int) -> dict[str, float]:
    samples = samples_for(n)
    registry = registry_for(samples)
    renderer = Renderer({SPEC.name: SPEC})
    repeat = 5
    ours_text = renderer.render(samples, openmetrics=False)  # warms the prefix cache
    assert parsed(ours_text.decode()) == parsed(generate_latest(registry).decode()), \
        "implmon and generate_latest outputs differ"
    theirs = best_of(lambda: generate_latest(registry), repeat)
    ours = best_of(lambda: renderer.render(samples, openmetrics=False), repeat)
    cold = best_of(lambda: Renderer({SPEC.name: SPEC}).render(samples, openmetrics=False), repeat)
    full = best_of(lambda: Exposition.build(renderer, samples), repeat)
    return {"generate_latest_s": theirs, "render_s": ours, "render_cold_s": cold,
            "full_cycle_build_s": full, "ratio": theirs / ours}


# --- scrape latency against real servers -------------------------------------------------

class Synthetic(Collector):
    """Emits N series; optionally sleeps to be slow (``delay`` seconds every run)."""

    kind = "bench_synthetic"
    metrics = (SPEC,)

    class Settings(ComponentSettings):
        series: int = 1000
        delay: float = 0.0

    async def collect(self) -> list[Sample]:
        if self.settings.delay:
            await asyncio.sleep(self.settings.delay)
        # A well-behaved collector does CPU-heavy work off the event loop.
        return await asyncio.to_thread(samples_for, self.settings.series)


def serve_implmon(port: int, series: int, delay: float, interval: float) -> None:
    from implmon.config import load_config
    from implmon.registry import ComponentRegistry
    from implmon.runtime import Runtime
    from implmon.server import serve

    registry = ComponentRegistry.from_entry_points()
    registry.register("bench_synthetic", Synthetic)
    workdir = Path(tempfile.mkdtemp())
    config = workdir / "implmon.yaml"
    config.write_text(
        f"interval: {interval}s\nstore_path: {workdir}/bench.db\ncollectors:\n"
        f"  - {{kind: bench_synthetic, name: synthetic, series: {series}, delay: {delay},"
        f" timeout: {min(2 * interval, interval * 0.9 + 1)}s}}\n")
    asyncio.run(serve(Runtime(load_config(config, registry), registry=registry),
                      "127.0.0.1", port))


def serve_client_python(port: int, series: int) -> None:
    from aiohttp import web
    from prometheus_client.aiohttp import make_aiohttp_handler

    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler(registry_for(samples_for(series))))
    web.run_app(app, host="127.0.0.1", port=port, print=None)


async def scrape_latencies(url: str, duration: float, max_requests: int,
                           concurrency: int = 2) -> list[float]:
    """Latencies of ``concurrency`` scrapers looping for ``duration`` seconds (so the scrapes
    span several cycles and hit renders in progress), each pausing 10 ms between scrapes."""
    headers = {"Accept": "application/openmetrics-text;version=1.0.0,text/plain;"
                         "version=0.0.4;q=0.5", "Accept-Encoding": "gzip"}
    latencies: list[float] = []

    async def worker(session: aiohttp.ClientSession, until: float, count: int) -> None:
        for _ in range(count):
            if time.monotonic() > until:
                return
            t0 = time.perf_counter()
            async with session.get(url, headers=headers) as resp:
                await resp.read()
                assert resp.status == 200
            latencies.append(time.perf_counter() - t0)
            await asyncio.sleep(PAUSE)

    async with aiohttp.ClientSession(auto_decompress=False) as session:
        await worker(session, time.monotonic() + 60, 3)  # warm up connections
        latencies.clear()
        until = time.monotonic() + duration
        await asyncio.gather(*(worker(session, until, max_requests // concurrency)
                               for _ in range(concurrency)))
    return latencies


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def measure_server(argv: list[str], port: int, duration: float, max_requests: int,
                   warm: float, ready_path: str = "/metrics") -> dict[str, float]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}{ready_path}", timeout=60)
        time.sleep(warm)
        lat = asyncio.run(scrape_latencies(f"http://127.0.0.1:{port}/metrics", duration,
                                           max_requests))
    finally:
        proc.terminate()
        proc.wait(10)
    return {"p50_ms": p(lat, 50) * 1000, "p99_ms": p(lat, 99) * 1000,
            "max_ms": max(lat) * 1000, "scrapes": len(lat)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--duration", type=float, default=8.0,
                        help="seconds of scraping per server (8 exporter cycles)")
    parser.add_argument("--max-requests", type=int, default=2000)
    parser.add_argument("--pause", type=float, default=0.01,
                        help="seconds each scraper waits between scrapes")
    parser.add_argument("--serve", choices=["implmon", "client_python"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--series", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "implmon":
        serve_implmon(args.port, args.series, args.delay, args.interval)
        return 0
    if args.serve == "client_python":
        serve_client_python(args.port, args.series)
        return 0

    global PAUSE
    PAUSE = args.pause
    sizes = [int(s) for s in args.sizes.split(",")]
    me = [sys.executable, str(Path(__file__).resolve())]
    results: dict[str, Any] = {}
    print("1. per-cycle render vs generate_latest (same series, identical parsed output)")
    print(f"{'series':>8} {'generate_latest':>16} {'implmon render':>15} {'ratio':>7} "
          f"{'cold render':>12} {'full cycle (2 formats+gzip)':>28}")
    for n in sizes:
        r = bench_render(n)
        results[f"render_{n}"] = r
        print(f"{n:>8} {r['generate_latest_s'] * 1000:>13.1f} ms {r['render_s'] * 1000:>12.1f} ms"
              f" {r['ratio']:>6.1f}x {r['render_cold_s'] * 1000:>9.1f} ms"
              f" {r['full_cycle_build_s'] * 1000:>25.1f} ms")

    print(f"\n2. scrape latency, 2 concurrent scrapers, OpenMetrics+gzip, {args.duration:g} s")
    print(f"{'series':>8} {'server':>26} {'p50':>9} {'p99':>9} {'max':>9} {'scrapes':>8}")
    for n in sizes:
        for name, extra in (("implmon (1 s cycles)", ["--serve", "implmon"]),
                            ("client_python aiohttp", ["--serve", "client_python"])):
            port = free_port()
            ready = "/-/ready" if "implmon" in extra else "/metrics"
            r = measure_server([*me, *extra, "--port", str(port), "--series", str(n)], port,
                               args.duration, args.max_requests, warm=1.5, ready_path=ready)
            results[f"scrape_{n}_{extra[1]}"] = r
            print(f"{n:>8} {name:>26} {r['p50_ms']:>6.2f} ms {r['p99_ms']:>6.2f} ms"
                  f" {r['max_ms']:>6.1f} ms {r['scrapes']:>8.0f}")

    big = max(sizes)
    print(f"\n2b. the same at {big} series with the default 15 s cycle, over 35 s (3 cycles)")
    port = free_port()
    r = measure_server([*me, "--serve", "implmon", "--port", str(port), "--series", str(big),
                        "--interval", "15"], port, 35.0, 20000, warm=1.5, ready_path="/-/ready")
    results[f"scrape_{big}_implmon_15s"] = r
    print(f"{big:>8} {'implmon (15 s cycles)':>26} {r['p50_ms']:>6.2f} ms {r['p99_ms']:>6.2f} ms"
          f" {r['max_ms']:>6.1f} ms {r['scrapes']:>8.0f}")

    print("\n3. scrape latency while the collector is slow (0.9 s of each 1 s cycle), 10k series")
    for label, delay in (("fast collector", 0.0), ("slow collector", 0.9)):
        port = free_port()
        r = measure_server([*me, "--serve", "implmon", "--port", str(port), "--series", "10000",
                            "--delay", str(delay)], port, args.duration, args.max_requests,
                           warm=2.5, ready_path="/-/ready")
        results[f"slow_{delay}"] = r
        print(f"{label:>16}: p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
              f"max {r['max_ms']:.1f} ms")

    ratio = results[f"render_{big}"]["ratio"]
    p99 = results[f"scrape_{big}_implmon"]["p99_ms"]
    p99_15 = results[f"scrape_{big}_implmon_15s"]["p99_ms"]
    flat = results["slow_0.9"]["p99_ms"] / max(results["slow_0.0"]["p99_ms"], 1e-9)
    print(f"\ngoals: render >= 5x generate_latest at {big}: {ratio:.1f}x "
          f"[{'met' if ratio >= 5 else 'MISSED'}]; p99 scrape < 5 ms at {big}: "
          f"{p99:.2f} ms with 1 s cycles [{'met' if p99 < 5 else 'MISSED'}], "
          f"{p99_15:.2f} ms with 15 s cycles [{'met' if p99_15 < 5 else 'MISSED'}]; "
          f"slow/fast collector p99: {flat:.2f}x")
    Path(tempfile.gettempdir(), "implmon-bench-scrape.json").write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
