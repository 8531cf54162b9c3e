"""The exporter process wires the OpenTelemetry SDK here (the SDK modules use the API only).

:func:`configure_telemetry` builds a TracerProvider and a MeterProvider from the standard
``OTEL_*`` variables, mostly by letting the SDK read them itself:

- ``OTEL_SDK_DISABLED=true``: nothing is installed, every span and record stays a no-op;
- ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``: the resource (``service.name``
  defaults to ``implmon`` when neither names one);
- ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``: read by the TracerProvider;
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``: spans go over
  OTLP/HTTP (protobuf) through a batch processor (``OTEL_BSP_*``); ``OTEL_EXPORTER_OTLP_HEADERS``,
  ``..._TIMEOUT``, ``..._COMPRESSION``, ``..._CERTIFICATE`` are read by the exporter;
- ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``: ``otlp`` (the default when an endpoint
  is set), ``console`` or ``none``;
- ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` (or the general endpoint): the SDK's metrics are pushed
  over OTLP/HTTP every ``OTEL_METRIC_EXPORT_INTERVAL`` ms.

The pipeline families on ``/metrics`` come from the durable event store (see
:class:`implmon.store.EventStore`), fed by the same events as the OpenTelemetry instruments
(:class:`implmon.pipeline.StoreRecorder`), so both agree and ``/metrics`` survives restarts.

Telemetry never crashes its host: a bad exporter setting is logged and leaves that signal off.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

from implmon import __version__

__all__ = ["DEFAULT_SERVICE_NAME", "Telemetry", "configure_telemetry"]

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "implmon"

# Read here (the rest are read by the SDK itself); all listed in implmon.envvars.OTEL_VARIABLES.
OTEL_SDK_DISABLED = "OTEL_SDK_DISABLED"
OTEL_TRACES_EXPORTER = "OTEL_TRACES_EXPORTER"
OTEL_METRICS_EXPORTER = "OTEL_METRICS_EXPORTER"
OTEL_EXPORTER_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
OTEL_EXPORTER_OTLP_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"


@dataclass
class Telemetry:
    """What :func:`configure_telemetry` installed; ``shutdown`` flushes and stops it."""

    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    span_exporters: list[str] = field(default_factory=list)
    metric_exporters: list[str] = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return self.tracer_provider is not None

    def shutdown(self, timeout_millis: int = 5000) -> None:
        """Flush pending spans and metrics, then stop; logs, never raises."""
        for name, provider in (("tracer", self.tracer_provider), ("meter", self.meter_provider)):
            if provider is None:
                continue
            try:
                provider.force_flush(timeout_millis)
                provider.shutdown()
            except Exception:
                log.exception("OpenTelemetry %s provider shutdown failed", name)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _exporter_names(env: Mapping[str, str], var: str, *endpoints: str) -> list[str]:
    """The exporters named by ``var`` (comma list); default otlp when an endpoint is set."""
    raw = env.get(var, "").strip().lower()
    if raw:
        return [n.strip() for n in raw.split(",") if n.strip() and n.strip() != "none"]
    return ["otlp"] if any(env.get(e) for e in endpoints) else []


def resource_from_env() -> Resource:
    """The SDK's resource (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME win), service.name
    defaulting to ``implmon`` and service.version to implmon's version."""
    detected = Resource.create()
    ours = {SERVICE_VERSION: __version__}
    name = str(detected.attributes.get(SERVICE_NAME, ""))
    if not name or name.startswith("unknown_service"):
        ours[SERVICE_NAME] = DEFAULT_SERVICE_NAME
    # merge: the right-hand side wins, so keep the detected values over our defaults except for
    # the SDK's own unknown_service placeholder.
    defaults = Resource(ours)
    if SERVICE_NAME in ours:
        return detected.merge(defaults)
    return defaults.merge(detected)


def _otlp_span_exporter(env: Mapping[str, str]) -> SpanExporter | None:
    protocol = env.get(OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) or env.get(OTEL_EXPORTER_OTLP_PROTOCOL)
    if protocol and protocol != "http/protobuf":
        log.warning(
            "%s=%s is not supported here; using http/protobuf",
            OTEL_EXPORTER_OTLP_PROTOCOL,
            protocol,
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def configure_telemetry(
    *,
    env: Mapping[str, str] | None = None,
    set_global: bool = True,
    span_processors: tuple[SpanProcessor, ...] = (),
    metric_readers: tuple[MetricReader, ...] = (),
) -> Telemetry:
    """Build the providers from the environment; install them globally unless told not to.

    ``span_processors`` and ``metric_readers`` are added as well (tests pass in-memory ones).
    Returns a disabled :class:`Telemetry` when ``OTEL_SDK_DISABLED`` is true.
    """
    env = os.environ if env is None else env
    if _truthy(env.get(OTEL_SDK_DISABLED)):
        log.info("OpenTelemetry SDK disabled by %s", OTEL_SDK_DISABLED)
        return Telemetry()
    resource = resource_from_env()
    tracer_provider = TracerProvider(resource=resource)
    telemetry = Telemetry(tracer_provider=tracer_provider)
    for processor in span_processors:
        tracer_provider.add_span_processor(processor)
    for name in _exporter_names(
        env, OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
    ):
        try:
            exporter: SpanExporter | None
            if name == "otlp":
                exporter = _otlp_span_exporter(env)
            elif name == "console":
                exporter = ConsoleSpanExporter()
            else:
                log.warning(
                    "%s: unknown exporter %r ignored (otlp, console, none)",
                    OTEL_TRACES_EXPORTER,
                    name,
                )
                exporter = None
            if exporter is not None:
                tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
                telemetry.span_exporters.append(name)
        except Exception:
            log.exception("OpenTelemetry span exporter %s could not start; spans stay local", name)
    readers = list(metric_readers)
    for name in _exporter_names(
        env, OTEL_METRICS_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT
    ):
        try:
            if name == "otlp":
                from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                    OTLPMetricExporter,
                )

                readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
            elif name == "console":
                readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
            elif name == "prometheus":
                log.info("%s=prometheus: implmon serves its own /metrics", OTEL_METRICS_EXPORTER)
                continue
            else:
                log.warning(
                    "%s: unknown exporter %r ignored (otlp, console, none)",
                    OTEL_METRICS_EXPORTER,
                    name,
                )
                continue
            telemetry.metric_exporters.append(name)
        except Exception:
            log.exception("OpenTelemetry metric exporter %s could not start", name)
    # Without a reader nobody would see the SDK's aggregates: leave the API's no-op meter (the
    # store-backed /metrics counts the same events).
    if readers:
        telemetry.meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        if telemetry.meter_provider is not None:
            metrics.set_meter_provider(telemetry.meter_provider)
    log.info(
        "OpenTelemetry: service %s, span exporters %s, metric exporters %s",
        resource.attributes.get(SERVICE_NAME),
        telemetry.span_exporters or "none",
        telemetry.metric_exporters or "none",
    )
    return telemetry
