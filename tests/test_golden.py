"""End-to-end golden file, in the style of node_exporter's: the real exporter on fixed inputs
(the demo agents with one component forced to fail), its /metrics diffed against
tests/golden/metrics.txt after removing series whose values depend on time or the host.

Update the golden file after an intended change with:  UPDATE_GOLDEN=1 make unit
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from pathlib import Path

from conftest import http_text
from implmon.demo import DEMO_COMPONENTS, demo_config
from implmon.stack import free_port, free_port_block, start_agents, start_exporter, stopping

GOLDEN = Path(__file__).parent / "golden" / "metrics.txt"

# Values that depend on timing, the clock, the host or the number of cycles run so far.
NONDETERMINISTIC = re.compile(
    r"^implmon_(\w+_duration_seconds|\w+_timestamp_seconds|build_info|component_probes_total"
    r"|monitor_cycles_total|component_consecutive_failures|host_\w+|\w+_age_seconds|process_\w+)\b"
)


def normalise(text: str) -> str:
    kept = []
    for line in text.splitlines():
        name = line.split(" ", 3)[2] if line.startswith("#") else line
        if NONDETERMINISTIC.match(name):
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def test_metrics_match_golden_file(tmp_path: Path) -> None:
    base = free_port_block(len(DEMO_COMPONENTS))
    port = free_port()
    config = demo_config("127.0.0.1", base, interval="1s", store_path=tmp_path / "golden.db",
                         failure_threshold=1)
    # No `system` collector: its values are the host's.
    config = re.sub(r"  - kind: system\n    name: host\n", "", config)
    with stopping([]) as procs:
        procs.append(start_agents(tmp_path, base, flap_period=3600))
        fault = urllib.request.Request(
            f"http://127.0.0.1:{base + 2}/-/fault", data=json.dumps({"status": "fail"}).encode(),
            method="POST", headers={"Content-Type": "application/json"})
        urllib.request.urlopen(fault, timeout=5).close()
        procs.append(start_exporter(tmp_path, config, port))
        time.sleep(2.5)  # two more cycles: the failure has been seen and analysed
        text = normalise(http_text(f"http://127.0.0.1:{port}/metrics"))
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    expected = GOLDEN.read_text()
    assert text == expected, "run with UPDATE_GOLDEN=1 to accept:\n" + _diff(expected, text)


def _diff(a: str, b: str) -> str:
    import difflib

    return "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True),
                                        "golden", "actual"))
