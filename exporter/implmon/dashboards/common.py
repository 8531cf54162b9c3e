"""Shared defaults and small typed builders for implmon's Grafana dashboards.

Every dashboard module builds a :class:`Dashboard` from :class:`Row` s of :class:`Panel` s made
by the helpers here (:func:`stat`, :func:`timeseries`, ...), so the defaults that matter to an
SRE live in one place: the ``$datasource`` variable on every query, a unit and thresholds on
every panel, ``$__rate_interval`` in rates, the dashboard links and the deployment annotation.

Own builders rather than ``grafana-foundation-sdk``: the dashboards need a small, stable subset
of the JSON model, and builders we own keep the committed JSON byte-stable across SDK releases
(the drift test compares it byte for byte; the SDK ships one build per Grafana version under
PyPI version epochs, so even pinning it is awkward).

>>> up = stat("Up", [Target('min(implmon_component_up{type=~"$type"})')], unit="bool",
...           thresholds=UP_THRESHOLDS, description="1 when every component is up.")
>>> board = Dashboard("implmon-demo", "Demo", "An example.", rows=[Row("Health", [up])],
...                   variables=[DATASOURCE])
>>> model = board.to_json()
>>> model["uid"], model["panels"][1]["fieldConfig"]["defaults"]["unit"]
('implmon-demo', 'bool')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from implmon.component import RUNBOOKS_URL

__all__ = [
    "ALERTS_ANNOTATION",
    "COMPONENT",
    "COMPONENT_SELECTOR",
    "COMPONENT_TYPE",
    "DATASOURCE",
    "DEPLOYMENT_ANNOTATION",
    "ENVIRONMENT",
    "PASS_FAIL",
    "RUNBOOKS_URL",
    "UID_COMPONENTS",
    "UID_EXPORTER",
    "UID_OVERVIEW",
    "UID_PERFORMANCE",
    "UID_PIPELINE",
    "UID_QUALITY",
    "UID_SYSTEM",
    "UP_DOWN",
    "UP_THRESHOLDS",
    "Annotation",
    "Dashboard",
    "Link",
    "Panel",
    "Row",
    "Target",
    "Variable",
    "bargauge",
    "component_errors",
    "dashboard_url",
    "gauge",
    "runbook",
    "stat",
    "state_timeline",
    "table",
    "thresholds",
    "timeseries",
    "value_text",
]

JSON = dict[str, Any]

# Grafana 10.4 and later read this schema version without migrating it.
SCHEMA_VERSION = 39
TAG = "implmon"
GRID_WIDTH = 24

# Stable uids: dashboard links, provisioning and `implmon dashboards push` all rely on them.
UID_OVERVIEW = "implmon-overview"
UID_COMPONENTS = "implmon-components"
UID_SYSTEM = "implmon-system"
UID_QUALITY = "implmon-quality"
UID_PERFORMANCE = "implmon-performance"
UID_PIPELINE = "implmon-pipeline"
UID_EXPORTER = "implmon-exporter"

# Every query names the datasource through the variable, so one set of dashboards serves any
# Prometheus a user picks in the variable's drop-down.
PROMETHEUS = {"type": "prometheus", "uid": "${datasource}"}


def runbook(anchor: str) -> str:
    """The URL of a runbook section in ``docs/runbooks.md``.

    >>> runbook("implmoncomponentdown")
    'https://github.com/implmon/implmon/blob/main/docs/runbooks.md#implmoncomponentdown'
    """
    return f"{RUNBOOKS_URL}#{anchor}"


def dashboard_url(uid: str) -> str:
    """A link to another implmon dashboard that keeps the time range and the variables.

    >>> dashboard_url("implmon-components")
    '/d/implmon-components?${__url_time_range}&${__all_variables}'
    """
    return f"/d/{uid}?${{__url_time_range}}&${{__all_variables}}"


# --- thresholds -------------------------------------------------------------------------------


def thresholds(base: str, *steps: tuple[float, str]) -> JSON:
    """Absolute thresholds: ``base`` colour below the first step, then each ``(value, colour)``.

    >>> thresholds("green", (1, "red"))["steps"]
    [{'color': 'green', 'value': None}, {'color': 'red', 'value': 1}]
    """
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


UP_THRESHOLDS = thresholds("red", (1, "green"))


# --- queries, links, variables, annotations ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """One PromQL query of a panel. ``instant`` asks for the latest value only (stat, table);
    ``exemplars`` shows the exemplars Prometheus stored for a histogram (the run's trace id)."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False
    exemplars: bool = False

    def to_json(self, ref_id: str) -> JSON:
        return {
            "datasource": PROMETHEUS,
            "editorMode": "code",
            "exemplar": self.exemplars,
            "expr": self.expr,
            "format": "table" if self.table else "time_series",
            "instant": self.instant,
            "legendFormat": self.legend or "__auto",
            "range": not self.instant,
            "refId": ref_id,
        }


@dataclass(frozen=True, slots=True)
class Link:
    """A link shown on a panel (or in the dashboard's header)."""

    title: str
    url: str

    def to_json(self) -> JSON:
        external = self.url.startswith("http")
        return {"targetBlank": external, "title": self.title, "url": self.url}


@dataclass(frozen=True, slots=True)
class Variable:
    """A template variable: the datasource picker or a ``label_values`` query.

    ``query`` is empty for the datasource variable. Query variables allow "All", rendered as
    ``.*`` so that every selector uses ``=~`` and matches series that lack the label too.
    """

    name: str
    label: str
    query: str = ""
    multi: bool = True

    def to_json(self) -> JSON:
        if not self.query:
            return {
                "current": {},
                "hide": 0,
                "label": self.label,
                "name": self.name,
                "options": [],
                "query": "prometheus",
                "refresh": 1,
                "regex": "",
                "type": "datasource",
            }
        return {
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "datasource": PROMETHEUS,
            "definition": self.query,
            "hide": 0,
            "includeAll": True,
            "label": self.label,
            "multi": self.multi,
            "name": self.name,
            "options": [],
            "query": {
                "qryType": 1,
                "query": self.query,
                "refId": "PrometheusVariableQueryEditor-VariableQuery",
            },
            # 2: refresh when the time range changes, so new components appear on their own.
            "refresh": 2,
            "regex": "",
            "sort": 1,
            "type": "query",
        }


DATASOURCE = Variable("datasource", "Prometheus")
ENVIRONMENT = Variable(
    "environment", "Environment", "label_values(implmon_deployments_total, environment)"
)
COMPONENT_TYPE = Variable("type", "Component type", "label_values(implmon_component_up, type)")
COMPONENT = Variable(
    "component", "Component", 'label_values(implmon_component_up{type=~"$type"}, component)'
)
COMPONENT_SELECTOR = 'type=~"$type", component=~"$component"'


@dataclass(frozen=True, slots=True)
class Annotation:
    """A PromQL annotation: every series the query returns marks the graphs at its samples."""

    name: str
    expr: str
    color: str
    title: str
    text: str = ""
    tags: str = ""

    def to_json(self) -> JSON:
        return {
            "datasource": PROMETHEUS,
            "enable": True,
            "expr": self.expr,
            "iconColor": self.color,
            "name": self.name,
            "step": "1m",
            "tagKeys": self.tags,
            "textFormat": self.text,
            "titleFormat": self.title,
            "useValueForTime": False,
        }


DEPLOYMENT_ANNOTATION = Annotation(
    "Deployments",
    # changes() of the counter marks each scrape interval in which a deployment finished.
    'sum by (environment, outcome) (changes(implmon_deployments_total{environment=~"$environment"}'
    "[$__rate_interval])) > 0",
    "blue",
    "Deployment to {{environment}}",
    "outcome: {{outcome}}",
    "environment,outcome",
)
ALERTS_ANNOTATION = Annotation(
    "Firing alerts",
    'ALERTS{alertstate="firing"}',
    "red",
    "{{alertname}}",
    "severity: {{severity}}",
    "alertname,severity",
)

# The built-in annotation Grafana adds to every dashboard; written out so the JSON is complete.
_GRAFANA_ANNOTATION: JSON = {
    "builtIn": 1,
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": True,
    "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)",
    "name": "Annotations & Alerts",
    "type": "dashboard",
}


# --- panels -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Panel:
    """One visualisation. Use the helpers (:func:`stat`, :func:`timeseries`, ...) to make one."""

    type: str
    title: str
    description: str
    targets: Sequence[Target]
    unit: str
    thresholds: JSON
    width: int = 6
    height: int = 8
    options: JSON = field(default_factory=dict)
    custom: JSON = field(default_factory=dict)
    mappings: list[JSON] = field(default_factory=list)
    links: Sequence[Link] = ()
    min: float | None = None
    max: float | None = None
    decimals: int | None = None
    color_mode: str = "thresholds"
    transformations: list[JSON] = field(default_factory=list)

    def to_json(self, panel_id: int, x: int, y: int) -> JSON:
        defaults: JSON = {
            "color": {"mode": self.color_mode},
            "custom": self.custom,
            "links": [link.to_json() for link in self.links],
            "mappings": self.mappings,
            "thresholds": self.thresholds,
            "unit": self.unit,
        }
        for key, value in (("min", self.min), ("max", self.max), ("decimals", self.decimals)):
            if value is not None:
                defaults[key] = value
        refs = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        return {
            "datasource": PROMETHEUS,
            "description": self.description,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "id": panel_id,
            "options": self.options,
            "targets": [t.to_json(refs[i]) for i, t in enumerate(self.targets)],
            "title": self.title,
            "transformations": self.transformations,
            "type": self.type,
        }


def _reduce(calcs: str = "lastNotNull") -> JSON:
    return {"calcs": [calcs], "fields": "", "values": False}


def stat(
    title: str,
    targets: Sequence[Target],
    *,
    unit: str,
    thresholds: JSON,
    description: str,
    width: int = 4,
    height: int = 4,
    mappings: Sequence[JSON] = (),
    links: Sequence[Link] = (),
    decimals: int | None = None,
) -> Panel:
    """A single number coloured by its thresholds (queries run as instant queries)."""
    return Panel(
        "stat",
        title,
        description,
        [Target(t.expr, t.legend, instant=True) for t in targets],
        unit,
        thresholds,
        width,
        height,
        options={
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": _reduce(),
            "textMode": "auto",
        },
        mappings=list(mappings),
        links=links,
        decimals=decimals,
    )


def gauge(
    title: str,
    targets: Sequence[Target],
    *,
    unit: str,
    thresholds: JSON,
    description: str,
    min: float = 0,
    max: float = 1,
    width: int = 4,
    height: int = 6,
    links: Sequence[Link] = (),
) -> Panel:
    """A dial between ``min`` and ``max`` showing the thresholds as bands."""
    return Panel(
        "gauge",
        title,
        description,
        [Target(t.expr, t.legend, instant=True) for t in targets],
        unit,
        thresholds,
        width,
        height,
        options={
            "orientation": "auto",
            "reduceOptions": _reduce(),
            "showThresholdLabels": False,
            "showThresholdMarkers": True,
        },
        links=links,
        min=min,
        max=max,
    )


def bargauge(
    title: str,
    targets: Sequence[Target],
    *,
    unit: str,
    thresholds: JSON,
    description: str,
    width: int = 8,
    height: int = 8,
    min: float | None = None,
    max: float | None = None,
    links: Sequence[Link] = (),
) -> Panel:
    """One horizontal bar per series, coloured by the thresholds: good for rankings."""
    return Panel(
        "bargauge",
        title,
        description,
        [Target(t.expr, t.legend, instant=True) for t in targets],
        unit,
        thresholds,
        width,
        height,
        options={
            "displayMode": "gradient",
            "minVizHeight": 16,
            "orientation": "horizontal",
            "reduceOptions": _reduce(),
            "showUnfilled": True,
            "valueMode": "color",
        },
        links=links,
        min=min,
        max=max,
    )


def timeseries(
    title: str,
    targets: Sequence[Target],
    *,
    unit: str,
    thresholds: JSON,
    description: str,
    width: int = 12,
    height: int = 8,
    stack: bool = False,
    show_thresholds: bool = True,
    min: float | None = None,
    max: float | None = None,
    links: Sequence[Link] = (),
    draw: str = "line",
) -> Panel:
    """A graph over time; thresholds drawn as dashed lines unless ``show_thresholds`` is off."""
    return Panel(
        "timeseries",
        title,
        description,
        targets,
        unit,
        thresholds,
        width,
        height,
        options={
            "legend": {
                "calcs": ["lastNotNull", "max"],
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        custom={
            "drawStyle": draw,
            "fillOpacity": 10,
            "lineWidth": 1,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"group": "A", "mode": "normal" if stack else "none"},
            "thresholdsStyle": {"mode": "dashed" if show_thresholds else "off"},
        },
        links=links,
        min=min,
        max=max,
        color_mode="palette-classic",
    )


def state_timeline(
    title: str,
    targets: Sequence[Target],
    *,
    unit: str,
    thresholds: JSON,
    description: str,
    mappings: Sequence[JSON] = (),
    width: int = 24,
    height: int = 8,
    links: Sequence[Link] = (),
) -> Panel:
    """One coloured lane per series: shows flapping at a glance."""
    return Panel(
        "state-timeline",
        title,
        description,
        targets,
        unit,
        thresholds,
        width,
        height,
        options={
            "alignValue": "left",
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "mergeValues": True,
            "rowHeight": 0.9,
            "showValue": "never",
            "tooltip": {"mode": "single", "sort": "none"},
        },
        custom={"fillOpacity": 80, "lineWidth": 0},
        mappings=list(mappings),
        links=links,
    )


def table(
    title: str,
    targets: Sequence[Target],
    *,
    unit: str,
    thresholds: JSON,
    description: str,
    hide: Sequence[str] = ("Time",),
    rename: dict[str, str] | None = None,
    width: int = 12,
    height: int = 8,
    links: Sequence[Link] = (),
    mappings: Sequence[JSON] = (),
) -> Panel:
    """An instant query as a table: one row per series, labels as columns."""
    organize: JSON = {
        "excludeByName": {name: True for name in hide},
        "renameByName": dict(rename or {}),
    }
    return Panel(
        "table",
        title,
        description,
        [Target(t.expr, t.legend, instant=True, table=True) for t in targets],
        unit,
        thresholds,
        width,
        height,
        options={"cellHeight": "sm", "footer": {"show": False}, "showHeader": True},
        custom={"align": "auto", "cellOptions": {"type": "color-text"}, "filterable": True},
        mappings=list(mappings),
        links=links,
        transformations=[{"id": "organize", "options": organize}],
    )


def value_text(mapping: dict[str, tuple[str, str]]) -> JSON:
    """A value mapping: ``{"1": ("up", "green")}`` shows 1 as a green "up"."""
    return {
        "options": {
            value: {"color": color, "index": i, "text": text}
            for i, (value, (text, color)) in enumerate(mapping.items())
        },
        "type": "value",
    }


UP_DOWN = value_text({"0": ("down", "red"), "1": ("up", "green")})
PASS_FAIL = value_text({"0": ("failed", "red"), "1": ("passed", "green")})


# --- dashboard --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """A titled row of panels laid out left to right, wrapping at Grafana's 24 columns."""

    title: str
    panels: Sequence[Panel]


@dataclass(frozen=True, slots=True)
class Dashboard:
    """A whole dashboard. ``uid`` is stable: links, provisioning and ``push`` rely on it."""

    uid: str
    title: str
    description: str
    rows: Sequence[Row]
    variables: Sequence[Variable] = (DATASOURCE,)
    annotations: Sequence[Annotation] = (DEPLOYMENT_ANNOTATION,)
    links: Sequence[Link] = ()
    refresh: str = "30s"
    time_from: str = "now-6h"

    def to_json(self) -> JSON:
        panels: list[JSON] = []
        panel_id = 0
        y = 0
        for row in self.rows:
            panel_id += 1
            panels.append(
                {
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                    "id": panel_id,
                    "panels": [],
                    "title": row.title,
                    "type": "row",
                }
            )
            y += 1
            x = 0
            line_height = 0
            for panel in row.panels:
                if x + panel.width > GRID_WIDTH:
                    x, y, line_height = 0, y + line_height, 0
                panel_id += 1
                panels.append(panel.to_json(panel_id, x, y))
                x += panel.width
                line_height = max(line_height, panel.height)
            y += line_height
        header_links: list[JSON] = [
            {
                "asDropdown": True,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "tags": [TAG],
                "targetBlank": False,
                "title": "implmon dashboards",
                "type": "dashboards",
            },
            {
                "asDropdown": False,
                "icon": "doc",
                "includeVars": False,
                "keepTime": False,
                "tags": [],
                "targetBlank": True,
                "title": "Runbooks",
                "type": "link",
                "url": RUNBOOKS_URL,
            },
        ]
        for link in self.links:
            header_links.append(
                {
                    "asDropdown": False,
                    "icon": "dashboard",
                    "includeVars": True,
                    "keepTime": True,
                    "tags": [],
                    "targetBlank": False,
                    "title": link.title,
                    "type": "link",
                    "url": link.url,
                }
            )
        return {
            "annotations": {
                "list": [_GRAFANA_ANNOTATION] + [a.to_json() for a in self.annotations]
            },
            "description": self.description,
            "editable": True,
            "fiscalYearStartMonth": 0,
            "graphTooltip": 1,
            "links": header_links,
            "panels": panels,
            "refresh": self.refresh,
            "schemaVersion": SCHEMA_VERSION,
            "tags": [TAG],
            "templating": {"list": [v.to_json() for v in self.variables]},
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "timezone": "browser",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
            "weekStart": "",
        }


def component_errors(description: str) -> Panel:
    """Errors of the exporter's own pipeline components, per second (Components and Exporter
    dashboards both show it); 0 for every component that raised none, so a quiet panel still
    proves the query works."""
    return timeseries(
        "Component errors",
        [
            Target(
                "sum by (component, role) (rate(implmon_component_errors_total"
                "[$__rate_interval])) or sum by (component, role) "
                "(0 * implmon_pipeline_component_up)",
                "{{component}} ({{role}})",
            )
        ],
        unit="ops",
        thresholds=thresholds("green", (0.001, "red")),
        description=description,
        min=0,
    )
