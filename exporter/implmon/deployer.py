"""SystemDeployer: provision → deploy → validate → pipeline, as the seed describes it.

Two ways to use it:

- as a small orchestrator, ``await deployer.deploy_system(build, "staging")`` calls your
  provisioner, deploy function and deployment validator (each a child span);
- around an existing tool, ``async with deployer.deployment("production", version="1.4.2")``
  records whatever the block does: success, failure (the exception propagates) or cancellation.

Either way the deployment ends as a :class:`~implmon.events.DeploymentEvent` in
``implmon_deployments_total{environment,outcome}``, ``implmon_deployment_duration_seconds``
and, given the change's time, ``implmon_deployment_lead_time_seconds``.

>>> import asyncio
>>> deployer = SystemDeployer()
>>> async def ship() -> Deployment:
...     async with deployer.deployment("staging", version="1.4.2") as run:
...         await asyncio.sleep(0)          # e.g. run helm upgrade
...     return run
>>> asyncio.run(ship()).outcome.value
'success'
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span

from implmon.builder import Build
from implmon.events import DeploymentEvent, Environment, EventRecorder, Outcome, to_datetime
from implmon.pipeline import (
    OTelRecorder,
    finish_span,
    get_tracer,
    new_run_id,
    outcome_of,
    recording,
    span_ids,
    stage_span,
    stage_tracer,
    step,
)

__all__ = ["Deployment", "DeploymentError", "DeploymentHook", "SystemDeployer"]


@dataclass(slots=True)
class Deployment:
    """A deployment in progress, then its result."""

    id: str
    environment: Environment
    version: str | None = None
    build: Build | None = None
    commit_time: datetime | None = None
    outcome: Outcome | None = None
    duration_seconds: float = 0.0
    started: float = 0.0
    artifacts: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    trace_id: str | None = None
    span: Span | None = field(default=None, repr=False)

    def set_attribute(self, key: str, value: str | int | float | bool) -> None:
        """Add an attribute to the deployment's span (e.g. the chart or cluster)."""
        if self.span is not None:
            self.span.set_attribute(key, value)


DeploymentHook = Callable[[Deployment], Awaitable[Any]]


class DeploymentError(Exception):
    """A deployment failed; ``deployment`` holds its record."""

    def __init__(self, message: str, deployment: Deployment) -> None:
        super().__init__(message)
        self.deployment = deployment


async def _nothing(deployment: Deployment) -> None:
    return None


