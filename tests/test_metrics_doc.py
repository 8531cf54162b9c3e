"""docs/metrics.md documents every family of the catalogue, and every family is documented."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import gen_metrics_doc  # noqa: E402
from implmon.metrics import CATALOGUE, MetricType  # noqa: E402


def test_metrics_doc_matches_catalogue() -> None:
    assert gen_metrics_doc.DOC.read_text() == gen_metrics_doc.render(), (
        "docs/metrics.md is stale: run .venv/bin/python scripts/gen_metrics_doc.py")


def test_every_family_follows_naming_conventions() -> None:
    units = ("_seconds", "_bytes", "_ratio", "_total", "_info", "_timestamp_seconds")
    for spec in CATALOGUE.values():
        assert spec.name.startswith("implmon_"), spec.name
        assert spec.help.endswith((".", ")")), f"{spec.name}: HELP should be a sentence"
        if spec.type is MetricType.COUNTER:
            assert spec.name.endswith("_total")
        if "duration" in spec.name or "latency" in spec.name:
            assert spec.name.endswith(units), f"{spec.name}: durations are in seconds"
        assert not spec.name.endswith(("_milliseconds", "_ms", "_percent", "_kb", "_mb"))
