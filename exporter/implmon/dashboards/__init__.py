"""implmon's Grafana dashboards, generated from code.

One module per dashboard builds a :class:`~implmon.dashboards.common.Dashboard`;
:func:`implmon.dashboards.generate.write` renders them as sorted, indented JSON into the
repository's ``dashboards/`` folder (committed, provisioned by docker-compose) and
:mod:`implmon.dashboards.push` uploads them to a running Grafana.

>>> [board.uid for board in build_all()][:2]
['implmon-overview', 'implmon-components']
"""

from __future__ import annotations

from implmon.dashboards import (
    components,
    exporter,
    overview,
    performance,
    pipeline,
    quality,
    system,
)
from implmon.dashboards.common import Dashboard

__all__ = ["MODULES", "Dashboard", "build_all"]

# Each entry also names the JSON file: dashboards/<name>.json.
MODULES = {
    "overview": overview,
    "components": components,
    "system": system,
    "quality": quality,
    "performance": performance,
    "pipeline": pipeline,
    "exporter": exporter,
}


def build_all() -> list[Dashboard]:
    """Every dashboard, Overview first."""
    return [module.build() for module in MODULES.values()]
