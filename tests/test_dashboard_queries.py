"""Every panel's query, run against a real Prometheus that scraped the real exporter.

Grafana cannot run here, so this does what Grafana would: substitutes the template variables
(each query variable's "All" value, ``$__rate_interval`` -> ``1m``, ``$__range`` -> ``1h``) and
runs each target as Grafana would (an instant query for stat, gauge, bar gauge and table panels,
a range query over the last five minutes otherwise) against the stack of ``full_stack.py``:
demo agents, the exporter with report collectors and analyzers, pipeline events posted to its
ingest API, a real Alertmanager, and Prometheus with ``rules/`` loaded.

A query that errors or returns no series fails, naming its dashboard and panel. No panel is
exempt: every figure the dashboards show is fed by the stack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from implmon.dashboards.lint import panels

if TYPE_CHECKING:  # imported by pytest as a plugin (below), not here: no double import
    from full_stack import FullStack

pytest_plugins = ["full_stack"]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parent.parent
MODELS = {
    path.stem: json.loads(path.read_text(encoding="utf-8"))
    for path in sorted((ROOT / "dashboards").glob("*.json"))
}
GRAFANA_VALUES = {"__rate_interval": "1m", "__range": "1h", "__interval": "15s"}
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def substitute(expr: str, model: dict[str, Any]) -> str:
    """``expr`` with Grafana's built-ins and the dashboard's variables (at "All") filled in."""
    values = dict(GRAFANA_VALUES)
    for variable in model["templating"]["list"]:
        if variable["type"] == "query":
            values[variable["name"]] = variable["allValue"]

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"no value for ${name} in {expr!r}"
        return values[name]

    return _VARIABLE.sub(replace, expr)


def targets() -> Iterator[Any]:
    for name, model in MODELS.items():
        for panel in panels(model):
            for target in panel.get("targets", []):
                yield pytest.param(
                    name, panel, target, id=f"{name}:{panel['title']}:{target['refId']}"
                )


def annotations() -> Iterator[Any]:
    for name, model in MODELS.items():
        for annotation in model["annotations"]["list"]:
            if "expr" in annotation:
                yield pytest.param(name, annotation, id=f"{name}:{annotation['name']}")


def variables() -> Iterator[Any]:
    for name, model in MODELS.items():
        for variable in model["templating"]["list"]:
            if variable["type"] == "query":
                yield pytest.param(name, variable, id=f"{name}:${variable['name']}")


@pytest.fixture
def stack(full_stack_session: FullStack) -> FullStack:
    return full_stack_session


def run(stack: FullStack, expr: str, instant: bool) -> dict[str, Any]:
    return stack.query(expr) if instant else stack.query_range(expr, seconds=300, step=5)


@pytest.mark.parametrize(("dashboard", "panel", "target"), list(targets()))
def test_panel_query_returns_data(
    stack: FullStack, dashboard: str, panel: dict[str, Any], target: dict[str, Any]
) -> None:
    expr = substitute(target["expr"], MODELS[dashboard])
    answer = run(stack, expr, target["instant"])
    assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
    result = answer["data"]["result"]
    assert result, f"{dashboard} / {panel['title']}: {expr} returned nothing"
    # A series of nothing but NaN draws nothing either (histogram_quantile over empty buckets).
    values = [v for series in result for _, v in series.get("values", [series.get("value")])]
    assert any(v not in ("NaN", "+Inf", "-Inf") for v in values), f"{expr}: only NaN"


@pytest.mark.parametrize(("dashboard", "annotation"), list(annotations()))
def test_annotation_query_marks_events(
    stack: FullStack, dashboard: str, annotation: dict[str, Any]
) -> None:
    expr = substitute(annotation["expr"], MODELS[dashboard])
    answer = run(stack, expr, instant=False)
    assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
    assert answer["data"]["result"], f"{dashboard} / {annotation['name']}: {expr} marks nothing"


@pytest.mark.parametrize(("dashboard", "variable"), list(variables()))
def test_variable_has_values(stack: FullStack, dashboard: str, variable: dict[str, Any]) -> None:
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["definition"])
    assert match, variable["definition"]
    selector = substitute(match.group(1), MODELS[dashboard])
    values = stack.label_values(match.group(2), selector)
    assert values, f"{dashboard}: ${variable['name']} would offer nothing ({selector})"


def test_component_variable_lists_the_demo_components(stack: FullStack) -> None:
    from implmon.demo import DEMO_COMPONENTS

    values = stack.label_values("component", 'implmon_component_up{type=~".*"}')
    assert sorted(values) == sorted(c.name for c in DEMO_COMPONENTS)


def filtered_targets() -> Iterator[Any]:
    for name, model in MODELS.items():
        names = {v["name"] for v in model["templating"]["list"]}
        if not {"type", "component"} <= names:
            continue
        for panel in panels(model):
            for target in panel.get("targets", []):
                if "$component" in target["expr"]:
                    yield pytest.param(
                        name, panel, target, id=f"{name}:{panel['title']}:{target['refId']}"
                    )


@pytest.mark.parametrize(("dashboard", "panel", "target"), list(filtered_targets()))
def test_picking_one_component_narrows_the_panel_to_it(
    stack: FullStack, dashboard: str, panel: dict[str, Any], target: dict[str, Any]
) -> None:
    """The variables filter for real: with type=processor and component=event-processor (the
    flapping demo component) picked, the panel still has data, and only that component's."""
    model = json.loads(json.dumps(MODELS[dashboard]))
    for variable in model["templating"]["list"]:
        if variable["name"] == "type":
            variable["allValue"] = "processor"
        if variable["name"] == "component":
            variable["allValue"] = "event-processor"
    expr = substitute(target["expr"], model)
    answer = run(stack, expr, target["instant"])
    assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
    result = answer["data"]["result"]
    assert result, f"{dashboard} / {panel['title']}: {expr} returned nothing"
    components = {s["metric"]["component"] for s in result if "component" in s["metric"]}
    assert components <= {"event-processor"}, components
