"""Helpers for your own tests: capture implmon's spans, metrics and events in memory.

Like ``structlog.testing.capture_logs``: open a capture, hand its providers and recorder to the
SDK objects under test, then assert on what was recorded. Needs the OpenTelemetry SDK
(``pip install implmon[exporter]``); the SDK modules themselves need only the API.

>>> import asyncio
>>> from implmon.deployer import SystemDeployer
>>> with capture_telemetry() as cap:
...     deployer = SystemDeployer(**cap.sdk_kwargs())
...     _ = asyncio.run(deployer.deploy_system(None, "staging", version="1.0"))
>>> print(cap.span_tree())
deploy_system
  provision_resources
  deploy_components
  validate_deployment
  process_deployment
>>> cap.metric("implmon.deployments", environment="staging", outcome="success")
1
>>> [e.kind for e in cap.events]
['deployment']
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from implmon.events import Event
from implmon.pipeline import OTelRecorder

__all__ = ["CapturedTelemetry", "RecordingRecorder", "capture_telemetry"]


class RecordingRecorder:
    """An :class:`~implmon.events.EventRecorder` that keeps every event (and records the
    OpenTelemetry instruments, like the real recorders)."""

    def __init__(self, otel: OTelRecorder | None = None) -> None:
        self.events: list[Event] = []
        self.otel = otel

    async def record(self, event: Event) -> None:
        self.events.append(event)
        if self.otel is not None:
            self.otel.record_now(event)


@dataclass
class CapturedTelemetry:
    """In-memory providers plus what they captured."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    span_exporter: InMemorySpanExporter
    metric_reader: InMemoryMetricReader
    recorder: RecordingRecorder
    _metrics: dict[tuple[str, frozenset[tuple[str, Any]]], Any] = field(default_factory=dict)
    _closed: bool = False

    def sdk_kwargs(self) -> dict[str, Any]:
        """``tracer_provider`` and ``recorder`` for SystemBuilder/SystemDeployer/
        ImplementationValidator (ImplementationManager takes the same names)."""
        return {"tracer_provider": self.tracer_provider, "recorder": self.recorder}

    @property
    def events(self) -> list[Event]:
        return self.recorder.events

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """Finished spans in the order they ended, optionally only those named ``name``."""
        spans = list(self.span_exporter.get_finished_spans())
        return [s for s in spans if name is None or s.name == name]

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name`` (AssertionError if there are 0 or several)."""
        found = self.spans(name)
        assert len(found) == 1, f"expected one span {name!r}, found {len(found)}"
        return found[0]

    def span_tree(self) -> str:
        """Finished spans as an indented tree, children in start order."""
        spans = sorted(self.spans(), key=lambda s: s.start_time or 0)
        ids = {s.context.span_id for s in spans if s.context is not None}
        children: dict[int | None, list[ReadableSpan]] = {}
        for s in spans:
            parent = s.parent.span_id if s.parent is not None else None
            children.setdefault(parent if parent in ids else None, []).append(s)
        lines: list[str] = []

        def walk(parent: int | None, depth: int) -> None:
            for s in children.get(parent, []):
                lines.append("  " * depth + s.name)
                if s.context is not None:
                    walk(s.context.span_id, depth + 1)

        walk(None, 0)
        return "\n".join(lines)

    def collect_metrics(self) -> dict[tuple[str, frozenset[tuple[str, Any]]], Any]:
        """Read the meter provider now; returns {(instrument, attributes): value}. A counter's
        value is its sum, a histogram's is its data point (count, sum, bucket_counts...)."""
        data = None if self._closed else self.metric_reader.get_metrics_data()
        if data is not None:
            for rm in data.resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        for point in metric.data.data_points:
                            key = (metric.name, frozenset(dict(point.attributes or {}).items()))
                            self._metrics[key] = getattr(point, "value", point)
        return dict(self._metrics)

    def metric(self, name: str, **attributes: str) -> Any:
        """The value of one instrument's series (None if it was never recorded)."""
        return self.collect_metrics().get((name, frozenset(attributes.items())))

    def clear(self) -> None:
        self.span_exporter.clear()
        self.recorder.events.clear()


@contextmanager
def capture_telemetry(*, extra_span_processors: Sequence[Any] = ()) -> Iterator[CapturedTelemetry]:
    """In-memory tracer and meter providers and a recording recorder, shut down at exit.

    Nothing global is touched: pass ``cap.sdk_kwargs()`` (or the providers) to what you test.
    """
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    for processor in extra_span_processors:
        tracer_provider.add_span_processor(processor)
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    captured = CapturedTelemetry(
        tracer_provider,
        meter_provider,
        exporter,
        reader,
        RecordingRecorder(OTelRecorder(meter_provider)),
    )
    try:
        yield captured
    finally:
        # Keep what was captured readable after the block; only stop the providers.
        captured.collect_metrics()
        captured._closed = True
        tracer_provider.shutdown()
        meter_provider.shutdown()
