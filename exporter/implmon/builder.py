"""SystemBuilder: assemble → test → validate → pipeline, as the seed describes it.

``build_system`` is one span with a child span per step; each step calls a hook you may supply
(an assembler, a tester, a validator); the defaults work with no code. The last step hands a
:class:`~implmon.events.BuildEvent` to the recorder, which counts it in
``implmon_builds_total{build_type,outcome}`` and ``implmon_build_duration_seconds``.

>>> import asyncio
>>> async def tests(build: Build) -> bool:
...     return True                    # e.g. run pytest and return whether it passed
>>> builder = SystemBuilder(tester=tests)
>>> build = asyncio.run(builder.build_system(["collector", "analyzer"], "testing"))
>>> build.outcome.value, build.build_type.value, len(build.components)
('success', 'testing', 2)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from implmon.events import BuildEvent, BuildType, EventRecorder, Outcome, to_datetime
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

__all__ = ["Build", "BuildError", "BuildHook", "SystemBuilder"]


@dataclass(slots=True)
class Build:
    """A build in progress, then its result. Hooks read it and may fill ``artifacts``."""

    id: str
    build_type: BuildType
    components: tuple[Any, ...]
    version: str | None = None
    outcome: Outcome | None = None
    duration_seconds: float = 0.0
    started: float = 0.0
    # What the hooks returned, by step (assemble_system, test_system, validate_build).
    artifacts: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    trace_id: str | None = None


BuildHook = Callable[[Build], Awaitable[Any]]


class BuildError(Exception):
    """A build failed; ``build`` holds its record (outcome failure, the failing step's error)."""

    def __init__(self, message: str, build: Build) -> None:
        super().__init__(message)
        self.build = build


async def _nothing(build: Build) -> None:
    return None


class SystemBuilder:
    """Builds a system from components. Hooks return anything (kept in ``build.artifacts``);
    returning ``False`` or raising fails the build."""

    def __init__(
        self,
        *,
        assembler: BuildHook | None = None,
        tester: BuildHook | None = None,
        validator: BuildHook | None = None,
        recorder: EventRecorder | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.assembler = assembler or _nothing
        self.tester = tester or _nothing
        self.validator = validator or _nothing
        self.recorder: EventRecorder = recorder or OTelRecorder()
        self._tracer = get_tracer(tracer_provider)

    async def build_system(
        self,
        components: Sequence[Any],
        build_type: BuildType | str,
        *,
        version: str | None = None,
        build_id: str | None = None,
    ) -> Build:
        """Assemble, test, validate and record a build; raises :class:`BuildError` on failure
        (and re-raises cancellation, after recording it)."""
        bt = BuildType(build_type)
        build = Build(build_id or new_run_id(), bt, tuple(components), version)
        attributes: dict[str, Any] = {
            "cicd.pipeline.name": "build_system",
            "cicd.pipeline.action.name": "BUILD",
            "cicd.pipeline.run.id": build.id,
            "implmon.build_type": bt.value,
            "implmon.component.count": len(build.components),
        }
        if version is not None:
            attributes["implmon.version"] = version
        tracer = stage_tracer(self._tracer)
        with stage_span(tracer, "build_system", attributes) as span:
            build.trace_id, span_id = span_ids(span)
            build.started = time.time()
            t0 = time.perf_counter()
            failure: BaseException | None = None
            current = "assemble_system"
            try:
                for current, task_type, hook in (
                    ("assemble_system", "build", self.assembler),
                    ("test_system", "test", self.tester),
                    ("validate_build", "test", self.validator),
                ):
                    build.artifacts[current] = await step(tracer, current, task_type, hook, build)
            except BaseException as exc:  # noqa: BLE001 - recorded below, then re-raised
                failure = exc
            build.duration_seconds = time.perf_counter() - t0
            build.outcome = outcome_of(failure)
            build.error = failure
            if recording(self.recorder, tracer):
                event = BuildEvent.model_construct(
                    id=build.id,
                    kind="build",
                    build_type=bt,
                    outcome=build.outcome,
                    duration_seconds=build.duration_seconds,
                    version=version,
                    timestamp=to_datetime(build.started + build.duration_seconds),
                    trace_id=build.trace_id,
                    span_id=span_id,
                )
                await step(tracer, "process_build", "build", self.recorder.record, event)
            finish_span(span, build.outcome, failure, "cicd.pipeline.result")
        if failure is None:
            return build
        if build.outcome is Outcome.CANCELLED:
            raise failure
        raise BuildError(
            f"{bt.value} build {build.id}: {current} failed: {type(failure).__name__}: {failure}",
            build,
        ) from failure
