"""The alert stage against a real Alertmanager (Debian's prometheus-alertmanager) on a free
loopback port, checked through Alertmanager's own ``GET /api/v2/alerts``."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from implmon.alerter import RUNBOOK_BASE, AlertSender
from implmon.component import Finding, MonitoringType, Severity
from implmon.config import AlertingConfig
from implmon.metrics import Sample
from implmon.stack import Process, alertmanager_config, free_port, start_alertmanager

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("prometheus-alertmanager") is None and shutil.which("alertmanager") is None,
        reason="prometheus-alertmanager not installed (make system-deps)",
    ),
]

# Nothing listens here: Alertmanager's own notifications go nowhere, which these tests ignore.
NOWHERE = "http://127.0.0.1:9/alerts"


class Alertmanager:
    """A real Alertmanager that can be stopped and started again on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = start_alertmanager(self.workdir, alertmanager_config(NOWHERE), self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    async def alerts(self) -> list[dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/api/v2/alerts") as response,
        ):
            assert response.status == 200
            body: list[dict[str, Any]] = await response.json()
            return body


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    am = Alertmanager(tmp_path / "am")
    am.start()
    try:
        yield am
    finally:
        am.stop()


@pytest.fixture
def alertmanager_b(tmp_path: Path) -> Iterator[Alertmanager]:
    am = Alertmanager(tmp_path / "am-b")
    am.start()
    try:
        yield am
    finally:
        am.stop()


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout:g}s")


def finding(name: str = "ImplmonTestFinding", **labels: str) -> Finding:
    return Finding(
        alertname=name,
        severity=Severity.WARNING,
        monitoring_type=MonitoringType.COMPONENT,
        summary=f"{name} summary",
        description=f"{name} description",
        labels=labels or {"component": "api"},
    )


def value(samples: list[Sample], metric: str, **labels: str) -> float:
    matches = [s.value for s in samples if s.metric == metric and dict(s.labels) == labels]
    assert len(matches) == 1, f"{metric}{labels}: {matches}"
    result = matches[0]
    assert isinstance(result, float)
    return result


def sender_for(*urls: str, **settings: Any) -> AlertSender:
    config = AlertingConfig(
        alertmanagers=[{"url": u, "timeout": "2s"} for u in urls],  # type: ignore[misc]
        resend_delay=settings.pop("resend_delay", 60.0),
        queue_capacity=settings.pop("queue_capacity", 100),
        external_url="http://exporter.test:9108",
    )
    return AlertSender(config, backoff_initial=0.1, backoff_max=0.4, **settings)


async def test_finding_is_delivered_with_its_labels_annotations_and_generator_url(
    alertmanager: Alertmanager,
) -> None:
    sender = sender_for(alertmanager.url)
    await sender.start()
    try:
        before = time.time()
        await sender.process([finding(component="api", environment="production")])
        await eventually(lambda: _has(alertmanager, 1), what="alert in Alertmanager")
        [alert] = await alertmanager.alerts()
        assert alert["labels"] == {
            "alertname": "ImplmonTestFinding",
            "severity": "warning",
            "monitoring_type": "component",
            "component": "api",
            "environment": "production",
        }
        assert alert["annotations"] == {
            "summary": "ImplmonTestFinding summary",
            "description": "ImplmonTestFinding description",
            "runbook_url": f"{RUNBOOK_BASE}#implmontestfinding",
        }
        assert alert["generatorURL"] == "http://exporter.test:9108/"
        assert alert["status"]["state"] == "active"
        starts = _ts(alert["startsAt"])
        assert before - 1 <= starts <= time.time() + 1
        # endsAt = send time + 4 x resend delay, as Prometheus's ValidUntil
        assert _ts(alert["endsAt"]) - starts == pytest.approx(240, abs=2)
        samples = sender.samples()
        assert value(samples, "implmon_alerts_sent_total", alertmanager=alertmanager.url) == 1
        assert value(samples, "implmon_alert_queue_length", alertmanager=alertmanager.url) == 0
        assert value(samples, "implmon_alertmanagers_discovered") == 1
    finally:
        await sender.close()


