"""Garbage-collector policy of the exporter process: no full collections under scrapes.

Each cycle allocates one object per sample, and they live a whole cycle, so CPython's automatic
full (generation 2) collections keep scanning them: at 100k series a full collection holds the
GIL for 60-110 ms here, and a scrape that arrives meanwhile waits that long. The samples form
no reference cycles (reference counting frees them), so those scans find nothing.

After every cycle :class:`CyclePolicy` freezes what is alive (``gc.freeze()``: O(1), moves it
to the permanent generation, which automatic collections skip; frozen objects are still freed by
reference counting). Cyclic garbage that got frozen is reclaimed by a full collection every
``full_every`` seconds: one pause then, instead of one every cycle.
"""

from __future__ import annotations

import gc
import logging
import time

__all__ = ["CyclePolicy"]

log = logging.getLogger(__name__)


class CyclePolicy:
    """Call :meth:`after_cycle` once per monitor cycle."""

    def __init__(self, full_every: float = 600.0) -> None:
        self.full_every = full_every
        self._last_full = time.monotonic()
        # No automatic full collections: each would scan the cycle's survivors (at 100k series,
        # 30-60 ms with the GIL held, mid-cycle). Survivors are frozen after every cycle and the
        # full collection runs here, every `full_every` seconds.
        gen0, gen1, _ = gc.get_threshold()
        gc.set_threshold(gen0, gen1, 1_000_000)

    def after_cycle(self) -> None:
        now = time.monotonic()
        if now - self._last_full >= self.full_every:
            gc.unfreeze()
            started = time.perf_counter()
            found = gc.collect()
            log.debug(
                "full collection: %d unreachable objects in %.1f ms",
                found,
                (time.perf_counter() - started) * 1000,
            )
            self._last_full = now
        gc.freeze()
