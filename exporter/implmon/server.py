"""The exporter's HTTP server: ``/metrics``, ``/-/healthy``, ``/-/ready``, ``/-/reload``.

One app factory, :func:`create_app`; the monitor loop is a ``cleanup_ctx`` background task, so
it starts with the app and stops (after its current cycle) on shutdown. ``/metrics`` serves the
exposition the last cycle rendered: a scrape costs the same however slow the collectors are.

>>> import tempfile, pathlib
>>> from implmon.config import Config
>>> store = pathlib.Path(tempfile.mkdtemp()) / "implmon.db"
>>> app = create_app(Runtime(Config(store_path=store)))
>>> sorted({r.resource.canonical for r in app.router.routes() if r.resource})[:4]
['/', '/-/healthy', '/-/ready', '/-/reload']
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Middleware

from implmon import ingest, report
from implmon.component import Collector
from implmon.exposition import choose_variant
from implmon.gcpolicy import CyclePolicy
from implmon.runtime import Runtime
from implmon.webconfig import WebConfig, basic_auth_middleware, headers_middleware, ssl_context

__all__ = ["RUNTIME", "create_app", "serve"]

log = logging.getLogger(__name__)

RUNTIME = web.AppKey("runtime", Runtime)
_STOP = web.AppKey("stop", asyncio.Event)


async def _metrics(request: web.Request) -> web.Response:
    exposition = request.app[RUNTIME].exposition
    openmetrics, use_gzip = choose_variant(
        request.headers.get("Accept", ""), request.headers.get("Accept-Encoding", "")
    )
    if not openmetrics and not exposition.text_ready:
        await asyncio.to_thread(exposition.render_text)
    body, content_type = exposition.variant(openmetrics, use_gzip)
    response = web.Response(body=body, headers={"Content-Type": content_type})
    if use_gzip:
        response.headers["Content-Encoding"] = "gzip"
    return response


async def _healthy(request: web.Request) -> web.Response:
    return web.Response(text="Healthy.\n")


async def _ready(request: web.Request) -> web.Response:
    """200 after the first complete cycle; the body lists every pipeline component's state."""
    monitor = request.app[RUNTIME].monitor
    components = {}
    snapshot = monitor.snapshot
    for c in monitor.pipeline.components():
        entry: dict[str, object] = {"role": c.role.value, "kind": c.kind}
        if isinstance(c, Collector) and snapshot is not None and c.name in snapshot.collectors:
            ok, duration, _, error = snapshot.collectors[c.name]
            entry.update(up=ok, duration_seconds=round(duration, 6), error=error)
        else:
            entry["up"] = monitor.component_ok.get(c.name, True)
        components[c.name] = entry
    body = {"ready": monitor.ready, "components": components}
    return web.json_response(body, status=200 if monitor.ready else 503)


async def _reload(request: web.Request) -> web.Response:
    problems = await request.app[RUNTIME].reload()
    if problems:
        return web.json_response({"status": "error", "errors": problems}, status=400)
    return web.json_response({"status": "success"})


async def _monitor_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    stop = app[_STOP]
    await runtime.start()
    task = asyncio.create_task(runtime.monitor.run(stop), name="implmon-monitor")
    yield
    stop.set()
    try:
        await asyncio.wait_for(task, timeout=10)
    except TimeoutError:
        log.warning("monitor did not stop within 10s; cancelling it")
    await runtime.close()


def _ingest_bearer(request: web.Request) -> bool:
    """An event POST with a bearer token, when a token is configured: the ingest handler
    checks it, so basic auth (meant for people and Prometheus) does not stand in front."""
    if request.path != "/api/v1/events" or request.method != "POST":
        return False
    if not request.headers.get("Authorization", "").lower().startswith("bearer "):
        return False
    return request.app[ingest.INGEST].token.get() is not None


def create_app(runtime: Runtime, web_config: WebConfig | None = None) -> web.Application:
    """The exporter's aiohttp application for ``runtime``."""
    web_config = web_config or WebConfig()
    middlewares: list[Middleware] = []
    if web_config.http_server_config.headers:
        middlewares.append(headers_middleware(web_config.http_server_config.headers))
    if web_config.basic_auth_users:
        middlewares.append(
            basic_auth_middleware(web_config.basic_auth_users, own_auth=_ingest_bearer)
        )
    app = web.Application(middlewares=middlewares)
    app[RUNTIME] = runtime
    app[_STOP] = asyncio.Event()
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/-/healthy", _healthy)
    app.router.add_get("/-/ready", _ready)
    app.router.add_post("/-/reload", _reload)
    app.router.add_put("/-/reload", _reload)
    app.cleanup_ctx.append(_monitor_ctx)
    # Event ingest (POST /api/v1/events) and the durable store behind the pipeline metrics;
    # the store opens before the monitor's first cycle and feeds it as a sample provider.
    events = ingest.setup_from_config(app, runtime.config, runtime.monitor.providers)
    # The status page at / and the JSON report (recent builds and deployments from the store);
    # the page refreshes once per monitor cycle, the interval of the config now running.
    report.setup_routes(
        app,
        lambda: runtime.monitor.snapshot,
        events=report.StoreEvents(events.store),
        refresh_seconds=lambda: max(5.0, runtime.config.interval),
    )
    return app


async def serve(
    runtime: Runtime, host: str, port: int, web_config: WebConfig | None = None
) -> None:
    """Serve until SIGTERM or SIGINT; SIGHUP reloads the config."""
    web_config = web_config or WebConfig()
    # Rendering and analysis run in worker threads; a short GIL switch interval (default 5 ms)
    # lets the event loop answer a scrape within a millisecond while they run.
    sys.setswitchinterval(0.0005)
    policy = CyclePolicy()
    runtime.monitor.before_cycle = policy.before_cycle
    runtime.monitor.after_cycle = policy.after_cycle
    app = create_app(runtime, web_config)
    app[ingest.INGEST].listen_host = host  # the ingest token is required unless loopback-only
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context(web_config))
    await site.start()
    log.info("listening on %s:%d", host, port)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    reloads: set[asyncio.Task[list[str]]] = set()

    def on_hup() -> None:
        task = asyncio.ensure_future(runtime.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    try:
        await stopping.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()
