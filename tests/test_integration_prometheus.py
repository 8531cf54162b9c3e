"""A real Prometheus scrapes the real exporter monitoring the demo agent framework."""

from __future__ import annotations

import subprocess
import time

import pytest
from conftest import Stack, http_text
from implmon.demo import DEMO_COMPONENTS

pytestmark = pytest.mark.integration


def test_component_up_for_every_demo_component(demo_stack: Stack) -> None:
    result = demo_stack.wait_for('count(implmon_component_up{job="implmon"}) == 5')
    assert result
    series = demo_stack.query('implmon_component_up{job="implmon"}')
    got = {(s["metric"]["component"], s["metric"]["type"]) for s in series}
    assert got == {(c.name, c.type) for c in DEMO_COMPONENTS}


def test_flapping_component_changes_state(demo_stack: Stack) -> None:
    """event-processor flaps every 4 s: within 12 s Prometheus sees it both up and down,
    while a steady component never changes."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        flapping = demo_stack.query(
            'changes(implmon_component_up{component="event-processor"}[15s])')
        if flapping and float(flapping[0]["value"][1]) >= 1:
            break
        time.sleep(1)
    else:
        raise AssertionError("event-processor never changed state in Prometheus")
    lows = demo_stack.query('min_over_time(implmon_component_up{component="event-processor"}'
                            '[15s]) == 0')
    highs = demo_stack.query('max_over_time(implmon_component_up{component="event-processor"}'
                             '[15s]) == 1')
    assert lows and highs
    steady = demo_stack.query('changes(implmon_component_up{component="log-collector"}[15s])')
    assert float(steady[0]["value"][1]) == 0


def test_prometheus_scrapes_openmetrics_successfully(demo_stack: Stack) -> None:
    # The target is healthy and scraped in full: the sample count matches a direct scrape.
    up = demo_stack.wait_for('up{job="implmon"} == 1')
    assert up
    scraped = demo_stack.query('scrape_samples_scraped{job="implmon"}')
    assert float(scraped[0]["value"][1]) > 50


def test_promtool_check_metrics_is_clean_on_live_output(demo_stack: Stack) -> None:
    text = http_text(f"{demo_stack.exporter_url}/metrics")
    result = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                            capture_output=True, check=False)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert "implmon_component_up" in text
