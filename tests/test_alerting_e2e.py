"""Alerting end to end, all real: the demo agents, the exporter, Prometheus loading rules/,
Alertmanager with alerting/alertmanager.yml, and a webhook receiver inside the test.

Two paths from a component failure to a notification:

- rules: exporter metric -> Prometheus scrape -> rule ``ImplmonComponentDown`` -> Alertmanager;
- direct: exporter's health analyzer finding ``ImplmonComponentUnhealthy`` -> the exporter's
  alert stage -> Alertmanager.

The files are the repository's own with test timings substituted (and nothing else): every
``for: 1m`` in rules/ becomes ``for: 3s``; Alertmanager's ``group_wait``/``group_interval``
become 1s; scrapes, evaluations and monitor cycles are 1s; webhooks point at the receiver.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from implmon import webhook
from implmon.alerter import RUNBOOK_BASE
from implmon.stack import Stack, start_alertmanager, start_stack
from implmon.webhook import Notification, WebhookReceiver

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        shutil.which("prometheus") is None
        or (
            shutil.which("prometheus-alertmanager") is None and shutil.which("alertmanager") is None
        ),
        reason="prometheus / prometheus-alertmanager not installed (make system-deps)",
    ),
]

RULE_FOR = "3s"


def fast_rules(target: Path) -> Path:
    return webhook.fast_rules(target, for_=RULE_FOR)


def fast_alertmanager(webhook_url: str) -> str:
    return webhook.fast_alertmanager_config(webhook_url, group_wait="1s", group_interval="1s")


def post_alerts(stack: Stack, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{stack.alertmanager_url}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def am_alerts(stack: Stack) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{stack.alertmanager_url}/api/v2/alerts", timeout=5) as r:
        body: list[dict[str, Any]] = json.loads(r.read())
        return body


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, receiver: WebhookReceiver) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("alerting")
    with start_stack(
        workdir,
        alertmanager_yml=fast_alertmanager(receiver.url + "/alerts"),
        interval="1s",
        # A long flap period: no component fails unless a test makes it.
        flap_period=3600.0,
        failure_threshold=1,
        rules_dir=fast_rules(workdir / "rules"),
    ) as running:
        # demo_config labels the exporter's alerts with the environment, as Prometheus's
        # external labels do (prometheus_config sets environment=demo).
        exporter_config = (workdir / "implmon.yaml").read_text()
        assert "external_labels:\n    environment: demo\n" in exporter_config
        yield running


def alert_of(n: Notification, alertname: str, component: str, status: str) -> dict[str, Any] | None:
    for alert in n.alerts:
        labels = alert["labels"]
        if (labels.get("alertname"), labels.get("component"), alert["status"]) == (
            alertname,
            component,
            status,
        ):
            return alert
    return None


def test_rule_path_component_failure_notifies_grouped_then_resolves(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    failing = ("log-collector", "anomaly-analyzer")
    for name in failing:
        stack.fault(name, "fail")
    try:
        # Both components' alerts arrive in one notification of one group.
        firing = receiver.wait_for(
            lambda n: (
                n.receiver == "page"
                and all(alert_of(n, "ImplmonComponentDown", c, "firing") for c in failing)
            ),
            timeout=60,
        )
    finally:
        for name in failing:
            stack.fault(name, "auto")
    assert firing.group_labels == {
        "alertname": "ImplmonComponentDown",
        "monitoring_type": "component",
        "environment": "demo",
    }
    assert firing.status == "firing"
    alert = alert_of(firing, "ImplmonComponentDown", "anomaly-analyzer", "firing")
    assert alert is not None
    assert alert["labels"] == {
        "alertname": "ImplmonComponentDown",
        "severity": "critical",
        "monitoring_type": "component",
        "component": "anomaly-analyzer",
        "type": "analyzer",
        "job": "implmon",
        "instance": f"127.0.0.1:{stack.exporter_port}",
        "environment": "demo",
    }
    assert alert["annotations"]["summary"] == "Component anomaly-analyzer (analyzer) is down."
    assert alert["annotations"]["runbook_url"] == f"{RUNBOOK_BASE}#implmoncomponentdown"
    assert alert["generatorURL"].startswith(f"http://127.0.0.1:{stack.prometheus_port}/graph")

    for name in failing:
        resolved = receiver.wait_for(
            lambda n, c=name: (
                n.receiver == "page"
                and alert_of(n, "ImplmonComponentDown", c, "resolved") is not None
            ),
            timeout=60,
        )
        assert resolved.received_at > firing.received_at


def test_direct_path_analyzer_finding_notifies_then_resolves(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    name = "metrics-collector"
    stack.fault(name, "fail")
    try:
        firing = receiver.wait_for(
            lambda n: (
                n.receiver == "page"
                and alert_of(n, "ImplmonComponentUnhealthy", name, "firing") is not None
            ),
            timeout=30,
        )
    finally:
        stack.fault(name, "auto")
    assert firing.group_labels == {
        "alertname": "ImplmonComponentUnhealthy",
        "monitoring_type": "component",
        "environment": "demo",
    }
    alert = alert_of(firing, "ImplmonComponentUnhealthy", name, "firing")
    assert alert is not None
    # The label set the exporter's alert stage sends: alertname, severity, monitoring_type,
    # the finding's labels and the configured external labels; no job/instance (those come
    # from Prometheus's scrape, which this path does not use).
    assert alert["labels"] == {
        "alertname": "ImplmonComponentUnhealthy",
        "severity": "critical",
        "monitoring_type": "component",
        "component": name,
        "type": "collector",
        "environment": "demo",
    }
    assert alert["annotations"] == {
        "summary": f"Component {name} (collector) is down.",
        "description": f"{name} failed its last 1 health checks (threshold 1).",
        "runbook_url": f"{RUNBOOK_BASE}#implmoncomponentunhealthy",
    }
    assert alert["generatorURL"] == f"http://127.0.0.1:{stack.exporter_port}/"

    resolved = receiver.wait_for(
        lambda n: (
            n.receiver == "page"
            and alert_of(n, "ImplmonComponentUnhealthy", name, "resolved") is not None
        ),
        timeout=30,
    )
    resolved_alert = alert_of(resolved, "ImplmonComponentUnhealthy", name, "resolved")
    assert resolved_alert is not None
    assert resolved_alert["startsAt"] == alert["startsAt"]
    assert resolved_alert["labels"] == alert["labels"]


def _alert(alertname: str, **labels: str) -> dict[str, Any]:
    ends = datetime.now(UTC) + timedelta(minutes=5)
    return {
        "labels": {"alertname": alertname, **labels},
        "annotations": {"summary": f"{alertname} (inhibition test)"},
        "endsAt": ends.isoformat().replace("+00:00", "Z"),
    }


def test_inhibitions_in_the_running_alertmanager(stack: Stack, receiver: WebhookReceiver) -> None:
    """System down mutes component alerts of its environment; exporter down mutes the alerts
    computed from its metrics but not Watchdog; critical mutes warning of the same alert."""
    crit, warn = "critical", "warning"
    alerts = [
        _alert("ImplmonSystemDown", severity=crit, monitoring_type="system", environment="inh-a"),
        _alert(
            "ImplmonComponentDown",
            severity=crit,
            monitoring_type="component",
            component="x",
            environment="inh-a",
        ),
        _alert(
            "ImplmonComponentDown",
            severity=crit,
            monitoring_type="component",
            component="x",
            environment="inh-b",
        ),
        _alert(
            "ImplmonExporterDown",
            severity=crit,
            monitoring_type="system",
            job="implmon",
            instance="e:1",
            environment="inh-c",
        ),
        _alert(
            "ImplmonCollectorFailing",
            severity=warn,
            monitoring_type="system",
            job="implmon",
            instance="e:1",
            collector="reports",
            environment="inh-c",
        ),
        _alert("Watchdog", severity="none", monitoring_type="system", environment="inh-c"),
        _alert(
            "ImplmonHostFilesystemSpaceLow",
            severity=crit,
            monitoring_type="system",
            job="implmon",
            instance="e:1",
            mountpoint="/",
            environment="inh-d",
        ),
        _alert(
            "ImplmonHostFilesystemSpaceLow",
            severity=warn,
            monitoring_type="system",
            job="implmon",
            instance="e:1",
            mountpoint="/",
            environment="inh-d",
        ),
        _alert(
            "ImplmonHostFilesystemSpaceLow",
            severity=warn,
            monitoring_type="system",
            job="implmon",
            instance="e:1",
            mountpoint="/data",
            environment="inh-d",
        ),
    ]
    post_alerts(stack, alerts)
    expected = {
        ("ImplmonSystemDown", "inh-a", "critical", ""): "active",
        ("ImplmonComponentDown", "inh-a", "critical", ""): "suppressed",
        ("ImplmonComponentDown", "inh-b", "critical", ""): "active",
        ("ImplmonExporterDown", "inh-c", "critical", ""): "active",
        ("ImplmonCollectorFailing", "inh-c", "warning", ""): "suppressed",
        ("Watchdog", "inh-c", "none", ""): "active",
        ("ImplmonHostFilesystemSpaceLow", "inh-d", "critical", "/"): "active",
        ("ImplmonHostFilesystemSpaceLow", "inh-d", "warning", "/"): "suppressed",
        ("ImplmonHostFilesystemSpaceLow", "inh-d", "warning", "/data"): "active",
    }

    def states() -> dict[tuple[str, str, str, str], str]:
        out = {}
        for a in am_alerts(stack):
            labels = a["labels"]
            if labels.get("environment", "").startswith("inh-"):
                key = (
                    labels["alertname"],
                    labels["environment"],
                    labels["severity"],
                    labels.get("mountpoint", ""),
                )
                out[key] = a["status"]["state"]
        return out

    try:
        # Inhibition is marked as the alerts pass the notification pipeline (after group_wait).
        deadline = time.monotonic() + 20
        while states() != expected and time.monotonic() < deadline:
            time.sleep(0.2)
        assert states() == expected
        # What is muted is never notified; what is not arrives.
        receiver.wait_for(
            lambda n: (
                n.receiver == "page"
                and any(a["labels"].get("environment") == "inh-b" for a in n.alerts)
            ),
            timeout=10,
        )
        notified = [
            (a["labels"]["alertname"], a["labels"].get("environment"), a["labels"]["severity"])
            for n in receiver.notifications
            for a in n.alerts
        ]
        assert ("ImplmonComponentDown", "inh-a", "critical") not in notified
        assert ("ImplmonCollectorFailing", "inh-c", "warning") not in notified
    finally:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        post_alerts(stack, [{**a, "endsAt": now} for a in alerts])


def _exporter_metric(stack: Stack, name: str) -> float:
    url = f"http://127.0.0.1:{stack.exporter_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_findings_raised_while_alertmanager_is_down_arrive_when_it_is_back(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    name = "report-generator"
    index = next(i for i, p in enumerate(stack.processes) if p.name == "alertmanager")
    stack.processes[index].stop()
    try:
        errors_before = _exporter_metric(stack, "implmon_alerts_send_errors_total")
        stack.fault(name, "fail")
        # The exporter keeps trying (and counting) while Alertmanager is away.
        deadline = time.monotonic() + 20
        while _exporter_metric(stack, "implmon_alerts_send_errors_total") <= errors_before:
            assert time.monotonic() < deadline, "no failed delivery counted"
            time.sleep(0.5)
        assert _exporter_metric(stack, "implmon_alert_queue_length") >= 1
    finally:
        stack.processes[index] = start_alertmanager(
            stack.workdir,
            fast_alertmanager(receiver.url + "/alerts"),
            stack.alertmanager_port,
        )
    try:
        receiver.wait_for(
            lambda n: (
                n.receiver == "page"
                and alert_of(n, "ImplmonComponentUnhealthy", name, "firing") is not None
            ),
            timeout=30,
        )
    finally:
        stack.fault(name, "auto")
    assert _exporter_metric(stack, "implmon_alerts_dropped_total") == 0
