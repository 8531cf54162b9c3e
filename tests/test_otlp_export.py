"""Real OTLP/HTTP export to a local receiver; the protobuf it receives is decoded and checked."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from implmon.builder import Build, BuildError, SystemBuilder
from implmon.deployer import SystemDeployer
from implmon.pipeline import OTelRecorder
from implmon.stack import free_port, start_exporter
from implmon.telemetry import configure_telemetry
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


@dataclass
class Receiver:
    url: str
    traces: list[ExportTraceServiceRequest] = field(default_factory=list)
    metrics: list[ExportMetricsServiceRequest] = field(default_factory=list)
    content_types: set[str] = field(default_factory=set)

    def spans(self) -> list[tuple[dict[str, str], Span]]:
        """(resource attributes, span) for every span received."""
        out = []
        for req in self.traces:
            for rs in req.resource_spans:
                resource = {a.key: a.value.string_value for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    assert ss.scope.name == "implmon"
                    out.extend((resource, span) for span in ss.spans)
        return out


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver("")

    async def body(request: web.Request) -> bytes:
        rec.content_types.add(request.content_type)
        raw = await request.read()
        return gzip.decompress(raw) if request.headers.get("Content-Encoding") == "gzip" else raw

    async def traces(request: web.Request) -> web.Response:
        msg = ExportTraceServiceRequest()
        msg.ParseFromString(await body(request))
        rec.traces.append(msg)
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def metrics(request: web.Request) -> web.Response:
        msg = ExportMetricsServiceRequest()
        msg.ParseFromString(await body(request))
        rec.metrics.append(msg)
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    app.router.add_post("/v1/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rec.url = f"http://127.0.0.1:{port}"
    yield rec
    await runner.cleanup()


def attrs(span: Span) -> dict[str, object]:
    out: dict[str, object] = {}
    for a in span.attributes:
        v = a.value
        out[a.key] = getattr(v, v.WhichOneof("value") or "string_value")
    return out


async def test_spans_and_metrics_over_otlp_http(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "deploy-tool")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=ci,team=platform")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "600000")  # only the shutdown flush
    telemetry = configure_telemetry(set_global=False)
    assert telemetry.span_exporters == ["otlp"] and telemetry.metric_exporters == ["otlp"]
    recorder = OTelRecorder(telemetry.meter_provider)
    builder = SystemBuilder(recorder=recorder, tracer_provider=telemetry.tracer_provider)
    deployer = SystemDeployer(recorder=recorder, tracer_provider=telemetry.tracer_provider)

    async def failing_tests(build: Build) -> None:
        raise AssertionError("2 tests failed")

    build = await builder.build_system(["api"], "production", version="3.1.0", build_id="b-ok")
    await deployer.deploy_system(build, "production", deployment_id="d-ok")
    builder.tester = failing_tests
    with pytest.raises(BuildError):
        await builder.build_system(["api"], "testing", build_id="b-bad")
    # The exporter's HTTP client is synchronous and our receiver shares this loop: flush from a
    # thread so the loop can answer.
    await asyncio.to_thread(telemetry.shutdown)

    assert receiver.content_types == {"application/x-protobuf"}
    received = receiver.spans()
    resource = received[0][0]
    assert resource["service.name"] == "deploy-tool"
    assert resource["team"] == "platform"
    assert resource["service.version"]
    spans = {(s.name, attrs(s).get("cicd.pipeline.run.id")): s for _, s in received}
    by_id = {s.span_id: s for _, s in received}
    ok = spans[("build_system", "b-ok")]
    assert attrs(ok)["implmon.build_type"] == "production"
    assert attrs(ok)["implmon.version"] == "3.1.0"
    assert attrs(ok)["cicd.pipeline.result"] == "success"
    assert ok.parent_span_id == b""
    kids = sorted((s for _, s in received if s.parent_span_id == ok.span_id),
                  key=lambda s: s.start_time_unix_nano)
    assert [k.name for k in kids] == [
        "assemble_system", "test_system", "validate_build", "process_build"]
    assert all(k.trace_id == ok.trace_id for k in kids)
    dep = spans[("deploy_system", "d-ok")]
    assert attrs(dep)["deployment.environment.name"] == "production"
    assert attrs(dep)["implmon.build.id"] == "b-ok"
    bad = spans[("build_system", "b-bad")]
    assert bad.status.code == Status.STATUS_CODE_ERROR
    assert "2 tests failed" in bad.status.message
    assert [e.name for e in bad.events] == ["exception"]
    failed_step = next(s for s in by_id.values()
                       if s.name == "test_system" and s.parent_span_id == bad.span_id)
    assert failed_step.status.code == Status.STATUS_CODE_ERROR

    # Metrics: instrument names whose Prometheus translation is the catalogue's.
    points: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for req in receiver.metrics:
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    data = m.sum.data_points if m.HasField("sum") else m.histogram.data_points
                    for p in data:
                        key = (m.name, tuple(sorted((a.key, a.value.string_value)
                                                    for a in p.attributes)))
                        points[key] = float(getattr(p, "as_int", 0) or getattr(p, "count", 0))
    assert points[("implmon.builds", (("build_type", "production"), ("outcome", "success")))] == 1
    assert points[("implmon.builds", (("build_type", "testing"), ("outcome", "failure")))] == 1
    assert points[("implmon.deployments",
                   (("environment", "production"), ("outcome", "success")))] == 1
    assert points[("implmon.deployment.duration", (("environment", "production"),))] == 1


async def test_sampler_and_disable_from_env(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{receiver.url}/v1/traces")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    telemetry = configure_telemetry(set_global=False)
    assert telemetry.span_exporters == ["otlp"] and telemetry.metric_exporters == []
    builder = SystemBuilder(tracer_provider=telemetry.tracer_provider)
    build = await builder.build_system([], "development")
    assert build.trace_id is None  # not sampled: no ids, nothing exported
    await asyncio.to_thread(telemetry.shutdown)
    assert receiver.traces == []

    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    disabled = configure_telemetry(set_global=False)
    assert not disabled.enabled and disabled.tracer_provider is None


@pytest.mark.integration
async def test_exporter_process_sends_its_spans(receiver: Receiver, tmp_path: Path) -> None:
    """`implmon run` wires the SDK from OTEL_* variables: the factory's create_component spans
    for its own pipeline arrive at the receiver."""
    port = free_port()
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "implmon-under-test",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_METRICS_EXPORTER": "none",
    }
    with start_exporter(tmp_path, f"interval: 1s\nstore_path: {tmp_path}/e.db\n", port,
                        env=env):
        for _ in range(100):
            if any(s.name == "create_component" for _, s in receiver.spans()):
                break
            await asyncio.sleep(0.1)
    received = receiver.spans()
    names = {s.name for _, s in received}
    assert {"create_component", "register_component", "monitor_component"} <= names
    assert received[0][0]["service.name"] == "implmon-under-test"


def test_resource_and_exporter_choice_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(var, raising=False)
    plain = configure_telemetry(set_global=False)
    assert plain.tracer_provider is not None
    assert plain.tracer_provider.resource.attributes["service.name"] == "implmon"
    assert plain.span_exporters == [] and plain.meter_provider is None  # nothing to export to
    plain.shutdown()

    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,region=eu")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console,zipkin")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    chosen = configure_telemetry(set_global=False)
    assert chosen.tracer_provider is not None
    attrs = chosen.tracer_provider.resource.attributes
    assert attrs["service.name"] == "from-attrs" and attrs["region"] == "eu"
    assert chosen.span_exporters == ["console"]  # the unknown one is logged and skipped
    chosen.shutdown()
