"""The exporter's running state: config, pipeline, monitor, and reload.

A reload builds the new pipeline completely (every component created, validated and started)
before it replaces the running one; any failure leaves the running pipeline untouched and sets
``implmon_config_last_reload_successful`` to 0. Components whose settings did not change are
kept as they are, so their state (a health analyzer's failure counts, a probe's counters)
survives a reload.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from implmon.component import AlertSink, Component, ComponentSettings, Role, SampleProvider
from implmon.components.reporters.prometheus import PrometheusReporter
from implmon.config import ROLE_SECTIONS, Config, ConfigError, Problem, load_config
from implmon.exposition import Exposition
from implmon.factory import ComponentCreationError, ComponentFactory
from implmon.metrics import Sample
from implmon.monitor import ImplementationMonitor, Pipeline
from implmon.registry import ComponentRegistry

__all__ = ["Runtime"]

log = logging.getLogger(__name__)


class Runtime:
    """Owns the config and the monitor of one exporter process."""

    def __init__(
        self,
        config: Config,
        *,
        registry: ComponentRegistry | None = None,
        providers: Sequence[SampleProvider] = (),
        alert_sink: AlertSink | None = None,
    ) -> None:
        self.config = config
        self.registry = registry or ComponentRegistry.default()
        self.factory = ComponentFactory(self.registry, base_dir=config.base_dir)
        self.monitor = ImplementationMonitor(
            Pipeline(),
            config.interval,
            providers=[self, self.factory, *providers],
            alert_sink=alert_sink,
        )
        self.reload_ok = True
        self.reload_timestamp = time.time()
        self.reload_errors: list[str] = []
        self._reload_lock = asyncio.Lock()
        self._prometheus: PrometheusReporter | None = None

    # --- pipeline assembly ---------------------------------------------------------------

    async def _assemble(self, config: Config, old: Pipeline) -> Pipeline:
        """A started pipeline for ``config``, reusing unchanged components of ``old``."""
        # Settings models hold lists, so they are compared, not hashed.
        reusable: list[Component] = old.components()
        created: list[Component] = []
        pipeline = Pipeline()
        problems: list[Problem] = []
        sections = {section: list(getattr(config, section)) for section in ROLE_SECTIONS}
        if not any(s.kind == "prometheus" for s in sections["reporters"]):
            # /metrics always works; the implicit reporter's name avoids any configured one.
            taken = {s.name for s in config.components()}
            name = next(
                n
                for n in ("prometheus", "prometheus-exposition", "implmon-exposition")
                if n not in taken
            )
            sections["reporters"].append(ComponentSettings(kind="prometheus", name=name))
        for section, role in ROLE_SECTIONS.items():
            for i, settings in enumerate(sections[section]):
                if not settings.enabled:
                    continue
                component = next(
                    (c for c in reusable if c.role is role and c.settings == settings), None
                )
                if component is not None:
                    reusable.remove(component)
                else:
                    try:
                        component = await self.factory.create_component(settings, role)
                    except ComponentCreationError as exc:
                        problems.append(Problem(f"{section}[{i}]", str(exc)))
                        continue
                    created.append(component)
                    try:
                        await component.start()
                    except Exception as exc:  # noqa: BLE001 - a plugin's start() is a boundary
                        problems.append(
                            Problem(f"{section}[{i}]", f"start failed: {type(exc).__name__}: {exc}")
                        )
                        continue
                getattr(pipeline, section).append(component)
                if role is Role.COLLECTOR and settings.timeout is not None:
                    pipeline.timeouts[settings.name] = settings.timeout
        if problems:
            await _close_all(created)
            raise ConfigError(str(config.source or ""), problems)
        return pipeline

    async def start(self) -> None:
        """Build and start the first pipeline, and publish a first ``/metrics``."""
        pipeline = await self._assemble(self.config, Pipeline())
        self._install(pipeline, self.config)
        # The alert stage (implmon.alerter.AlertSender) starts its delivery workers here.
        sink_start = getattr(self.monitor.alert_sink, "start", None)
        if sink_start is not None:
            await sink_start()
        assert self._prometheus is not None
        await self._prometheus.publish(self.monitor.self_samples())

    def _install(self, pipeline: Pipeline, config: Config) -> None:
        self.monitor.replace_pipeline(pipeline, config.interval)
        self.config = config
        self._prometheus = next(r for r in pipeline.reporters if isinstance(r, PrometheusReporter))

    async def reload(self, path: Path | None = None) -> list[str]:
        """Load the config file again; return its problems (empty when the reload took)."""
        path = path or self.config.source
        assert path is not None
        async with self._reload_lock:
            try:
                config = load_config(path, self.registry)
                old = self.monitor.pipeline
                pipeline = await self._assemble(config, old)
            except ConfigError as err:
                self.reload_ok = False
                self.reload_errors = [p.format(err.source) for p in err.problems]
                log.error("config reload failed, keeping the running config:\n%s", err)
                return self.reload_errors
            if config.listen_address != self.config.listen_address:
                log.warning("listen_address changed: it takes effect at the next restart")
            kept = {id(c) for c in pipeline.components()}
            self._install(pipeline, config)
            sink_reconfigure = getattr(self.monitor.alert_sink, "reconfigure", None)
            if sink_reconfigure is not None:
                await sink_reconfigure(config)
            await _close_all([c for c in old.components() if id(c) not in kept])
            self.reload_ok, self.reload_errors = True, []
            self.reload_timestamp = time.time()
            log.info("config reloaded from %s", path)
            return []

    async def close(self) -> None:
        await _close_all(self.monitor.pipeline.components())
        sink_close = getattr(self.monitor.alert_sink, "close", None)
        if sink_close is not None:
            await sink_close()

    # --- what the server needs -----------------------------------------------------------

    @property
    def exposition(self) -> Exposition:
        assert self._prometheus is not None, "start() first"
        return self._prometheus.exposition

    def samples(self) -> list[Sample]:
        return [
            Sample("implmon_config_last_reload_successful", {}, float(self.reload_ok)),
            Sample(
                "implmon_config_last_reload_success_timestamp_seconds", {}, self.reload_timestamp
            ),
        ]


async def _close_all(components: Sequence[Component]) -> None:
    for component in components:
        try:
            await component.close()
        except Exception as exc:  # noqa: BLE001 - closing the rest matters more
            log.warning("closing %s failed: %s", component.name, exc)
