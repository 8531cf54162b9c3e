"""Lint Grafana dashboard JSON for the usual mistakes, and read the PromQL out of it.

:func:`lint` works on any dashboard model (ours or one a user wrote) and returns one message per
problem: no datasource variable, a query pinned to a fixed datasource, a panel without unit,
thresholds or description, a fixed window in a range selector (``rate(x[5m])`` instead of
``$__rate_interval``), duplicate panel ids, a ``$variable`` that is not defined, a panel that
sticks out of the 24-column grid or overlaps another.

:func:`metric_names` extracts the metric names a PromQL expression reads; the cross-reference
test uses it to check every name against the exporter's exposition and the recording rules.

>>> sorted(metric_names('sum by (le) (rate(implmon_x_bucket{a="b"}[$__rate_interval])) / up'))
['implmon_x_bucket', 'up']
>>> range_selectors('increase(a[5m]) + rate(b[$__rate_interval])')
['5m', '$__rate_interval']
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

__all__ = [
    "ALLOWED_RANGES",
    "expressions",
    "lint",
    "metric_names",
    "panels",
    "range_selectors",
    "variable_references",
]

JSON = dict[str, Any]

# Grafana computes both from the scrape interval and the time range: $__rate_interval is at
# least four scrape intervals (so rate() always has two samples), $__range is the whole
# selected range (for "in the selected range" totals). Anything else is a fixed window that
# breaks when the scrape interval or the zoom changes.
ALLOWED_RANGES = frozenset({"$__rate_interval", "$__range"})

_KEYWORDS = frozenset(
    {
        "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
        "offset", "bool", "inf", "nan", "atan2",
    }
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[([^\[\]]+)\]")
_LABEL_LIST = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z0-9_]+)(?::[A-Za-z0-9_]+)?\}|([A-Za-z0-9_]+))")
_IDENT = re.compile(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_NUMBER_UNIT = re.compile(r"^\d+(ms|s|m|h|d|w|y)$")


def range_selectors(expr: str) -> list[str]:
    """The contents of every ``[...]`` range selector in ``expr``."""
    return [m.group(1).strip() for m in _RANGE.finditer(_STRING.sub('""', expr))]


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` reads (not functions, keywords, labels or variables)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _VARIABLE.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS or _NUMBER_UNIT.match(name):
            continue
        names.add(name)
    return names


def variable_references(text: str) -> set[str]:
    """Names of the ``$name`` / ``${name}`` / ``${name:format}`` variables ``text`` uses."""
    return {a or b for a, b in _VARIABLE.findall(text)}


def panels(model: JSON) -> Iterator[JSON]:
    """Every panel of the dashboard, rows and panels inside collapsed rows included."""
    for panel in model.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def expressions(model: JSON) -> Iterator[tuple[str, str]]:
    """``(where, expr)`` for every PromQL query: panel targets and annotations."""
    for panel in panels(model):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield f"panel {panel.get('title')!r} ({target.get('refId')})", target["expr"]
    for annotation in model.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            yield f"annotation {annotation.get('name')!r}", annotation["expr"]


def _datasource_is_variable(datasource: Any) -> bool:
    uid = datasource.get("uid") if isinstance(datasource, dict) else datasource
    return isinstance(uid, str) and uid.startswith("$")


def lint(model: JSON) -> list[str]:
    """Every problem found in one dashboard model; empty when it is clean."""
    problems: list[str] = []
    variables = model.get("templating", {}).get("list", [])
    defined = {v.get("name") for v in variables}
    if not any(v.get("type") == "datasource" for v in variables):
        problems.append("no datasource variable")
    if not model.get("uid") or len(model["uid"]) > 40:
        problems.append("uid must be set and at most 40 characters")

    seen_ids: set[Any] = set()
    placed: list[tuple[Any, int, int, int, int]] = []
    for panel in panels(model):
        title = panel.get("title")
        if panel.get("id") in seen_ids:
            problems.append(f"panel {title!r}: duplicate id {panel.get('id')}")
        seen_ids.add(panel.get("id"))
        grid = panel.get("gridPos", {})
        x, y, w, h = (grid.get(k, 0) for k in ("x", "y", "w", "h"))
        if x + w > 24:
            problems.append(f"panel {title!r}: wider than the 24-column grid")
        for other, ox, oy, ow, oh in placed:
            if x < ox + ow and ox < x + w and y < oy + oh and oy < y + h:
                problems.append(f"panel {title!r}: overlaps panel {other!r}")
        placed.append((title, x, y, w, h))
        if panel.get("type") == "row":
            continue
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        if not defaults.get("unit"):
            problems.append(f"panel {title!r}: no unit")
        if len(defaults.get("thresholds", {}).get("steps", [])) < 2:
            problems.append(f"panel {title!r}: no thresholds")
        if not panel.get("description"):
            problems.append(f"panel {title!r}: no description")
        if not panel.get("targets"):
            problems.append(f"panel {title!r}: no query")
        for target in [panel, *panel.get("targets", [])]:
            if not _datasource_is_variable(target.get("datasource")):
                problems.append(f"panel {title!r}: datasource is not a variable")
                break

    for where, expr in expressions(model):
        for window in range_selectors(expr):
            if window not in ALLOWED_RANGES:
                problems.append(
                    f"{where}: fixed range [{window}]; use [$__rate_interval] or [$__range]"
                )
    text_fields: list[tuple[str, str]] = list(expressions(model))
    text_fields += [
        (f"variable {v.get('name')!r}", str(v.get("definition", ""))) for v in variables
    ]
    for where, text in text_fields:
        for name in sorted(variable_references(text)):
            if not name.startswith("__") and name not in defined:
                problems.append(f"{where}: undefined variable ${name}")
    return problems
