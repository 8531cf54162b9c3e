"""ImplementationValidator: component, system, quality and performance validation.

``validate_implementation`` is one span with a child span per validation type and a last
``report_validation`` step that records one :class:`~implmon.events.ValidationEvent` per type
(``implmon_validations_total{validation_type,outcome}``). Each type's check is a hook returning
a verdict: ``True``/``False``/``None``, one :class:`Check`, or a list of them; raising makes the
outcome ``error`` (the check could not run), which is not the same as ``failed``.

Built in: component validation (every component implements its role's method) and system
validation (component names are unique). Quality and performance validation run when you give
a hook: :func:`implmon.components.analyzers.quality_gate.gate_hook` evaluates the quality gate
over JUnit, Cobertura and SARIF reports, and
:func:`implmon.components.analyzers.regression.regression_hook` compares pytest-benchmark
results against a baseline; any coroutine returning a verdict works.

>>> import asyncio
>>> async def coverage_ok(target: object) -> Check:
...     return Check("line coverage >= 80%", ValidationOutcome.PASSED, "84.2%")
>>> validator = ImplementationValidator(quality=coverage_ok)
>>> report = asyncio.run(validator.validate_implementation(["api", "worker"]))
>>> {t.value: r.outcome.value for t, r in report.results.items()}
{'component': 'passed', 'system': 'passed', 'quality': 'passed'}
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from implmon.builder import Build
from implmon.component import Analyzer, Collector, Component, Processor, Reporter
from implmon.events import (
    EventRecorder,
    Outcome,
    ValidationEvent,
    ValidationOutcome,
    ValidationType,
    to_datetime,
)
from implmon.pipeline import (
    OTelRecorder,
    finish_span,
    get_tracer,
    new_run_id,
    recording,
    span_ids,
    stage_span,
    stage_tracer,
)

__all__ = [
    "Check",
    "ImplementationValidator",
    "ValidationHook",
    "ValidationReport",
    "ValidationResult",
]


@dataclass(frozen=True, slots=True)
class Check:
    """One named check and its typed outcome."""

    name: str
    outcome: ValidationOutcome
    detail: str = ""


@dataclass(slots=True)
class ValidationResult:
    """The checks of one validation type; failed if any check failed, error if one could not
    run and none failed."""

    validation_type: ValidationType
    checks: list[Check]
    duration_seconds: float

    @property
    def outcome(self) -> ValidationOutcome:
        outcomes = {c.outcome for c in self.checks}
        if ValidationOutcome.FAILED in outcomes:
            return ValidationOutcome.FAILED
        if ValidationOutcome.ERROR in outcomes:
            return ValidationOutcome.ERROR
        return ValidationOutcome.PASSED


@dataclass(slots=True)
class ValidationReport:
    id: str
    results: dict[ValidationType, ValidationResult] = field(default_factory=dict)
    trace_id: str | None = None

    @property
    def outcome(self) -> ValidationOutcome:
        """The worst outcome of all types (failed, then error, then passed)."""
        return ValidationResult(
            ValidationType.SYSTEM,
            [Check(t.value, r.outcome) for t, r in self.results.items()],
            0.0,
        ).outcome

    @property
    def passed(self) -> bool:
        return self.outcome is ValidationOutcome.PASSED


Verdict = bool | None | Check | Sequence[Check]
ValidationHook = Callable[[Any], Awaitable[Verdict]]

_ROLE_METHOD: tuple[tuple[type[Component], str], ...] = (
    (Collector, "collect"),
    (Processor, "process"),
    (Analyzer, "analyze"),
    (Reporter, "report"),
)


def _components(target: Any) -> tuple[Any, ...]:
    if isinstance(target, Build):
        return target.components
    if isinstance(target, Iterable) and not isinstance(target, str | bytes):
        return tuple(target)
    return (target,)


def _name(component: Any) -> str:
    return str(getattr(component, "name", component))


async def component_validation(target: Any) -> list[Check]:
    """Every implmon component implements its role's one method."""
    checks: list[Check] = []
    for component in _components(target):
        if not isinstance(component, Component):
            continue
        for base, method in _ROLE_METHOD:
            if isinstance(component, base):
                ok = getattr(type(component), method) is not getattr(base, method)
                checks.append(
                    Check(
                        f"{_name(component)} implements {method}()",
                        ValidationOutcome.PASSED if ok else ValidationOutcome.FAILED,
                    )
                )
    return checks


