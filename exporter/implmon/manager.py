"""ImplementationManager: the seed's MonitoringImplementationManager, owning the factory, the
builder, the deployer, the validator and the monitor.

Embedded in a deploy tool it is the whole SDK in one object. With a store
(:meth:`ImplementationManager.open`) every build, deployment and validation is written durably
before the call returns, and :meth:`ImplementationManager.metrics_text` renders the same
families the exporter serves on ``/metrics``.

>>> import asyncio, tempfile, pathlib
>>> async def main(path: pathlib.Path) -> str:
...     async with ImplementationManager.open(path) as manager:
...         build = await manager.builder.build_system(["api"], "production", version="1.4.2")
...         async with manager.deployer.deployment("production", build=build):
...             pass                            # your rollout
...         return manager.metrics_text().decode()
>>> with tempfile.TemporaryDirectory() as d:
...     text = asyncio.run(main(pathlib.Path(d) / "implmon.db"))
>>> 'implmon_deployments_total{environment="production",outcome="success"} 1' in text
True
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from opentelemetry import trace

from implmon.builder import Build, BuildHook, SystemBuilder
from implmon.component import Component, ComponentSettings, Role
from implmon.deployer import Deployment, DeploymentHook, SystemDeployer
from implmon.events import EventRecorder
from implmon.exposition import Renderer
from implmon.factory import ComponentFactory
from implmon.metrics import Sample
from implmon.monitor import ImplementationMonitor, Pipeline
from implmon.pipeline import OTelRecorder, StoreRecorder
from implmon.registry import ComponentRegistry
from implmon.store import EventStore, Synchronous
from implmon.validator import ImplementationValidator, ValidationHook, ValidationReport

__all__ = ["ImplementationManager"]


class ImplementationManager:
    """Factory, builder, deployer, validator and monitor sharing one recorder and tracer."""

    def __init__(
        self,
        *,
        recorder: EventRecorder | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        registry: ComponentRegistry | None = None,
        interval: float = 15.0,
        assembler: BuildHook | None = None,
        tester: BuildHook | None = None,
        build_validator: BuildHook | None = None,
        provisioner: DeploymentHook | None = None,
        deploy: DeploymentHook | None = None,
        deployment_validator: DeploymentHook | None = None,
        quality: ValidationHook | None = None,
        performance: ValidationHook | None = None,
    ) -> None:
        self.recorder: EventRecorder = recorder or OTelRecorder()
        self.store: EventStore | None = None
        self.factory = ComponentFactory(registry, tracer_provider=tracer_provider)
        self.builder = SystemBuilder(
            assembler=assembler,
            tester=tester,
            validator=build_validator,
            recorder=self.recorder,
            tracer_provider=tracer_provider,
        )
        self.deployer = SystemDeployer(
            provisioner=provisioner,
            deploy=deploy,
            validator=deployment_validator,
            recorder=self.recorder,
            tracer_provider=tracer_provider,
        )
        self.validator = ImplementationValidator(
            quality=quality,
            performance=performance,
            recorder=self.recorder,
            tracer_provider=tracer_provider,
        )
        self.monitor = ImplementationMonitor(Pipeline(), interval, providers=[self.factory])
        self._renderer = Renderer()

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        store_path: Path | str,
        *,
        synchronous: Synchronous | str = Synchronous.NORMAL,
        retention_seconds: float | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ImplementationManager]:
        """A manager recording into a durable store at ``store_path`` (closed at exit)."""
        async with EventStore(
            store_path, synchronous=synchronous, retention_seconds=retention_seconds
        ) as store:
            manager = cls(recorder=StoreRecorder(store), **kwargs)
            manager.store = store
            manager.monitor.providers.append(store)
            yield manager

    async def create_components(
        self, specs: Sequence[tuple[Role, ComponentSettings | Mapping[str, Any]]]
    ) -> list[Component]:
        """Create each (role, spec) through the factory (a ``create_component`` span each)."""
        return [await self.factory.create_component(spec, role) for role, spec in specs]

    async def implement(
        self,
        specs: Sequence[tuple[Role, ComponentSettings | Mapping[str, Any]]],
        build_type: str,
        environment: str,
        *,
        version: str | None = None,
    ) -> tuple[Build, ValidationReport, Deployment]:
        """The seed's whole flow: create the components, build, validate, deploy.

        Raises :class:`~implmon.builder.BuildError` or
        :class:`~implmon.deployer.DeploymentError`; a failed validation stops before deploying
        (``ValueError`` naming the failed types).
        """
        components = await self.create_components(specs)
        build = await self.builder.build_system(components, build_type, version=version)
        report = await self.validator.validate_implementation(build)
        if not report.passed:
            failed = ", ".join(
                f"{t.value}: {r.outcome.value}"
                for t, r in report.results.items()
                if r.outcome.value != "passed"
            )
            raise ValueError(f"build {build.id} not deployed: validation {failed}")
        deployment = await self.deployer.deploy_system(build, environment)
        return build, report, deployment

    def samples(self) -> list[Sample]:
        """Everything the providers (factory, store) report right now."""
        return self.monitor.self_samples()

    def metrics_text(self, *, openmetrics: bool = False) -> bytes:
        """The providers' samples in the Prometheus text format (or OpenMetrics)."""
        return self._renderer.render(self.samples(), openmetrics)
