"""Garbage-collector policy of the exporter process: no long collections under scrapes.

Each cycle allocates one object per sample, and big containers of them (100k-item lists and
dicts). CPython's automatic collections traverse young containers item by item: with a 100k
list still young, even a generation-0 collection took 8-30 ms here, holding the GIL, and full
collections of the cycle's survivors 60-110 ms; a scrape arriving meanwhile waits that long.
These objects form no reference cycles (reference counting frees them), so the scans find
nothing.

:class:`CyclePolicy` pauses automatic collection while a cycle runs (:meth:`before_cycle`),
then freezes what is alive (``gc.freeze()``: O(1), moves it to the permanent generation, which
collections skip; frozen objects are still freed by reference counting) and resumes it
(:meth:`after_cycle`). Between cycles the young generations are small and collections cheap.
Cyclic garbage that got frozen is reclaimed by a full collection every ``full_every`` seconds:
one pause then, instead of several every cycle.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from itertools import islice
from typing import Any

__all__ = ["CyclePolicy", "release_piecewise"]

log = logging.getLogger(__name__)


class CyclePolicy:
    """Call :meth:`before_cycle` and :meth:`after_cycle` around every monitor cycle."""

    def __init__(self, full_every: float = 600.0) -> None:
        self.full_every = full_every
        self._last_full = time.monotonic()
        # No automatic full collections: each would scan the cycle's survivors (at 100k series,
        # 30-60 ms with the GIL held, mid-cycle). Survivors are frozen after every cycle and the
        # full collection runs here, every `full_every` seconds.
        gen0, gen1, _ = gc.get_threshold()
        gc.set_threshold(gen0, gen1, 1_000_000)

    def before_cycle(self) -> None:
        gc.disable()

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
        gc.enable()


# Items freed per step: about a millisecond of deallocation.
_RELEASE_STEP = 2048


def release_piecewise(items: list[Any] | dict[Any, Any]) -> None:
    """Empty a list or dict a slice at a time (call it in a worker thread).

    Dropping the last reference to a container of 100k samples frees them all inside one C
    call, holding the GIL for tens of milliseconds: a scrape waits that long. Deleting slices
    frees the same objects in steps between which the interpreter can switch to the event
    loop. Only for a container nothing else uses any more.
    """
    if isinstance(items, list):
        while items:
            del items[-_RELEASE_STEP:]
        return
    while items:
        for key in list(islice(items, _RELEASE_STEP)):
            del items[key]


def sole_owner(obj: object, expected: int) -> bool:
    """True when ``obj`` has no references beyond the ``expected`` ones the caller knows of
    (this function's parameter and ``sys.getrefcount``'s argument add two more)."""
    return sys.getrefcount(obj) <= expected + 2