async def system_validation(target: Any) -> list[Check]:
    """The assembled system's component names are unique."""
    names = [_name(c) for c in _components(target)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    return [
        Check(
            "component names are unique",
            ValidationOutcome.FAILED if dupes else ValidationOutcome.PASSED,
            f"duplicated: {', '.join(dupes)}" if dupes else f"{len(names)} components",
        )
    ]


def _checks(vtype: ValidationType, verdict: Verdict) -> list[Check]:
    if verdict is None or verdict is True:
        return [Check(vtype.value, ValidationOutcome.PASSED)]
    if verdict is False:
        return [Check(vtype.value, ValidationOutcome.FAILED)]
    if isinstance(verdict, Check):
        return [verdict]
    checks = list(verdict)
    return checks or [Check(vtype.value, ValidationOutcome.PASSED, "nothing to check")]


class ImplementationValidator:
    """Runs the validation types it has a check for and records each one's outcome."""

    def __init__(
        self,
        *,
        component: ValidationHook | None = component_validation,
        system: ValidationHook | None = system_validation,
        quality: ValidationHook | None = None,
        performance: ValidationHook | None = None,
        recorder: EventRecorder | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.hooks: dict[ValidationType, ValidationHook] = {
            vtype: hook
            for vtype, hook in (
                (ValidationType.COMPONENT, component),
                (ValidationType.SYSTEM, system),
                (ValidationType.QUALITY, quality),
                (ValidationType.PERFORMANCE, performance),
            )
            if hook is not None
        }
        self.recorder: EventRecorder = recorder or OTelRecorder()
        self._tracer = get_tracer(tracer_provider)

    async def validate_implementation(
        self,
        implementation: Any,
        validation_types: Iterable[ValidationType | str] | None = None,
        *,
        validation_id: str | None = None,
    ) -> ValidationReport:
        """Validate ``implementation`` (a Build, a list of components, anything your hooks
        understand) for the given types (default: every type with a check)."""
        types = (
            [ValidationType(t) for t in validation_types]
            if validation_types is not None
            else list(self.hooks)
        )
        missing = [t.value for t in types if t not in self.hooks]
        if missing:
            raise ValueError(
                f"validate_implementation: no check for {', '.join(missing)}; "
                "pass a hook for it to ImplementationValidator"
            )
        report = ValidationReport(validation_id or new_run_id())
        attributes: dict[str, Any] = {
            "cicd.pipeline.name": "validate_implementation",
            "cicd.pipeline.action.name": "RUN",
            "cicd.pipeline.run.id": report.id,
            "implmon.validation_types": [t.value for t in types],
        }
        tracer = stage_tracer(self._tracer)
        with stage_span(tracer, "validate_implementation", attributes) as span:
            report.trace_id, span_id = span_ids(span)
            events: list[ValidationEvent] = []
            keep = recording(self.recorder, tracer)
            for vtype in types:
                report.results[vtype] = result = await self._run(tracer, vtype, implementation)
                if keep:
                    events.append(
                        ValidationEvent.model_construct(
                            id=f"{report.id}/{vtype.value}",
                            kind="validation",
                            validation_type=vtype,
                            outcome=result.outcome,
                            duration_seconds=result.duration_seconds,
                            timestamp=to_datetime(time.time()),
                            trace_id=report.trace_id,
                            span_id=span_id,
                        )
                    )
            with tracer.start_as_current_span(
                "report_validation",
                attributes={
                    "cicd.pipeline.task.name": "report_validation",
                    "cicd.pipeline.task.type": "test",
                },
            ):
                for event in events:
                    await self.recorder.record(event)
            outcome = report.outcome
            span.set_attribute("implmon.validation.outcome", outcome.value)
            finish_span(
                span,
                Outcome.SUCCESS if outcome is ValidationOutcome.PASSED else Outcome.FAILURE,
                None,
                "cicd.pipeline.result",
            )
            if outcome is not ValidationOutcome.PASSED:
                bad = [
                    f"{t.value} {r.outcome.value}"
                    for t, r in report.results.items()
                    if r.outcome is not ValidationOutcome.PASSED
                ]
                span.set_status(trace.Status(trace.StatusCode.ERROR, "; ".join(bad)))
        return report

    async def _run(
        self, tracer: trace.Tracer, vtype: ValidationType, implementation: Any
    ) -> ValidationResult:
        name = f"{vtype.value}_validation"
        with tracer.start_as_current_span(
            name,
            attributes={
                "cicd.pipeline.task.name": name,
                "cicd.pipeline.task.type": "test",
                "implmon.validation_type": vtype.value,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            t0 = time.perf_counter()
            try:
                checks = _checks(vtype, await self.hooks[vtype](implementation))
            except Exception as exc:  # noqa: BLE001 - a check that cannot run is an outcome
                span.record_exception(exc)
                span.set_status(
                    trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
                )
                checks = [
                    Check(vtype.value, ValidationOutcome.ERROR, f"{type(exc).__name__}: {exc}")
                ]
            result = ValidationResult(vtype, checks, time.perf_counter() - t0)
            span.set_attribute("implmon.validation.outcome", result.outcome.value)
            span.set_attribute(
                "cicd.pipeline.task.run.result",
                {"passed": "success", "failed": "failure", "error": "error"}[result.outcome.value],
            )
            if result.outcome is ValidationOutcome.FAILED:
                failed = [c.name for c in checks if c.outcome is ValidationOutcome.FAILED]
                span.set_status(
                    trace.Status(trace.StatusCode.ERROR, "failed: " + "; ".join(failed))
                )
            return result
