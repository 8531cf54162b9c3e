"""Reporter ``prometheus``: the snapshot as Prometheus/OpenMetrics exposition for ``/metrics``.

It renders each cycle's samples once, in a worker thread (so a 100k-series render does not
stall other requests), into every variant a scraper may ask for; the server serves
:attr:`PrometheusReporter.exposition`. When the config declares no reporter of this kind, one
named ``prometheus`` is added: ``/metrics`` always works.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from implmon.component import ComponentSettings, Reporter, Snapshot
from implmon.exposition import Exposition, Renderer
from implmon.gcpolicy import sole_owner
from implmon.metrics import Sample

__all__ = ["PrometheusReporter"]


class PrometheusReporter(Reporter):
    kind = "prometheus"
    Settings = ComponentSettings

    def __init__(self, settings: ComponentSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._renderer = Renderer()
        self._lock = asyncio.Lock()
        self.exposition: Exposition = Exposition.build(self._renderer, [])

    async def publish(self, samples: Iterable[Sample]) -> None:
        """Render ``samples`` and make them what ``/metrics`` serves."""
        async with self._lock:  # the renderer's cache is not shared between threads
            new = await asyncio.to_thread(Exposition.build, self._renderer, list(samples))
            old, self.exposition = self.exposition, new
            # Free the replaced cycle's series off the event loop (unless a text render of
            # it is still being served, which then drops it when done).
            if sole_owner(old, expected=1):
                await asyncio.to_thread(old.release)

    async def report(self, snapshot: Snapshot) -> None:
        await self.publish(snapshot.samples)
