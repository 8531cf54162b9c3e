"""SIGKILL the exporter while it takes events as fast as a client can send them; after a
restart every acknowledged event is in the store and counted exactly once.

The benchmark suite runs 20 iterations (``bench/ingest.py crash``); here a few, on one store, so
later rounds also start from the checkpoint an earlier graceful stop wrote.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "ingest.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_ingest", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_ingest"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.integration
@pytest.mark.timeout(300)
@pytest.mark.parametrize("synchronous", ["normal", "full"])
def test_sigkill_loses_no_acknowledged_event(synchronous: str) -> None:
    bench = load_bench()
    rounds = bench.crash_loop(3, synchronous)
    assert len(rounds) == 3
    for r in rounds:
        assert r["acked"] > 0, r  # the kill landed while events were flowing
        assert r["missing_acked"] == 0, r
        assert r["counted"] == r["stored_total"], r  # counted once, never going backwards
        # Re-sending acknowledged events is answered 200 duplicate and records nothing.
        assert set(r["retry_statuses"]) == {200}, r
        assert r["rows_after_retry"] == r["stored_total"], r
    totals = [r["stored_total"] for r in rounds]
    assert totals == sorted(totals)
