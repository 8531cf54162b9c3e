"""What the builder, deployer and validator share: stage spans, step spans and recorders.

A *stage* (``build_system``, ``deploy_system``, ``validate_implementation``) is one span; each of
the seed's sub-steps is a child span. Attributes follow the OpenTelemetry CI/CD conventions
where they fit (``cicd.pipeline.name``, ``cicd.pipeline.run.id``, ``cicd.pipeline.result``,
``cicd.pipeline.task.name``, ``cicd.pipeline.task.type`` = build/test/deploy,
``cicd.pipeline.task.run.result``) plus ``implmon.*`` ones for the seed's vocabulary. An error
sets the span status to ERROR and records the exception.

A stage ends by handing its event (:mod:`implmon.events`) to an :class:`EventRecorder`. The
default, :class:`OTelRecorder`, records OpenTelemetry metric instruments named so that their
Prometheus names are the catalogue's (``implmon.deployments`` → ``implmon_deployments_total``,
``implmon.deployment.duration`` in seconds → ``implmon_deployment_duration_seconds``). The
exporter's :class:`StoreRecorder` writes the durable store first and then the same instruments,
so the store-backed ``/metrics`` and the OpenTelemetry metrics see the same events.

This module imports the OpenTelemetry API only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from implmon import __version__
from implmon.events import (
    BuildEvent,
    DeploymentEvent,
    Event,
    EventRecorder,
    Outcome,
    ValidationEvent,
)
from implmon.factory import TRACER_NAME

if TYPE_CHECKING:
    from implmon.store import AppendResult, EventStore

__all__ = [
    "METER_NAME",
    "TRACER_NAME",
    "CompositeRecorder",
    "HttpRecorder",
    "OTelRecorder",
    "StageFailed",
    "StoreRecorder",
    "new_run_id",
    "recording",
    "stage_span",
    "step",
]

log = logging.getLogger(__name__)

#: Name of the meter every implmon SDK instrument comes from.
METER_NAME = "implmon"

T = TypeVar("T")

# cicd.pipeline.result values (CI/CD semantic conventions) for each outcome.
_RESULT = {
    Outcome.SUCCESS: "success",
    Outcome.FAILURE: "failure",
    Outcome.CANCELLED: "cancellation",
}


class StageFailed(Exception):
    """A hook said no (returned False) without raising; names the step."""


def new_run_id() -> str:
    """A fresh event id for a run the caller did not name."""
    return os.urandom(16).hex()


class _NoSpan:
    """A ``with`` target standing in for a span when nobody records spans."""

    def __enter__(self) -> Span:
        return trace.INVALID_SPAN

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SPAN = _NoSpan()


class _StageTracer(trace.Tracer):
    """The SDK modules' tracer: the real one when a tracer provider was given or an SDK is
    installed globally; otherwise every span is skipped outright, so with the API alone an
    instrumented stage costs an isinstance check per span instead of the API's no-op span
    and context switch."""

    def __init__(self, provider: trace.TracerProvider | None) -> None:
        self._real = trace.get_tracer(TRACER_NAME, __version__, tracer_provider=provider)
        # A global provider, once set, cannot be replaced (the API forbids it): once active,
        # always active, and the check costs nothing from then on.
        self._known_active = provider is not None

    def _active(self) -> bool:
        if self._known_active:
            return True
        self._known_active = not isinstance(
            trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
        )
        return self._known_active

    def resolve(self) -> trace.Tracer:
        """The tracer for one stage: this one, or one that skips every span (checked once)."""
        return self if self._active() else _SKIP_ALL

    def start_span(self, *args: Any, **kwargs: Any) -> Span:
        return self._real.start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        if not self._active():
            return _NO_SPAN
        return self._real.start_as_current_span(*args, **kwargs)


class _SkipAll(trace.Tracer):
    def start_span(self, *args: Any, **kwargs: Any) -> Span:
        return trace.INVALID_SPAN

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return _NO_SPAN


_SKIP_ALL = _SkipAll()


def stage_tracer(tracer: trace.Tracer) -> trace.Tracer:
    """The tracer a stage should use for all its spans (see :class:`_StageTracer`)."""
    return tracer.resolve() if isinstance(tracer, _StageTracer) else tracer


def recording(recorder: EventRecorder, tracer: trace.Tracer) -> bool:
    """Whether a stage's event goes anywhere: a span to record it under, or a recorder that
    keeps it (a recorder without an ``enabled`` attribute always does). With the API alone and
    the default recorder, stages skip building events at all."""
    return tracer is not _SKIP_ALL or bool(getattr(recorder, "enabled", True))


def get_tracer(tracer_provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """The tracer named :data:`TRACER_NAME` (from ``tracer_provider`` or the global one)."""
    return _StageTracer(tracer_provider)


def outcome_of(exc: BaseException | None) -> Outcome:
    """success without an exception; cancelled for cancellation or Ctrl-C; else failure."""
    if exc is None:
        return Outcome.SUCCESS
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return Outcome.CANCELLED
    return Outcome.FAILURE


def finish_span(span: Span, outcome: Outcome, exc: BaseException | None, result_key: str) -> None:
    """Set the outcome attributes and, for a failure, ERROR status and the exception."""
    span.set_attribute(result_key, _RESULT[outcome])
    span.set_attribute("implmon.outcome", outcome.value)
    if exc is not None:
        span.set_attribute("error.type", type(exc).__qualname__)
        if outcome is Outcome.FAILURE:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def stage_span(tracer: trace.Tracer, name: str, attributes: dict[str, Any]) -> Any:
    """The stage's span (a ``with`` target); its status and result are set by the caller (see
    :func:`finish_span`): ``record_exception``/``set_status_on_exception`` are off because the
    stage decides the outcome (a cancellation is not an error)."""
    return tracer.start_as_current_span(
        name,
        kind=SpanKind.INTERNAL,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    )


async def step(
    tracer: trace.Tracer,
    name: str,
    task_type: str,
    hook: Callable[..., Awaitable[T]],
    *args: Any,
) -> T:
    """Run one sub-step as a child span; a hook returning ``False`` fails the step."""
    with tracer.start_as_current_span(
        name,
        attributes={"cicd.pipeline.task.name": name, "cicd.pipeline.task.type": task_type},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            result = await hook(*args)
            if result is False:
                raise StageFailed(f"{name}: {getattr(hook, '__qualname__', hook)} returned False")
        except BaseException as exc:
            finish_span(span, outcome_of(exc), exc, "cicd.pipeline.task.run.result")
            raise
        span.set_attribute("cicd.pipeline.task.run.result", "success")
        return result


def span_ids(span: Span) -> tuple[str | None, str | None]:
    """The span's trace and span id as W3C hex; (None, None) unless the span is sampled (an
    exemplar must point at a trace that exists)."""
    ctx = span.get_span_context()
    if not ctx.is_valid or not ctx.trace_flags.sampled:
        return None, None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


# --- recorders --------------------------------------------------------------------------------


class OTelRecorder:
    """Records events as OpenTelemetry metric instruments (API only: a no-op without an SDK)."""

    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        meter = metrics.get_meter(METER_NAME, __version__, meter_provider=meter_provider)
        # A global meter provider, once set, stays: once enabled, always enabled.
        self._enabled = meter_provider is not None
        self.builds = meter.create_counter(
            "implmon.builds", unit="{build}", description="Builds by build type and outcome."
        )
        self.build_duration = meter.create_histogram(
            "implmon.build.duration", unit="s", description="Build durations by build type."
        )
        self.deployments = meter.create_counter(
            "implmon.deployments",
            unit="{deployment}",
            description="Deployments by environment and outcome.",
        )
        self.deployment_duration = meter.create_histogram(
            "implmon.deployment.duration",
            unit="s",
            description="Deployment durations by environment.",
        )
        self.lead_time = meter.create_histogram(
            "implmon.deployment.lead_time",
            unit="s",
            description="Lead time for changes: change time to successful deployment.",
        )
        self.validations = meter.create_counter(
            "implmon.validations",
            unit="{validation}",
            description="Validations by validation type and outcome.",
        )
        self.validation_duration = meter.create_histogram(
            "implmon.validation.duration",
            unit="s",
            description="Validation durations by validation type.",
        )

    @property
    def enabled(self) -> bool:
        """False while no OpenTelemetry SDK meter provider is installed (records go nowhere)."""
        if not self._enabled:
            # Until an SDK is installed the API hands out its proxy (or a no-op) provider.
            provider = type(metrics.get_meter_provider()).__name__
            self._enabled = provider not in ("_ProxyMeterProvider", "NoOpMeterProvider")
        return self._enabled

    def record_now(self, event: Event) -> None:
        """Synchronous form (instruments never block)."""
        try:
            if isinstance(event, BuildEvent):
                bt = event.build_type.value
                self.builds.add(1, {"build_type": bt, "outcome": event.outcome.value})
                if event.duration_seconds is not None:
                    self.build_duration.record(event.duration_seconds, {"build_type": bt})
            elif isinstance(event, DeploymentEvent):
                env = event.environment.value
                self.deployments.add(1, {"environment": env, "outcome": event.outcome.value})
                if event.duration_seconds is not None:
                    self.deployment_duration.record(event.duration_seconds, {"environment": env})
                if event.outcome is Outcome.SUCCESS and event.commit_time is not None:
                    lead = event.time(time.time()) - event.commit_time.timestamp()
                    self.lead_time.record(max(0.0, lead), {"environment": env})
            elif isinstance(event, ValidationEvent):
                vt = event.validation_type.value
                self.validations.add(1, {"validation_type": vt, "outcome": event.outcome.value})
                if event.duration_seconds is not None:
                    self.validation_duration.record(event.duration_seconds, {"validation_type": vt})
        except Exception:
            log.exception(
                "recording %s event %s as OpenTelemetry metrics failed", event.kind, event.id
            )

    async def record(self, event: Event) -> None:
        self.record_now(event)


class StoreRecorder:
    """Writes each event to the durable store (awaiting its commit), then, when the store took
    it as new, to the OpenTelemetry instruments: both count each event once."""

    def __init__(self, store: EventStore, otel: OTelRecorder | None = None) -> None:
        self.store = store
        self.otel = otel or OTelRecorder()
        self.failures = 0

    async def append(self, event: Event, body: str | None = None) -> AppendResult:
        """Store the event and record it; raises StoreError when it could not be stored.
        ``body``: the event's JSON as received, if any (see :meth:`EventStore.append`)."""
        result = await self.store.append(event, body=body)
        if result.result == "stored":
            self.otel.record_now(event)
        return result

    async def record(self, event: Event) -> None:
        try:
            await self.append(event)
        except Exception:
            # A pipeline must not fail because its record did; the instruments still count it.
            self.failures += 1
            log.exception("storing %s event %s failed", event.kind, event.id)
            self.otel.record_now(event)


