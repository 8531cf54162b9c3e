"""The ``http_probe`` collector against real local aiohttp servers: IETF health bodies, status
codes, timeouts, refused connections, versions, the concurrency limit and the bearer token."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from implmon.components.collectors.http_probe import HttpProbeCollector, HttpProbeSettings
from implmon.demo import DEMO_COMPONENTS, start_agents
from implmon.metrics import Sample
from implmon.monitor import ImplementationMonitor, Pipeline, check_samples
from implmon.stack import free_port, free_port_block

HEALTH_JSON = "application/health+json"


@dataclass
class Server:
    """A health server whose routes record what they were sent."""

    url: str
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    state: dict[str, Any] = field(default_factory=dict)


def _health(status: str | None, code: int = 200, **extra: Any) -> web.Response:
    body: dict[str, Any] = dict(extra)
    if status is not None:
        body["status"] = status
    return web.Response(text=json.dumps(body), status=code, content_type=HEALTH_JSON)


def _app(server: Server) -> web.Application:
    app = web.Application()

    async def body_route(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        server.seen_headers.append(dict(request.headers))
        routes: dict[str, web.Response] = {
            "pass": _health("pass", version="2.0.0"),
            "warn": _health("warn"),
            "fail-200": _health("fail"),
            "fail-503": _health("fail", 503, version="2.0.1"),
            "ok": _health("ok"),
            "up": _health("UP"),
            "down": _health("down"),
            "degraded": _health("degraded"),
            "no-status": _health(None, version="3.1"),
            "list": web.json_response([1, 2]),
            "text-200": web.Response(text="OK\n"),
            "text-503": web.Response(text="Service Unavailable\n", status=503),
            "teapot": web.Response(text="short and stout\n", status=418),
            "release-id": _health("pass", releaseId="r-77"),
        }
        return routes[name]

    async def chunked(request: web.Request) -> web.StreamResponse:
        # A failing component whose body arrives in two chunks, some time apart.
        resp = web.StreamResponse(headers={"Content-Type": HEALTH_JSON})
        await resp.prepare(request)
        body = json.dumps({"status": "fail", "version": "4.0", "output": "disk full"}).encode()
        await resp.write(body[:15])
        await asyncio.sleep(0.05)
        await resp.write(body[15:])
        await resp.write_eof()
        return resp

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("seconds", "5")))
        return _health("pass")

    async def counted(request: web.Request) -> web.Response:
        server.in_flight += 1
        server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            await asyncio.sleep(0.2)
        finally:
            server.in_flight -= 1
        return _health("pass")

    async def auth(request: web.Request) -> web.Response:
        server.seen_headers.append(dict(request.headers))
        if request.headers.get("Authorization") != f"Bearer {server.state['token']}":
            return web.Response(status=401)
        return _health("pass")

    async def switch(request: web.Request) -> web.Response:
        status: str = server.state["status"]
        return _health(status, 503 if status == "fail" else 200, version=server.state["version"])

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/health/pass")

    app.router.add_get("/health/{name}", body_route)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/slow", slow)
    app.router.add_get("/counted/{i}", counted)
    app.router.add_get("/auth", auth)
    app.router.add_get("/switch", switch)
    app.router.add_get("/redirect", redirect)
    return app


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    port = free_port()
    srv = Server(f"http://127.0.0.1:{port}")
    runner = web.AppRunner(_app(srv), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield srv
    await runner.cleanup()


def _collector(targets: Sequence[dict[str, Any]], **settings: Any) -> HttpProbeCollector:
    return HttpProbeCollector(
        HttpProbeSettings(kind="http_probe", name="probe", targets=list(targets), **settings)
    )


async def _collect_once(collector: HttpProbeCollector) -> list[Sample]:
    await collector.start()
    try:
        # Every sample must be a valid catalogue sample, as the monitor checks.
        return check_samples(list(await collector.collect()))
    finally:
        await collector.close()


def value(samples: Sequence[Sample], metric: str, **labels: str) -> float:
    found = [s.value for s in samples if s.metric == metric and dict(s.labels) == labels]
    assert len(found) == 1, f"{metric}{labels}: {len(found)} samples"
    v = found[0]
    assert isinstance(v, float)
    return v


def health_of(samples: Sequence[Sample], component: str) -> str:
    states = [
        s.labels["status"]
        for s in samples
        if s.metric == "implmon_component_health_status"
        and s.labels["component"] == component
        and s.value == 1.0
    ]
    assert len(states) == 1, states
    assert {
        s.labels["status"]
        for s in samples
        if s.metric == "implmon_component_health_status" and s.labels["component"] == component
    } == {"pass", "warn", "fail"}
    return states[0]


def info_version(samples: Sequence[Sample], component: str) -> str:
    (version,) = [
        s.labels["version"]
        for s in samples
        if s.metric == "implmon_component_info" and s.labels["component"] == component
    ]
    return version


# route -> (success, health, HTTP status code)
BODIES = {
    "pass": (True, "pass", 200),
    "warn": (True, "warn", 200),
    "fail-200": (False, "fail", 200),
    "fail-503": (False, "fail", 503),
    "ok": (True, "pass", 200),
    "up": (True, "pass", 200),
    "down": (False, "fail", 200),
    "degraded": (True, "warn", 200),  # an unknown status is neither a clear pass nor fail
    "no-status": (True, "pass", 200),
    "list": (True, "pass", 200),
    "text-200": (True, "pass", 200),
    "text-503": (False, "fail", 503),
}


@pytest.mark.parametrize("route", sorted(BODIES))
async def test_health_body_and_status_code(server: Server, route: str) -> None:
    success, health, code = BODIES[route]
    samples = await _collect_once(
        _collector([{"url": f"{server.url}/health/{route}", "component": "c", "type": "analyzer"}])
    )
    labels = {"component": "c", "type": "analyzer"}
    assert value(samples, "implmon_component_probe_success", **labels) == float(success)
    assert value(samples, "implmon_component_probe_http_status_code", **labels) == code
    assert health_of(samples, "c") == health
    assert value(samples, "implmon_component_probe_duration_seconds", **labels) > 0
    result = "success" if success else "failure"
    other = "failure" if success else "success"
    assert value(samples, "implmon_component_probes_total", **labels, result=result) == 1
    assert value(samples, "implmon_component_probes_total", **labels, result=other) == 0


async def test_every_target_gets_its_own_series(server: Server) -> None:
    routes = sorted(BODIES)
    samples = await _collect_once(
        _collector([{"url": f"{server.url}/health/{r}", "component": r} for r in routes])
    )
    for route in routes:
        assert health_of(samples, route) == BODIES[route][1]
    assert len({s.labels["component"] for s in samples}) == len(routes)


async def test_body_sent_in_chunks_is_read_whole(server: Server) -> None:
    # Regression: one content.read(n) returned only the first chunk, the JSON did not parse
    # and a failing component counted as passing.
    samples = await _collect_once(_collector([{"url": f"{server.url}/chunked", "component": "c"}]))
    assert health_of(samples, "c") == "fail"
    assert value(samples, "implmon_component_probe_success", component="c", type="collector") == 0
    assert info_version(samples, "c") == "4.0"


async def test_valid_status_codes(server: Server) -> None:
    target = {"url": f"{server.url}/health/teapot", "component": "c"}
    default = await _collect_once(_collector([target]))
    assert health_of(default, "c") == "fail"
    custom = await _collect_once(_collector([target], valid_status_codes=[418]))
    assert health_of(custom, "c") == "pass"
    assert (
        value(custom, "implmon_component_probe_http_status_code", component="c", type="collector")
        == 418
    )
    # With a list, 200 is no longer accepted unless listed.
    ok = await _collect_once(
        _collector(
            [{"url": f"{server.url}/health/pass", "component": "c"}], valid_status_codes=[418]
        )
    )
    assert health_of(ok, "c") == "fail"


async def test_redirect_is_followed(server: Server) -> None:
    samples = await _collect_once(_collector([{"url": f"{server.url}/redirect", "component": "c"}]))
    assert health_of(samples, "c") == "pass"
    assert info_version(samples, "c") == "2.0.0"


async def test_timeout(server: Server) -> None:
    probe_timeout = 0.3
    collector = _collector(
        [
            {"url": f"{server.url}/slow?seconds=2", "component": "slow"},
            {"url": f"{server.url}/health/pass", "component": "fast"},
        ],
        probe_timeout=probe_timeout,
    )
    start = time.perf_counter()
    samples = await _collect_once(collector)
    elapsed = time.perf_counter() - start
    slow = {"component": "slow", "type": "collector"}
    assert health_of(samples, "slow") == "fail"
    assert value(samples, "implmon_component_probe_http_status_code", **slow) == 0
    duration = value(samples, "implmon_component_probe_duration_seconds", **slow)
    assert probe_timeout <= duration < probe_timeout + 1.0
    assert elapsed < 1.5  # gave up at probe_timeout, did not wait 2 s for the server
    # One slow target does not fail the others.
    assert health_of(samples, "fast") == "pass"


async def test_connection_refused() -> None:
    port = free_port()  # nothing listens there
    samples = await _collect_once(
        _collector([{"url": f"http://127.0.0.1:{port}/health", "component": "gone"}])
    )
    labels = {"component": "gone", "type": "collector"}
    assert health_of(samples, "gone") == "fail"
    assert value(samples, "implmon_component_probe_success", **labels) == 0
    assert value(samples, "implmon_component_probe_http_status_code", **labels) == 0
    assert value(samples, "implmon_component_probes_total", **labels, result="failure") == 1
    assert info_version(samples, "gone") == ""


async def test_version_from_config_wins_over_the_body(server: Server) -> None:
    samples = await _collect_once(
        _collector(
            [
                {"url": f"{server.url}/health/pass", "component": "configured", "version": "1.0.0"},
                {"url": f"{server.url}/health/pass", "component": "reported"},
                {"url": f"{server.url}/health/release-id", "component": "release"},
                {"url": f"{server.url}/health/fail-503", "component": "failing"},
                {"url": f"{server.url}/health/text-200", "component": "plain"},
            ]
        )
    )
    assert info_version(samples, "configured") == "1.0.0"
    assert info_version(samples, "reported") == "2.0.0"
    assert info_version(samples, "release") == "r-77"
    assert info_version(samples, "failing") == "2.0.1"  # a failing body still tells its version
    assert info_version(samples, "plain") == ""


async def test_version_and_counters_survive_failed_probes(server: Server) -> None:
    server.state.update(status="pass", version="5.1")
    collector = _collector([{"url": f"{server.url}/switch", "component": "c"}])
    await collector.start()
    labels = {"component": "c", "type": "collector"}
    try:
        first = check_samples(list(await collector.collect()))
        assert (health_of(first, "c"), info_version(first, "c")) == ("pass", "5.1")
        server.state.update(status="warn", version="5.2")
        second = check_samples(list(await collector.collect()))
        assert (health_of(second, "c"), info_version(second, "c")) == ("warn", "5.2")
        # A failure whose body has no version keeps the last one known.
        server.state.update(status="fail", version="")
        third = check_samples(list(await collector.collect()))
        assert (health_of(third, "c"), info_version(third, "c")) == ("fail", "5.2")
        assert value(third, "implmon_component_probes_total", **labels, result="success") == 2
        assert value(third, "implmon_component_probes_total", **labels, result="failure") == 1
    finally:
        await collector.close()


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_concurrency_limit(server: Server, concurrency: int) -> None:
    targets = 8
    collector = _collector(
        [{"url": f"{server.url}/counted/{i}", "component": f"c{i}"} for i in range(targets)],
        concurrency=concurrency,
    )
    start = time.perf_counter()
    samples = await _collect_once(collector)
    elapsed = time.perf_counter() - start
    assert server.max_in_flight == concurrency
    assert all(health_of(samples, f"c{i}") == "pass" for i in range(targets))
    # Each request takes 0.2 s at the server: the batches ran one after another.
    assert elapsed >= 0.2 * -(-targets // concurrency) * 0.9


async def test_targets_run_concurrently_up_to_the_default(server: Server) -> None:
    targets = 8
    samples = await _collect_once(
        _collector(
            [{"url": f"{server.url}/counted/{i}", "component": f"c{i}"} for i in range(targets)]
        )
    )
    assert server.max_in_flight == targets  # default limit 16 is above 8
    assert len([s for s in samples if s.metric == "implmon_component_probe_success"]) == targets


async def test_bearer_token_from_value(server: Server) -> None:
    server.state["token"] = "tok-value"
    samples = await _collect_once(
        _collector(
            [{"url": f"{server.url}/auth", "component": "c", "headers": {"X-Probe": "implmon"}}],
            bearer_token={"value": "tok-value"},
        )
    )
    assert health_of(samples, "c") == "pass"
    assert server.seen_headers[-1]["Authorization"] == "Bearer tok-value"
    assert server.seen_headers[-1]["X-Probe"] == "implmon"


async def test_bearer_token_from_file_is_reread(server: Server, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    server.state["token"] = "first"
    collector = _collector(
        [{"url": f"{server.url}/auth", "component": "c"}], bearer_token={"file": str(token_file)}
    )
    await collector.start()
    try:
        assert health_of(list(await collector.collect()), "c") == "pass"
        server.state["token"] = "rotated"
        assert health_of(list(await collector.collect()), "c") == "fail"  # 401 with the old one
        token_file.write_text("rotated\n")
        assert health_of(list(await collector.collect()), "c") == "pass"
    finally:
        await collector.close()
    assert [h["Authorization"] for h in server.seen_headers] == [
        "Bearer first",
        "Bearer first",
        "Bearer rotated",
    ]


async def test_no_authorization_header_without_a_token(server: Server) -> None:
    server.state["token"] = "x"
    samples = await _collect_once(_collector([{"url": f"{server.url}/auth", "component": "c"}]))
    assert health_of(samples, "c") == "fail"
    assert (
        value(samples, "implmon_component_probe_http_status_code", component="c", type="collector")
        == 401
    )
    assert "Authorization" not in server.seen_headers[-1]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
async def test_https_target_and_insecure_skip_verify(tmp_path: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        cwd=tmp_path, check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    srv = Server("")
    runner = web.AppRunner(_app(srv), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ctx).start()
    target = {"url": f"https://127.0.0.1:{port}/health/pass", "component": "c"}
    try:
        # The self-signed certificate is not trusted: the probe fails before any HTTP.
        verified = await _collect_once(_collector([target]))
        assert health_of(verified, "c") == "fail"
        assert (
            value(
                verified,
                "implmon_component_probe_http_status_code",
                component="c",
                type="collector",
            )
            == 0
        )
        insecure = await _collect_once(_collector([target], tls_insecure_skip_verify=True))
        assert health_of(insecure, "c") == "pass"
        assert info_version(insecure, "c") == "2.0.0"
    finally:
        await runner.cleanup()


async def test_demo_agents_with_fault_injection() -> None:
    """The demo's simulated components, probed as the demo config probes them; statuses forced
    through their POST /-/fault endpoint."""
    base = free_port_block(len(DEMO_COMPONENTS))
    # A long flap period: the flapping component passes for the whole test unless forced.
    runners = await start_agents("127.0.0.1", base, flap_period=3600)
    forced = {"anomaly-analyzer": "warn", "report-generator": "fail"}
    try:
        async with aiohttp.ClientSession() as session:
            for i, c in enumerate(DEMO_COMPONENTS):
                if c.name in forced:
                    url = f"http://127.0.0.1:{base + i}/-/fault"
                    async with session.post(url, json={"status": forced[c.name]}) as resp:
                        assert resp.status == 200
        samples = await _collect_once(
            _collector([
                {"url": f"http://127.0.0.1:{base + i}/health", "component": c.name,
                 "type": c.type}
                for i, c in enumerate(DEMO_COMPONENTS)
            ])
        )  # fmt: skip
    finally:
        for runner in runners:
            await runner.cleanup()
    for c in DEMO_COMPONENTS:
        want = forced.get(c.name, "pass")
        assert health_of(samples, c.name) == want
        assert info_version(samples, c.name) == c.version  # from the health body
        labels = {"component": c.name, "type": c.type}
        assert value(samples, "implmon_component_probe_success", **labels) == float(want != "fail")
        code = 503 if want == "fail" else 200
        assert value(samples, "implmon_component_probe_http_status_code", **labels) == code


async def test_probe_timeout_fits_inside_the_collector_deadline() -> None:
    """A hanging target shows down within the run's deadline; the others stay fresh."""

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(2)  # far past the 0.5 s deadline; short so cleanup is quick
        return web.Response(text="late")

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"status": "pass"})

    app = web.Application()
    app.router.add_get("/hang", hang)
    app.router.add_get("/ok", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        probe = HttpProbeCollector(HttpProbeSettings(
            kind="http_probe", name="agents", probe_timeout=10,
            targets=[{"url": f"http://127.0.0.1:{port}/hang", "component": "stuck"},
                     {"url": f"http://127.0.0.1:{port}/ok", "component": "fine"}]))
        monitor = ImplementationMonitor(Pipeline(collectors=[probe],
                                                 timeouts={"agents": 0.5}), interval=1.0)
        snapshot = await monitor.run_cycle()
        assert snapshot.collectors["agents"][0] is True, snapshot.collectors["agents"]
        success = {s.labels["component"]: s.value for s in snapshot.samples
                   if s.metric == "implmon_component_probe_success"}
        assert success == {"stuck": 0.0, "fine": 1.0}
        await probe.close()
    finally:
        await runner.cleanup()
