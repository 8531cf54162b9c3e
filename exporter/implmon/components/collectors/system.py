"""Collector ``system``: host resources (CPU, memory, filesystems, load) via psutil.

The seed's "resource performance" area. psutil calls are quick but blocking, so they run in a
worker thread to keep the event loop free.

.. code-block:: yaml

    collectors:
      - kind: system
        name: host
        mountpoints: ["/"]
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

import psutil

from implmon.component import Collector, ComponentSettings
from implmon.metrics import Sample

__all__ = ["SystemCollector"]


class SystemSettings(ComponentSettings):
    mountpoints: list[str] = ["/"]


class SystemCollector(Collector):
    """Host CPU busy ratio since the last run, load averages, memory and filesystem space."""

    kind = "system"
    Settings = SystemSettings

    def __init__(self, settings: SystemSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.settings: SystemSettings = settings

    async def start(self) -> None:
        # The first cpu_percent() call only sets the reference point for the next one.
        await asyncio.to_thread(psutil.cpu_percent, None)

    async def collect(self) -> Sequence[Sample]:
        return await asyncio.to_thread(self._read)

    def _read(self) -> list[Sample]:
        load1, load5, load15 = os.getloadavg()
        memory = psutil.virtual_memory()
        samples = [
            Sample("implmon_host_cpu_usage_ratio", {}, psutil.cpu_percent(None) / 100.0),
            Sample("implmon_host_cpus", {}, float(psutil.cpu_count() or 0)),
            Sample("implmon_host_load1", {}, load1),
            Sample("implmon_host_load5", {}, load5),
            Sample("implmon_host_load15", {}, load15),
            Sample("implmon_host_memory_total_bytes", {}, float(memory.total)),
            Sample("implmon_host_memory_available_bytes", {}, float(memory.available)),
        ]
        for mountpoint in self.settings.mountpoints:
            usage = psutil.disk_usage(mountpoint)
            labels = {"mountpoint": mountpoint}
            samples.append(Sample("implmon_host_filesystem_size_bytes", labels, float(usage.total)))
            samples.append(Sample("implmon_host_filesystem_free_bytes", labels, float(usage.free)))
        return samples
