"""`implmon run` as a process: SIGHUP reloads (a bad file is refused, the old config kept),
SIGTERM shuts down cleanly, and an invalid config refuses to start."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import http_text
from implmon.stack import free_port, start_exporter

CONFIG = "interval: 500ms\ncollectors:\n  - {kind: system, name: host}\n"


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in exposition")


def wait_metric(url: str, name: str, want: float, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metric(http_text(url), name) == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} never became {want}")


def test_sighup_reload_and_sigterm_shutdown(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    proc = start_exporter(tmp_path, CONFIG, port)
    try:
        config = tmp_path / "implmon.yaml"
        config.write_text(CONFIG + "  - {kind: sytem, name: host2}\n")
        proc.signal(signal.SIGHUP)
        wait_metric(url, "implmon_config_last_reload_successful", 0.0)
        assert "collectors[1].kind: unknown collector kind 'sytem'" in proc.tail()

        config.write_text(CONFIG.replace("500ms", "1s"))
        proc.signal(signal.SIGHUP)
        wait_metric(url, "implmon_config_last_reload_successful", 1.0)
        wait_metric(url, "implmon_monitor_interval_seconds", 1.0)

        proc.signal(signal.SIGTERM)
        started = time.monotonic()
        assert proc.popen.wait(10) == 0
        assert time.monotonic() - started < 5
        assert "shutting down" in proc.tail()
    finally:
        proc.stop()


def test_invalid_config_refuses_to_start(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("interval: 0s\ncollectors:\n  - {kind: system, name: host, bogus: 1}\n")
    result = subprocess.run(
        [sys.executable, "-m", "implmon.cli", "run", "--config", str(config),
         "--web.listen-address", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "implmon run: invalid configuration, not starting:",
        f"{config}:1: interval: must be > 0",
        f"{config}:3: collectors[0].bogus: unknown key",
    ]


def test_demo_webhook_prints_notifications(tmp_path: Path) -> None:
    """`implmon demo webhook` (the compose stack's webhook-logger) prints what it receives."""
    import json
    import urllib.request

    from implmon.stack import Process, implmon_argv, wait_http

    port = free_port()
    proc = Process("webhook", implmon_argv("demo", "webhook", "--listen", f"127.0.0.1:{port}"),
                   tmp_path / "webhook.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/-/healthy", proc=proc)
        message = {"status": "firing", "alerts": [{"status": "firing", "labels": {
            "alertname": "ImplmonComponentDown", "severity": "critical",
            "component": "log-collector"}, "annotations": {"summary": "log-collector is down"}}]}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/alerts/page",
                                         data=json.dumps(message).encode(), method="POST")
        urllib.request.urlopen(request, timeout=5).close()
        deadline = time.monotonic() + 5
        expected = ("[webhook] firing   ImplmonComponentDown severity=critical log-collector"
                    " - log-collector is down")
        while expected not in proc.tail() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert expected in proc.tail()
    finally:
        proc.stop()
