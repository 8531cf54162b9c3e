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
            # The replaced exposition holds only a few buffers: dropping it here is cheap.
            self.exposition = await asyncio.to_thread(
                Exposition.build, self._renderer, list(samples)
            )

    async def report(self, snapshot: Snapshot) -> None:
        await self.publish(snapshot.samples)