async def test_resend_keeps_starts_at_and_labels_then_resolution_clears_it(
    alertmanager: Alertmanager,
) -> None:
    sender = sender_for(alertmanager.url, resend_delay=0.3)
    await sender.start()
    try:
        await sender.process([finding()])
        await eventually(lambda: _has(alertmanager, 1), what="first send")
        [first] = await alertmanager.alerts()
        # Within the resend delay: nothing new is sent.
        await sender.process([finding()])
        await asyncio.sleep(0.4)
        assert (
            value(sender.samples(), "implmon_alerts_sent_total", alertmanager=alertmanager.url) == 1
        )
        # After it: re-sent, same alert (fingerprint), same startsAt, later endsAt.
        await sender.process([finding()])
        await eventually(lambda: _sent(sender, alertmanager.url, 2), what="resend counted")
        [second] = await alertmanager.alerts()
        assert second["fingerprint"] == first["fingerprint"]
        assert second["labels"] == first["labels"]
        assert second["startsAt"] == first["startsAt"]
        assert _ts(second["endsAt"]) > _ts(first["endsAt"])
        # The finding disappears: sent once with endsAt = now, Alertmanager resolves it.
        await sender.process([])
        await eventually(lambda: _has(alertmanager, 0), what="alert resolved")
        assert sender.active_alerts == 0
        assert (
            value(sender.samples(), "implmon_alerts_sent_total", alertmanager=alertmanager.url) == 3
        )
        # Resolved alerts are not sent again.
        await sender.process([])
        await asyncio.sleep(0.3)
        assert (
            value(sender.samples(), "implmon_alerts_sent_total", alertmanager=alertmanager.url) == 3
        )
    finally:
        await sender.close()


async def test_severity_change_resolves_the_old_label_set(alertmanager: Alertmanager) -> None:
    sender = sender_for(alertmanager.url)
    await sender.start()
    try:
        await sender.process([finding()])
        await eventually(lambda: _has(alertmanager, 1), what="warning sent")
        critical = Finding(
            "ImplmonTestFinding",
            Severity.CRITICAL,
            MonitoringType.COMPONENT,
            "s",
            "d",
            {"component": "api"},
        )
        await sender.process([critical])

        async def only_critical() -> bool:
            alerts = await alertmanager.alerts()
            return [a["labels"]["severity"] for a in alerts] == ["critical"]

        await eventually(only_critical, what="only the critical alert left")
    finally:
        await sender.close()


async def test_ha_pair_gets_every_alert(
    alertmanager: Alertmanager, alertmanager_b: Alertmanager
) -> None:
    sender = sender_for(alertmanager.url, alertmanager_b.url)
    await sender.start()
    try:
        await sender.process([finding(component="a"), finding(component="b")])
        await eventually(lambda: _has(alertmanager, 2), what="two alerts in the first")
        await eventually(lambda: _has(alertmanager_b, 2), what="two alerts in the second")
        for am in (alertmanager, alertmanager_b):
            components = sorted(a["labels"]["component"] for a in await am.alerts())
            assert components == ["a", "b"]
        samples = sender.samples()
        assert value(samples, "implmon_alertmanagers_discovered") == 2
        for url in (alertmanager.url, alertmanager_b.url):
            assert value(samples, "implmon_alerts_sent_total", alertmanager=url) == 2
    finally:
        await sender.close()