class HttpRecorder:
    """Sends each event to an exporter's ingest API (``POST /api/v1/events``), for tools that
    run where the exporter's store is not (CI runners, other hosts).

    Connection errors, 408/429 and 5xx are retried with exponential backoff and jitter; the
    event id makes the retries safe (a retry of a stored event is answered 200). An event still
    undelivered after the retries is logged and counted in ``failures``, never raised. Events
    the exporter accepted as new are also recorded on the OpenTelemetry instruments.

    >>> recorder = HttpRecorder("http://127.0.0.1:9464", token="s3cret")
    """

    RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        retries: int = 5,
        timeout: float = 10.0,
        backoff: float = 0.5,
        otel: OTelRecorder | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"HttpRecorder url {url!r}: must be an http:// or https:// URL")
        self.endpoint = url.rstrip("/") + "/api/v1/events"
        self.token = token
        self.retries = retries
        self.timeout = timeout
        self.backoff = backoff
        self.otel = otel or OTelRecorder()
        self.failures = 0
        self._session: Any = None

    async def _post(self, body: bytes) -> tuple[int, str]:
        import aiohttp  # here, so that importing the SDK does not import the HTTP client

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"Content-Type": "application/json", "User-Agent": "implmon-sdk"},
            )
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self._session.post(self.endpoint, data=body, headers=headers) as resp:
            return int(resp.status), str(await resp.text())

    async def record(self, event: Event) -> None:
        import aiohttp

        from implmon.events import dump_event

        body = dump_event(event).encode()
        last = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff * 2 ** (attempt - 1)
                await asyncio.sleep(random.uniform(0, min(30.0, delay)))  # noqa: S311
            try:
                status, text = await self._post(body)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if status == 201:
                self.otel.record_now(event)
            if 200 <= status < 300:
                return
            last = f"HTTP {status}: {text[:200]}"
            if status not in self.RETRYABLE:
                break
        self.failures += 1
        log.error("%s event %s not recorded by %s: %s", event.kind, event.id, self.endpoint, last)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> HttpRecorder:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class CompositeRecorder:
    """Hands each event to several recorders in turn."""

    def __init__(self, recorders: Sequence[EventRecorder]) -> None:
        self.recorders = list(recorders)

    async def record(self, event: Event) -> None:
        for recorder in self.recorders:
            try:
                await recorder.record(event)
            except Exception:
                log.exception("recorder %r failed on %s event %s", recorder, event.kind, event.id)
