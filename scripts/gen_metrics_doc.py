"""Write docs/metrics.md from the metric catalogue (implmon.metrics), so the documentation of
every family is the catalogue itself. tests/test_metrics_doc.py fails when they drift.

Run:  .venv/bin/python scripts/gen_metrics_doc.py
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from implmon.metrics import CATALOGUE, MetricType
from implmon.registry import ComponentRegistry

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def render() -> str:
    # Component kinds may define families of their own: load them all first.
    for kind in ComponentRegistry.default().kinds().values():
        importlib.import_module(kind.__module__)
    lines = [
        "# Metrics",
        "",
        "Generated from `exporter/implmon/metrics.py` by `scripts/gen_metrics_doc.py`; do not",
        "edit by hand. Every value comes from the last completed monitor cycle unless its help",
        "text says otherwise. Histograms also expose `_bucket`, `_sum` and `_count` series.",
        "",
        "| metric | type | labels | help |",
        "| --- | --- | --- | --- |",
    ]
    for spec in sorted(CATALOGUE.values(), key=lambda s: s.name):
        labels = ", ".join(f"`{n}`" for n in spec.labels) or "-"
        kind = spec.type.value + (f" ({len(spec.buckets)} buckets)"
                                  if spec.type is MetricType.HISTOGRAM else "")
        lines.append(f"| `{spec.name}` | {kind} | {labels} | {spec.help.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    DOC.write_text(render())
    print(f"wrote {DOC} ({len(CATALOGUE)} families)")
    sys.exit(0)