async def test_findings_raised_while_alertmanager_is_down_arrive_when_it_is_back(
    alertmanager: Alertmanager, caplog: pytest.LogCaptureFixture
) -> None:
    sender = sender_for(alertmanager.url)
    await sender.start()
    try:
        await sender.process([finding(component="before")])
        await eventually(lambda: _has(alertmanager, 1), what="first alert")
        alertmanager.stop()
        caplog.set_level(logging.WARNING, logger="implmon.alerter")
        # Meanwhile one finding resolves and another is raised: both must get through later.
        await sender.process([finding(component="during")])
        await eventually(
            lambda: _errors(sender, alertmanager.url, 2), what="failed attempts counted"
        )
        samples = sender.samples()
        assert value(samples, "implmon_alert_queue_length", alertmanager=alertmanager.url) == 2
        assert any("will retry with backoff" in r.getMessage() for r in caplog.records)
        # The monitor loop is never blocked: process() returns at once while it is down.
        started = time.monotonic()
        await sender.process([finding(component="during")])
        assert time.monotonic() - started < 0.05

        await asyncio.to_thread(alertmanager.start)  # a fresh Alertmanager: empty state

        async def only_during() -> bool:
            alerts = await alertmanager.alerts()
            return [a["labels"]["component"] for a in alerts] == ["during"]

        await eventually(only_during, timeout=15, what="the finding raised meanwhile")
        samples = sender.samples()
        assert value(samples, "implmon_alert_queue_length", alertmanager=alertmanager.url) == 0
        assert (
            value(
                samples,
                "implmon_alerts_dropped_total",
                alertmanager=alertmanager.url,
                reason="queue_full",
            )
            == 0
        )
    finally:
        await sender.close()


async def test_queue_overflow_is_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    sender = sender_for(unreachable, queue_capacity=2)
    caplog.set_level(logging.WARNING, logger="implmon.alerter")
    # Not started: nothing drains the queue, so the overflow is exact.
    await sender.process([finding(component=str(i)) for i in range(5)])
    samples = sender.samples()
    assert value(samples, "implmon_alert_queue_length", alertmanager=unreachable) == 2
    assert value(samples, "implmon_alert_queue_capacity", alertmanager=unreachable) == 2
    assert (
        value(
            samples, "implmon_alerts_dropped_total", alertmanager=unreachable, reason="queue_full"
        )
        == 3
    )
    messages = [r.getMessage() for r in caplog.records]
    assert any("dropped 3 oldest" in m and unreachable in m for m in messages), messages
    # A resend of a queued alert replaces it instead of taking another slot.
    await sender.process([finding(component=str(i)) for i in range(5)])
    assert (
        value(
            sender.samples(),
            "implmon_alerts_dropped_total",
            alertmanager=unreachable,
            reason="queue_full",
        )
        == 3
    )


async def test_alertmanager_rejection_is_counted_not_retried(alertmanager: Alertmanager) -> None:
    sender = sender_for(alertmanager.url)
    await sender.start()
    try:
        # An invalid label name: Alertmanager answers 400 and would forever.
        await sender.process([finding(**{"bad-label": "x"})])
        await eventually(
            lambda: _dropped(sender, alertmanager.url, "rejected", 1), what="rejection counted"
        )
        await asyncio.sleep(0.5)
        samples = sender.samples()
        assert (
            value(samples, "implmon_alerts_send_errors_total", alertmanager=alertmanager.url) == 1
        )
        assert value(samples, "implmon_alert_queue_length", alertmanager=alertmanager.url) == 0
        assert await alertmanager.alerts() == []
    finally:
        await sender.close()


async def test_bearer_token_is_sent_from_its_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    seen: list[str] = []

    async def receive(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/api/v2/alerts", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    config = AlertingConfig.model_validate(
        {
            "alertmanagers": [
                {"url": f"http://127.0.0.1:{port}", "bearer_token": {"file": token_file}}
            ]
        }
    )
    sender = AlertSender(config)
    await sender.start()
    try:
        await sender.process([finding()])

        async def received() -> bool:
            return bool(seen)

        await eventually(received, what="request received")
        assert seen == ["Bearer s3cret"]
    finally:
        await sender.close()
        await runner.cleanup()


# --- helpers ------------------------------------------------------------------------------


