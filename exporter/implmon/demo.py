"""A small simulated agent framework to monitor: the demo's and the tests' workload.

Five components of the seed's four types, each an HTTP server on its own port with an IETF
health-check endpoint (``GET /health``). ``event-processor`` flaps: it fails for
``flap_period`` seconds, then passes for as long, and so on. Any component's health can be
forced for fault injection with ``POST /-/fault`` and a JSON body ``{"status": "fail"}``
(``pass``, ``warn``, ``fail``, or ``auto`` to return to its normal behaviour).

>>> [c.name for c in DEMO_COMPONENTS][:2]
['log-collector', 'metrics-collector']
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

__all__ = [
    "DEMO_COMPONENTS",
    "DemoComponent",
    "demo_config",
    "format_notification",
    "run_agents",
    "run_webhook_printer",
    "start_agents",
]


@dataclass(frozen=True, slots=True)
class DemoComponent:
    name: str
    type: str
    version: str
    flapping: bool = False


DEMO_COMPONENTS = (
    DemoComponent("log-collector", "collector", "1.4.2"),
    DemoComponent("metrics-collector", "collector", "1.4.2"),
    DemoComponent("anomaly-analyzer", "analyzer", "2.0.1"),
    DemoComponent("event-processor", "processor", "0.9.3", flapping=True),
    DemoComponent("report-generator", "reporter", "1.1.0"),
)

_FORCED = web.AppKey("forced", dict)


def _component_app(component: DemoComponent, flap_period: float) -> web.Application:
    app = web.Application()
    app[_FORCED] = {}
    started = time.monotonic()

    def status() -> str:
        forced: str | None = app[_FORCED].get("status")
        if forced is not None:
            return forced
        if component.flapping and int((time.monotonic() - started) / flap_period) % 2 == 1:
            return "fail"
        return "pass"

    async def health(request: web.Request) -> web.Response:
        current = status()
        body = {
            "status": current,
            "version": component.version,
            "serviceId": component.name,
            "description": f"demo {component.type} component",
            "checks": {
                "uptime": [
                    {
                        "componentType": "system",
                        "observedValue": round(time.monotonic() - started, 1),
                        "observedUnit": "s",
                        "status": "pass",
                    }
                ]
            },
        }
        return web.Response(
            text=json.dumps(body),
            status=503 if current == "fail" else 200,
            content_type="application/health+json",
        )

    async def fault(request: web.Request) -> web.Response:
        try:
            wanted = (await request.json())["status"]
        except (ValueError, KeyError, TypeError):
            return web.json_response(
                {"error": 'body must be {"status": "pass|warn|fail|auto"}'}, status=400
            )
        if wanted not in ("pass", "warn", "fail", "auto"):
            return web.json_response({"error": f"status: unknown value {wanted!r}"}, status=400)
        if wanted == "auto":
            app[_FORCED].pop("status", None)
        else:
            app[_FORCED]["status"] = wanted
        return web.json_response({"component": component.name, "status": status()})

    app.router.add_get("/health", health)
    app.router.add_post("/-/fault", fault)
    return app


async def start_agents(
    host: str,
    base_port: int,
    flap_period: float = 20.0,
    components: tuple[DemoComponent, ...] = DEMO_COMPONENTS,
) -> list[web.AppRunner]:
    """Start every component (component i on ``base_port + i``); returns their runners."""
    runners = []
    for i, component in enumerate(components):
        runner = web.AppRunner(_component_app(component, flap_period), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, base_port + i).start()
        runners.append(runner)
    return runners


async def run_agents(host: str, base_port: int, flap_period: float = 20.0) -> None:
    """Serve the demo components until cancelled (Ctrl-C)."""
    runners = await start_agents(host, base_port, flap_period)
    for i, c in enumerate(DEMO_COMPONENTS):
        print(f"{c.name:18} {c.type:10} http://{host}:{base_port + i}/health", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for runner in runners:
            await runner.cleanup()


def format_notification(message: object) -> list[str]:
    """One line per alert of an Alertmanager webhook message, for a console.

    >>> format_notification({"alerts": [{"status": "firing", "labels": {
    ...     "alertname": "ImplmonComponentDown", "severity": "critical",
    ...     "component": "log-collector"}, "annotations": {"summary": "down"}}]})
    ['[webhook] firing   ImplmonComponentDown severity=critical log-collector - down']
    """
    if not isinstance(message, dict):
        return []
    lines = []
    for alert in message.get("alerts", []):
        labels = alert.get("labels", {})
        where = labels.get("component") or labels.get("instance", "")
        summary = alert.get("annotations", {}).get("summary", "")
        lines.append(
            f"[webhook] {alert.get('status', '?'):8} {labels.get('alertname', '?')} "
            f"severity={labels.get('severity', '')} {where} - {summary}"
        )
    return lines


async def run_webhook_printer(host: str, port: int) -> None:
    """Print every notification POSTed to any path (Alertmanager's webhook receivers) until
    cancelled; ``GET /-/healthy`` answers for healthchecks."""

    async def receive(request: web.Request) -> web.Response:
        try:
            message = await request.json()
        except ValueError:
            return web.json_response({"error": "body must be JSON"}, status=400)
        for line in format_notification(message):
            print(line, flush=True)
        return web.json_response({"status": "ok"})

    async def healthy(request: web.Request) -> web.Response:
        return web.Response(text="Healthy.\n")

    app = web.Application()
    app.router.add_get("/-/healthy", healthy)
    app.router.add_post("/{path:.*}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"printing Alertmanager notifications sent to http://{host}:{port}/", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def demo_config(
    host: str,
    base_port: int,
    *,
    interval: str = "5s",
    store_path: Path | str = "implmon.db",
    alertmanager_url: str | None = None,
    failure_threshold: int = 2,
    environment: str = "demo",
) -> str:
    """The exporter config (YAML text) that monitors the demo components."""
    targets = "\n".join(
        f"          - url: http://{host}:{base_port + i}/health\n"
        f"            component: {c.name}\n"
        f"            type: {c.type}\n"
        f"            version: {c.version}"
        for i, c in enumerate(DEMO_COMPONENTS)
    )
    # The exporter's own alerts carry the environment as Prometheus's do (its external label),
    # so both group and inhibit alike in Alertmanager.
    alerting = (
        f"alerting:\n  alertmanagers:\n    - url: {alertmanager_url}\n"
        f"  external_labels:\n    environment: {environment}\n"
        if alertmanager_url
        else ""
    )
    return f"""# Generated by implmon.demo.demo_config: the demo agent framework.
interval: {interval}
store_path: {store_path}
{alerting}collectors:
  - kind: http_probe
    name: agents
    probe_timeout: 2s
    targets:
{targets}
  - kind: system
    name: host
analyzers:
  - kind: health
    name: health
    failure_threshold: {failure_threshold}
reporters:
  - kind: prometheus
    name: prometheus
"""
