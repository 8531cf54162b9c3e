"""Every metric name the rules and dashboards use exists, and every family is shown somewhere.

A name in ``rules/*.yml`` or ``dashboards/*.json`` must be one of:
- a series the real exporter exposes (scraped from the stack of ``full_stack.py``, which runs
  every collector and analyzer kind and is fed reports, events and alerts);
- a recording rule defined in ``rules/``;
- a series Prometheus makes itself (``up``, ``scrape_*``, ``ALERTS``);
- a metric of another component of the stack, by prefix (``prometheus_*``: Prometheus's own
  ``/metrics``, which it scrapes as job ``prometheus``), checked live against that Prometheus.

The static checks read the catalogue (``implmon.metrics.CATALOGUE``, with a histogram's
``_bucket``/``_sum``/``_count``); the live check reads the real ``/metrics`` output, so a family
that is catalogued but never emitted fails too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import implmon.components  # noqa: F401 - component kinds may define families of their own
import pytest
import yaml
from implmon.dashboards.lint import expressions, metric_names
from implmon.metrics import CATALOGUE, MetricType

if TYPE_CHECKING:  # imported by pytest as a plugin (below), not here: no double import
    from full_stack import FullStack

pytest_plugins = ["full_stack"]

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_BUILTINS = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)
# Metrics of the stack's other components that rules may use, and where they come from.
OTHER_EXPOSITIONS = {"prometheus_": "Prometheus's own /metrics (scrape job prometheus)"}
# Families no dashboard shows, each for a reason.
NOT_ON_DASHBOARDS = {
    # The dashboards show the age (implmon_quality_report_age_seconds), the same figure.
    "implmon_quality_report_timestamp_seconds": "shown as report age",
}


def rules() -> list[tuple[str, dict[str, str]]]:
    found = []
    for path in sorted((ROOT / "rules").glob("*.yml")):
        for group in (yaml.safe_load(path.read_text(encoding="utf-8")) or {})["groups"]:
            found += [(f"{path.name}:{group['name']}", rule) for rule in group["rules"]]
    return found


def recording_rules() -> set[str]:
    return {rule["record"] for _, rule in rules() if "record" in rule}


def used_names() -> dict[str, set[str]]:
    """Metric name -> where it is used (rule file and group, or dashboard and panel)."""
    used: dict[str, set[str]] = {}
    for where, rule in rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(where)
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        model = json.loads(path.read_text(encoding="utf-8"))
        queries = list(expressions(model))
        for variable in model["templating"]["list"]:
            match = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable.get("definition", ""))
            if match:
                queries.append((f"variable ${variable['name']}", match.group(1)))
        for where, expr in queries:
            for name in metric_names(expr):
                used.setdefault(name, set()).add(f"{path.name}: {where}")
    return used


def catalogue_series() -> set[str]:
    names: set[str] = set()
    for spec in CATALOGUE.values():
        if spec.type is MetricType.HISTOGRAM:
            names |= {f"{spec.name}_bucket", f"{spec.name}_sum", f"{spec.name}_count"}
        else:
            names.add(spec.name)
    return names


def exposed_series(text: str) -> set[str]:
    """Series names in a Prometheus text exposition."""
    return {
        re.split(r"[{\s]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_the_name_extraction_reads_rules_and_dashboards() -> None:
    used = used_names()
    # Spot checks that the extraction is not vacuous: names from a rule, a recording rule's
    # input, a dashboard histogram and a dashboard variable.
    assert "implmon_component_up" in used
    assert "implmon_deployment_lead_time_seconds_bucket" in used
    assert any("variable $component" in where for where in used["implmon_component_up"])
    assert any(".yml:" in where for where in used["implmon_component_up"])
    assert len(used) > 50


def test_every_name_is_catalogued_recorded_or_builtin() -> None:
    known = catalogue_series() | recording_rules() | PROMETHEUS_BUILTINS
    unknown = {
        name: sorted(where)
        for name, where in used_names().items()
        if name not in known and not name.startswith(tuple(OTHER_EXPOSITIONS))
    }
    assert unknown == {}


def test_every_recording_rule_used_is_defined() -> None:
    recorded = recording_rules()
    used = {name for name in used_names() if ":" in name}
    assert used <= recorded, sorted(used - recorded)


def test_every_family_is_on_a_dashboard() -> None:
    """New families (from any area) must get a panel, or a reason here why not."""
    shown: set[str] = set()
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        model = json.loads(path.read_text(encoding="utf-8"))
        for _, expr in expressions(model):
            shown |= metric_names(expr)
    missing = []
    for spec in CATALOGUE.values():
        series = (
            {f"{spec.name}_bucket", f"{spec.name}_sum", f"{spec.name}_count"}
            if spec.type is MetricType.HISTOGRAM
            else {spec.name}
        )
        if not series & shown and spec.name not in NOT_ON_DASHBOARDS:
            missing.append(spec.name)
    assert missing == []


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_every_name_exists_in_the_real_exposition(full_stack_session: FullStack) -> None:
    exposed = exposed_series(full_stack_session.metrics_text())
    assert "implmon_component_up" in exposed  # the scrape is real and not empty
    recorded = recording_rules()
    missing = {}
    for name, where in used_names().items():
        if name in recorded or name in PROMETHEUS_BUILTINS:
            continue
        if name.startswith(tuple(OTHER_EXPOSITIONS)):
            continue  # checked against the real Prometheus below
        if name not in exposed:
            missing[name] = sorted(where)
    assert missing == {}


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_builtins_recording_rules_and_prometheus_metrics_exist_in_the_real_prometheus(
    full_stack_session: FullStack,
) -> None:
    used = set(used_names())
    names = set(full_stack_session.label_values("__name__", '{__name__=~".+"}'))
    others = {name for name in used if name.startswith(tuple(OTHER_EXPOSITIONS))}
    for name in sorted(used & (PROMETHEUS_BUILTINS | recording_rules() | others)):
        assert name in names, f"{name} is used but Prometheus has no such series"
