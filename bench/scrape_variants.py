"""Where a scrape's time goes while a cycle runs: variants of the exporter, side by side.

A diagnostic companion to ``bench/scrape.py`` (same scrapers, same turns, same floor): each
variant is the 100k-series exporter of that benchmark with one part of the cycle taken out
or one setting changed, so the difference in p99 against the unchanged exporter, measured in
the same run, says what that part costs a scrape. Variants (join with ``+``):

- ``normal``: the exporter as it is;
- ``reuse``: the collector hands out the same samples every cycle (no 100k objects built);
- ``noval``: sample validation skipped;
- ``norender``: the exposition rendered once, not every cycle (nor gzipped, nor freed);
- ``sliceN``: N series per C-level slice (validation, render, piecewise release; default 2048);
- ``switchN``: the GIL switch interval set to N microseconds (default 500);
- ``niceN``: the worker threads at nice level N.

Run:  .venv/bin/python bench/scrape_variants.py floor,normal,reuse,reuse+norender
      [--series 100000] [--duration 24] [--rounds 12]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scrape  # the benchmark this one varies, from the same folder


def _reuse() -> None:
    cache: dict[int, list[Any]] = {}

    async def collect(self: scrape.Synthetic) -> list[Any]:
        n = self.settings.series
        if n not in cache:
            cache[n] = scrape.samples_for(n)
        return list(cache[n])

    scrape.Synthetic.collect = collect  # type: ignore[method-assign]


def _noval() -> None:
    import implmon.monitor

    implmon.monitor.check_samples = lambda result: list(result)  # type: ignore


def _norender() -> None:
    from implmon.components.reporters import prometheus

    publish = prometheus.PrometheusReporter.publish

    async def publish_once(self: Any, samples: Any) -> None:
        if not getattr(self, "rendered", False):
            await publish(self, samples)
            self.rendered = len(self.exposition.openmetrics) > 100_000

    prometheus.PrometheusReporter.publish = publish_once  # type: ignore[method-assign]


def _slice(size: int) -> None:
    import implmon.exposition
    import implmon.gcpolicy
    import implmon.monitor

    implmon.exposition._CHUNK = size
    implmon.monitor._CHECK_SLICE = size
    implmon.gcpolicy._RELEASE_STEP = size


def _switch(microseconds: int) -> None:
    import implmon.server

    real = sys.setswitchinterval
    implmon.server.sys = types.SimpleNamespace(  # type: ignore[assignment]
        setswitchinterval=lambda _: real(microseconds / 1e6))


def _nice(level: int) -> None:
    import concurrent.futures.thread as futures_thread

    init = futures_thread.ThreadPoolExecutor.__init__

    def lower() -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), level)

    def nice_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **{**kwargs, "initializer": lower})

    futures_thread.ThreadPoolExecutor.__init__ = nice_init  # type: ignore[method-assign]


PLAIN = {"normal": lambda: None, "reuse": _reuse, "noval": _noval, "norender": _norender}
SIZED = {"slice": _slice, "switch": _switch, "nice": _nice}


def unknown_parts(variant: str) -> list[str]:
    return [part for part in variant.split("+") if part not in PLAIN
            and (part.rstrip("0123456789") not in SIZED or part.rstrip("0123456789") == part)]


def apply(variant: str) -> None:
    """Patch this process's implmon for ``variant`` (before the exporter starts)."""
    for part in variant.split("+"):
        if part in PLAIN:
            PLAIN[part]()
        else:
            name = part.rstrip("0123456789")
            SIZED[name](int(part[len(name):]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", help="comma-separated: floor, normal, reuse+norender, ...")
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=24.0)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        apply(args.serve)
        scrape.serve_implmon(args.port, args.series, 0.0, 1.0)
        return 0
    bad = [p for v in args.variants.split(",") if v != "floor" for p in unknown_parts(v)]
    if bad:
        parser.error(f"unknown variant parts: {', '.join(bad)} (see --help)")
    me = [sys.executable, str(Path(__file__).resolve())]
    servers = {}
    for variant in args.variants.split(","):
        port = scrape.free_port()
        if variant == "floor":
            servers[variant] = ([*me[:1], str(Path(scrape.__file__).resolve()), "--serve",
                                 "static", "--port", str(port), "--series", str(args.series)],
                                port, "/metrics")
        else:
            servers[variant] = ([*me, variant, "--serve", variant, "--port", str(port),
                                 "--series", str(args.series)], port, "/-/ready")
    rows = scrape.measure_side_by_side(servers, args.duration, args.rounds, warm=1.0)
    print(f"{args.series} series, 1 s cycles, 2 scraper processes, {args.duration:g} s per "
          f"server in {args.rounds} rounds")
    for name, r in rows.items():
        print(f"{name:>28}  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  "
              f"max {r['max_ms']:6.1f} ms  scrapes {r['scrapes']:5.0f}  "
              f"steal {r['steal_pct']:.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
