"""A minimal Alertmanager webhook receiver, for tests, benchmarks and local demos.

It serves ``POST <anything>`` on its own thread and event loop (so synchronous test code can
wait on it) and records each notification with its arrival time. Point
``alerting/alertmanager.yml``'s receivers at it with
:func:`implmon.stack.alertmanager_config`\\ ``(receiver.url + "/alerts")``: the receiver name
is the last path segment, and in the payload.

>>> receiver = WebhookReceiver()
>>> url = receiver.start()
>>> import json, urllib.request
>>> body = json.dumps({"receiver": "page", "status": "firing", "alerts": []}).encode()
>>> _ = urllib.request.urlopen(urllib.request.Request(url + "/alerts/page", data=body))
>>> receiver.wait_for(lambda n: n.receiver == "page", timeout=5).status
'firing'
>>> receiver.stop()

Also here: the two substitutions the alerting tests and ``bench/alert_latency.py`` apply to the
repository's own files to make them fast (:func:`fast_rules`, :func:`fast_alertmanager_config`).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from implmon.stack import REPO, alertmanager_config

__all__ = ["Notification", "WebhookReceiver", "fast_alertmanager_config", "fast_rules"]


def fast_rules(target: Path, for_: str = "3s", source: Path | None = None) -> Path:
    """``rules/*.yml`` copied to ``target`` with every ``for: 1m`` shortened to ``for_``
    (nothing else changes); returns ``target``, for Prometheus's ``rule_files``."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted((source or REPO / "rules").glob("*.yml")):
        text = re.sub(r"(?m)^(\s+for:\s*)1m\s*$", rf"\g<1>{for_}", path.read_text())
        (target / path.name).write_text(text)
    return target


def fast_alertmanager_config(
    webhook_url: str, group_wait: str = "1s", group_interval: str = "1s"
) -> str:
    """``alerting/alertmanager.yml`` with its webhooks at ``webhook_url`` and every
    ``group_wait``/``group_interval`` replaced (nothing else changes)."""
    text = alertmanager_config(webhook_url)
    text = re.sub(r"(?m)^(\s+group_wait:\s*)\S+", rf"\g<1>{group_wait}", text)
    return re.sub(r"(?m)^(\s+group_interval:\s*)\S+", rf"\g<1>{group_interval}", text)


@dataclass(frozen=True, slots=True)
class Notification:
    """One webhook call: Alertmanager's payload (version 4) and when it arrived."""

    path: str
    payload: dict[str, Any]
    received_at: float

    @property
    def receiver(self) -> str:
        return str(self.payload.get("receiver", ""))

    @property
    def status(self) -> str:
        return str(self.payload.get("status", ""))

    @property
    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.payload.get("alerts", [])
        return alerts

    @property
    def group_labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.payload.get("groupLabels", {})
        return labels


class WebhookReceiver:
    """Records Alertmanager webhook notifications; ``start()`` returns its base URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._notifications: list[Notification] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def notifications(self) -> list[Notification]:
        with self._lock:
            return list(self._notifications)

    def start(self) -> str:
        ready = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._setup())
            except OSError as exc:
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._teardown())
            loop.close()

        self._thread = threading.Thread(target=serve, name="webhook receiver", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self.url

    async def _setup(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            server = site._server  # the bound port is known only after start
            assert server is not None
            sockets = getattr(server, "sockets", None) or []
            self.port = int(sockets[0].getsockname()[1])

    async def _teardown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        payload = await request.json()
        notification = Notification(request.path, payload, time.time())
        with self._arrived:
            self._notifications.append(notification)
            self._arrived.notify_all()
        return web.Response(status=200)

    def wait_for(
        self, predicate: Callable[[Notification], bool], timeout: float = 30.0
    ) -> Notification:
        """The first notification (already received or arriving within ``timeout``) that
        satisfies ``predicate``; AssertionError listing what did arrive otherwise."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._arrived:
            while True:
                for notification in self._notifications[seen:]:
                    if predicate(notification):
                        return notification
                seen = len(self._notifications)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    summary = [
                        (n.receiver, n.status, [a["labels"].get("alertname") for a in n.alerts])
                        for n in self._notifications
                    ]
                    raise AssertionError(
                        f"no matching notification within {timeout:g}s; received: {summary}"
                    )
                self._arrived.wait(remaining)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = None
        self._thread = None