class SystemDeployer:
    """Deploys builds to the four environments. Hooks return anything (kept in
    ``deployment.artifacts``); returning ``False`` or raising fails the deployment."""

    def __init__(
        self,
        *,
        provisioner: DeploymentHook | None = None,
        deploy: DeploymentHook | None = None,
        validator: DeploymentHook | None = None,
        recorder: EventRecorder | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.provisioner = provisioner or _nothing
        self.deploy = deploy or _nothing
        self.validator = validator or _nothing
        self.recorder: EventRecorder = recorder or OTelRecorder()
        self._tracer = get_tracer(tracer_provider)

    def _new(
        self,
        environment: Environment | str,
        build: Build | None,
        version: str | None,
        commit_time: datetime | None,
        deployment_id: str | None,
    ) -> tuple[Deployment, dict[str, Any]]:
        env = Environment(environment)
        if version is None and build is not None:
            version = build.version
        dep = Deployment(deployment_id or new_run_id(), env, version, build, commit_time)
        attributes: dict[str, Any] = {
            "cicd.pipeline.name": "deploy_system",
            "cicd.pipeline.action.name": "RUN",
            "cicd.pipeline.run.id": dep.id,
            "deployment.environment.name": env.value,
            "implmon.environment": env.value,
        }
        if version is not None:
            attributes["implmon.version"] = version
        if build is not None:
            attributes["implmon.build.id"] = build.id
            attributes["implmon.build_type"] = build.build_type.value
        return dep, attributes

    async def _finish(
        self,
        tracer: trace.Tracer,
        dep: Deployment,
        span: Span,
        span_id: str | None,
        failure: BaseException | None,
        t0: float,
    ) -> None:
        dep.duration_seconds = time.perf_counter() - t0
        dep.outcome = outcome_of(failure)
        dep.error = failure
        if recording(self.recorder, tracer):
            event = DeploymentEvent.model_construct(
                id=dep.id,
                kind="deployment",
                environment=dep.environment,
                outcome=dep.outcome,
                duration_seconds=dep.duration_seconds,
                version=dep.version,
                commit_time=dep.commit_time,
                timestamp=to_datetime(dep.started + dep.duration_seconds),
                trace_id=dep.trace_id,
                span_id=span_id,
            )
            await step(tracer, "process_deployment", "deploy", self.recorder.record, event)
        finish_span(span, dep.outcome, failure, "cicd.pipeline.result")

    async def deploy_system(
        self,
        build: Build | None,
        environment: Environment | str,
        *,
        version: str | None = None,
        commit_time: datetime | None = None,
        deployment_id: str | None = None,
    ) -> Deployment:
        """Provision, deploy, validate and record; raises :class:`DeploymentError` on failure
        (and re-raises cancellation, after recording it)."""
        dep, attributes = self._new(environment, build, version, commit_time, deployment_id)
        tracer = stage_tracer(self._tracer)
        with stage_span(tracer, "deploy_system", attributes) as span:
            dep.span = span
            dep.trace_id, span_id = span_ids(span)
            dep.started = time.time()
            t0 = time.perf_counter()
            failure: BaseException | None = None
            current = "provision_resources"
            try:
                for current, task_type, hook in (
                    ("provision_resources", "deploy", self.provisioner),
                    ("deploy_components", "deploy", self.deploy),
                    ("validate_deployment", "test", self.validator),
                ):
                    dep.artifacts[current] = await step(tracer, current, task_type, hook, dep)
            except BaseException as exc:  # noqa: BLE001 - recorded below, then re-raised
                failure = exc
            await self._finish(tracer, dep, span, span_id, failure, t0)
        if failure is None:
            return dep
        if dep.outcome is Outcome.CANCELLED:
            raise failure
        raise DeploymentError(
            f"{dep.environment.value} deployment {dep.id}: {current} failed: "
            f"{type(failure).__name__}: {failure}",
            dep,
        ) from failure

    @asynccontextmanager
    async def deployment(
        self,
        environment: Environment | str,
        *,
        version: str | None = None,
        build: Build | None = None,
        commit_time: datetime | None = None,
        deployment_id: str | None = None,
    ) -> AsyncIterator[Deployment]:
        """Record the block as a deployment: its body runs in the ``deploy_components`` span.

        An exception from the block fails the deployment and propagates unchanged;
        cancellation records ``cancelled`` and propagates.
        """
        dep, attributes = self._new(environment, build, version, commit_time, deployment_id)
        tracer = stage_tracer(self._tracer)
        with stage_span(tracer, "deploy_system", attributes) as span:
            dep.span = span
            dep.trace_id, span_id = span_ids(span)
            dep.started = time.time()
            t0 = time.perf_counter()
            failure: BaseException | None = None
            with tracer.start_as_current_span(
                "deploy_components",
                attributes={
                    "cicd.pipeline.task.name": "deploy_components",
                    "cicd.pipeline.task.type": "deploy",
                },
                record_exception=False,
                set_status_on_exception=False,
            ) as child:
                try:
                    yield dep
                except GeneratorExit:  # the generator is being closed, not the block failing
                    raise
                except BaseException as exc:  # noqa: BLE001 - recorded below, then re-raised
                    failure = exc
                finish_span(child, outcome_of(failure), failure, "cicd.pipeline.task.run.result")
            await self._finish(tracer, dep, span, span_id, failure, t0)
        if failure is not None:
            raise failure