async def _has(am: Alertmanager, count: int) -> bool:
    return len(await am.alerts()) == count


async def _sent(sender: AlertSender, url: str, count: int) -> bool:
    return value(sender.samples(), "implmon_alerts_sent_total", alertmanager=url) >= count


async def _errors(sender: AlertSender, url: str, count: int) -> bool:
    return value(sender.samples(), "implmon_alerts_send_errors_total", alertmanager=url) >= count


async def _dropped(sender: AlertSender, url: str, reason: str, count: int) -> bool:
    samples = sender.samples()
    return value(samples, "implmon_alerts_dropped_total", alertmanager=url, reason=reason) >= count


def _ts(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_reconfigure_adds_and_removes_alertmanagers_keeping_active_alerts(
    alertmanager: Alertmanager, alertmanager_b: Alertmanager
) -> None:
    from implmon.config import Config

    def config(*urls: str) -> Config:
        return Config(
            interval=1.0,
            alerting=AlertingConfig(alertmanagers=[{"url": u} for u in urls]),  # type: ignore[misc]
        )

    sender = AlertSender.from_config(config(alertmanager.url))
    await sender.start()
    try:
        await sender.process([finding()])
        await eventually(lambda: _has(alertmanager, 1), what="alert in the first")
        [before] = await alertmanager.alerts()

        await sender.reconfigure(config(alertmanager.url, alertmanager_b.url))
        # The next cycle: the already-firing alert reaches the new Alertmanager at once,
        # with its original startsAt.
        await sender.process([finding()])
        await eventually(lambda: _has(alertmanager_b, 1), what="alert in the added one")
        [added] = await alertmanager_b.alerts()
        assert added["startsAt"] == before["startsAt"]
        assert (
            value(sender.samples(), "implmon_alerts_sent_total", alertmanager=alertmanager.url) == 2
        )

        await sender.reconfigure(config(alertmanager_b.url))
        samples = sender.samples()
        assert value(samples, "implmon_alertmanagers_discovered") == 1
        assert {dict(s.labels).get("alertmanager") for s in samples} == {None, alertmanager_b.url}
        # Resolution now goes to the remaining one only.
        await sender.process([])
        await eventually(lambda: _has(alertmanager_b, 0), what="resolved in the remaining one")
        assert await _has(alertmanager, 1)
    finally:
        await sender.close()


async def test_a_late_delivery_is_still_active(alertmanager: Alertmanager) -> None:
    """endsAt is computed when a notification is sent, not when it was queued: an alert
    delivered after an outage longer than its validity must not arrive already expired."""
    sender = sender_for(alertmanager.url, resend_delay=0.5)  # valid for 4 x 0.5 s = 2 s
    await sender.start()
    try:
        alertmanager.stop()
        await sender.process([finding(component="late")])
        await asyncio.sleep(2.5)  # longer than the validity, while nothing can be delivered
        assert (
            value(sender.samples(), "implmon_alert_queue_length", alertmanager=alertmanager.url)
            == 1
        )
        await asyncio.to_thread(alertmanager.start)
        await eventually(lambda: _has(alertmanager, 1), timeout=15, what="late alert delivered")
        [alert] = await alertmanager.alerts()
        assert alert["status"]["state"] == "active"
        assert _ts(alert["endsAt"]) > time.time()
    finally:
        await sender.close()


def test_label_precedence_external_then_finding_then_reserved() -> None:
    config = AlertingConfig(external_labels={"environment": "prod", "team": "platform"})
    sender = AlertSender(config)
    labels = dict(sender.labels_of(finding(team="agents", severity="ignored", component="api")))
    assert labels == {
        "alertname": "ImplmonTestFinding",
        "severity": "warning",  # the finding's severity, not a label claiming otherwise
        "monitoring_type": "component",
        "environment": "prod",  # external label
        "team": "agents",  # the finding's own label wins over the external one
        "component": "api",
    }
