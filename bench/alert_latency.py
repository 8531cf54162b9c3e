"""Alert latency: from fault injection to webhook receipt, on both paths, in one run.

The real stack on loopback ports (demo agents, exporter, Prometheus loading rules/,
Alertmanager with alerting/alertmanager.yml, a webhook receiver in this process). Each
iteration forces one demo component's health to "fail" and timestamps the webhook
notifications that follow:

- rules path:  probe -> implmon_component_up=0 -> scrape -> rule ImplmonComponentDown
  (``for``) -> Prometheus -> Alertmanager (``group_wait``) -> webhook;
- direct path: probe -> health analyzer finding ImplmonComponentUnhealthy -> the exporter's
  alert stage -> Alertmanager (``group_wait``) -> webhook.

Then it restores the component and times the resolved notifications the same way, and waits
``--settle`` seconds: Alertmanager deletes emptied groups only in its 30 s maintenance, and an
alert joining a group that still exists goes out at that group's next ``group_interval`` tick
instead of after ``group_wait`` (sooner or later than it, by up to one group_interval).

The theoretical minimum of each path is what the configuration forces even if every loop
happened to tick the instant it was needed: ``for + group_wait`` (rules) and ``group_wait``
(direct). Waiting for the next tick adds at most one monitor cycle, one scrape and one
evaluation (rules) or one monitor cycle (direct): the "alignment" column. The goal is every
measured latency within minimum + 1 s. Resolution goes out at Alertmanager's next
``group_interval`` tick rather than after ``group_wait``.

Run:  .venv/bin/python bench/alert_latency.py [--iterations 5] [--interval 250ms] [--json out]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from implmon.demo import DEMO_COMPONENTS
from implmon.durations import parse_duration
from implmon.stack import start_stack
from implmon.webhook import Notification, WebhookReceiver, fast_alertmanager_config, fast_rules

RULE_ALERT = "ImplmonComponentDown"
DIRECT_ALERT = "ImplmonComponentUnhealthy"


@dataclass
class Settings:
    interval: float  # monitor cycle = scrape = evaluation interval
    rule_for: float
    group_wait: float
    group_interval: float

    @property
    def minimum(self) -> dict[str, float]:
        return {"rules": self.rule_for + self.group_wait, "direct": self.group_wait}

    @property
    def alignment(self) -> dict[str, float]:
        return {"rules": 3 * self.interval, "direct": self.interval}


def matcher(alertname: str, component: str, status: str) -> Callable[[Notification], bool]:
    def match(n: Notification) -> bool:
        return any(
            a["labels"].get("alertname") == alertname
            and a["labels"].get("component") == component
            and a["status"] == status
            for a in n.alerts
        )

    return match


def wait_until(url: str, check: Callable[[Any], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=5) as response:
            if check(json.loads(response.read())):
                return
        time.sleep(0.25)
    raise TimeoutError(f"{url}: condition not met within {timeout:g}s")


def measure(settings: Settings, iterations: int, workdir: Path, settle: float) -> dict[str, Any]:
    receiver = WebhookReceiver()
    receiver.start()
    interval = f"{int(settings.interval * 1000)}ms"
    results: dict[str, list[float]] = {
        "rules": [],
        "direct": [],
        "rules_resolved": [],
        "direct_resolved": [],
    }
    with contextlib.ExitStack() as running:
        running.callback(receiver.stop)
        stack = running.enter_context(
            start_stack(
                workdir,
                alertmanager_yml=fast_alertmanager_config(
                    receiver.url + "/alerts",
                    group_wait=f"{settings.group_wait:g}s",
                    group_interval=f"{settings.group_interval:g}s",
                ),
                interval=interval,
                flap_period=86400.0,
                failure_threshold=1,
                rules_dir=fast_rules(workdir / "rules", for_=f"{settings.rule_for:g}s"),
            )
        )
        # Warm-up: Prometheus discovers Alertmanagers a few seconds after start (alerts
        # raised before are not sent until their resend delay, 1m), and needs the exporter up.
        wait_until(
            f"{stack.prometheus_url}/api/v1/alertmanagers",
            lambda body: bool(body["data"]["activeAlertmanagers"]),
        )
        wait_until(
            f"{stack.prometheus_url}/api/v1/query?query=up%7Bjob%3D%22implmon%22%7D",
            lambda body: any(r["value"][1] == "1" for r in body["data"]["result"]),
        )
        time.sleep(2.0)
        components = [c.name for c in DEMO_COMPONENTS]
        for i in range(iterations):
            component = components[i % len(components)]
            injected = time.time()
            stack.fault(component, "fail")
            rule = receiver.wait_for(matcher(RULE_ALERT, component, "firing"), timeout=60)
            direct = receiver.wait_for(matcher(DIRECT_ALERT, component, "firing"), timeout=60)
            results["rules"].append(rule.received_at - injected)
            results["direct"].append(direct.received_at - injected)
            restored = time.time()
            stack.fault(component, "auto")
            rule = receiver.wait_for(matcher(RULE_ALERT, component, "resolved"), timeout=60)
            direct = receiver.wait_for(matcher(DIRECT_ALERT, component, "resolved"), timeout=60)
            results["rules_resolved"].append(rule.received_at - restored)
            results["direct_resolved"].append(direct.received_at - restored)
            print(
                f"  {i + 1}/{iterations} {component:18} rules {results['rules'][-1]:6.2f}s  "
                f"direct {results['direct'][-1]:6.2f}s  (resolved: rules "
                f"{results['rules_resolved'][-1]:5.2f}s, direct "
                f"{results['direct_resolved'][-1]:5.2f}s)",
                flush=True,
            )
            if i + 1 < iterations:
                time.sleep(settle)
    return results


def summarize(settings: Settings, results: dict[str, list[float]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"settings": vars(settings), "paths": {}}
    for path in ("rules", "direct"):
        values = results[path]
        minimum = settings.minimum[path]
        summary["paths"][path] = {
            "minimum_s": minimum,
            "alignment_max_s": settings.alignment[path],
            "goal_s": minimum + 1.0,
            "median_s": statistics.median(values),
            "max_s": max(values),
            "over_minimum_max_s": max(values) - minimum,
            "within_goal": max(values) <= minimum + 1.0,
            "resolved_median_s": statistics.median(results[f"{path}_resolved"]),
            "resolved_max_s": max(results[f"{path}_resolved"]),
            "samples_s": [round(v, 3) for v in values],
        }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument(
        "--interval",
        default="250ms",
        help="monitor cycle, scrape and evaluation interval (default 250ms)",
    )
    parser.add_argument(
        "--for",
        dest="rule_for",
        default="3s",
        help="the for: of ImplmonComponentDown for the run (default 3s)",
    )
    parser.add_argument("--group-wait", default="1s")
    parser.add_argument("--group-interval", default="1s")
    parser.add_argument(
        "--settle",
        type=float,
        default=35.0,
        help="seconds between faults, so Alertmanager has deleted the emptied "
        "groups (its maintenance runs every 30s) and group_wait applies to each "
        "fault as to a first alert (default 35)",
    )
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)
    settings = Settings(
        parse_duration(args.interval),
        parse_duration(args.rule_for),
        parse_duration(args.group_wait),
        parse_duration(args.group_interval),
    )
    print(
        f"alert latency: {args.iterations} faults; cycle/scrape/eval {args.interval}, "
        f"for {args.rule_for}, group_wait {args.group_wait}, "
        f"group_interval {args.group_interval}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="implmon-alert-latency-") as tmp:
        results = measure(settings, args.iterations, Path(tmp), args.settle)
    summary = summarize(settings, results)
    print()
    print(
        "| path | theoretical minimum | + alignment (max) | goal | median | max | "
        "resolved median | resolved max |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for path, row in summary["paths"].items():
        print(
            f"| {path} | {row['minimum_s']:.2f} s | {row['alignment_max_s']:.2f} s | "
            f"{row['goal_s']:.2f} s | {row['median_s']:.2f} s | {row['max_s']:.2f} s | "
            f"{row['resolved_median_s']:.2f} s | {row['resolved_max_s']:.2f} s |"
        )
    ok = all(row["within_goal"] for row in summary["paths"].values())
    print(f"\nevery firing notification within minimum + 1 s: {'yes' if ok else 'NO'}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
