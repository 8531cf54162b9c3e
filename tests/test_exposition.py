"""Exposition: the same parsed output as prometheus_client, valid for promtool, both formats."""

from __future__ import annotations

import gzip
import random
import subprocess
from collections.abc import Iterator

import pytest
from implmon.exposition import Exposition, Renderer, choose_variant
from implmon.metrics import HistogramValue, MetricSpec, MetricType, Sample
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as om_families,
)
from prometheus_client.parser import text_string_to_metric_families

SPECS = {
    "t_gauge": MetricSpec("t_gauge", MetricType.GAUGE, 'A gauge with "quotes" and \\ in help.',
                          ("a", "b")),
    "t_events_total": MetricSpec("t_events_total", MetricType.COUNTER, "A counter.", ("kind",)),
    "t_plain": MetricSpec("t_plain", MetricType.GAUGE, "No labels."),
    "t_seconds": MetricSpec("t_seconds", MetricType.HISTOGRAM, "A histogram.", ("stage",),
                            (0.1, 1.0, 10.0)),
}
NASTY = ['plain', 'with "quotes"', "back\\slash", "new\nline", "ünïcode", ""]


def random_samples(seed: int, n: int) -> list[Sample]:
    rng = random.Random(seed)
    samples = [Sample("t_plain", {}, rng.choice([0.0, -1.5, 1e-9, 12345678901234.0,
                                                float("inf"), float("-inf")]))]
    for i in range(n):
        samples.append(Sample("t_gauge", {"a": rng.choice(NASTY), "b": str(i)},
                              rng.uniform(-1e6, 1e6)))
        samples.append(Sample("t_events_total", {"kind": f"k{i}"}, float(rng.randint(0, 10**9))))
    counts = (1.0, 3.0, 3.0, 5.0)
    samples.append(Sample("t_seconds", {"stage": "build"}, HistogramValue(counts, 7.25, 5.0)))
    return samples


def registry_for(samples: list[Sample]) -> CollectorRegistry:
    """The same series as a prometheus_client registry, built with its own metric families."""

    class Custom:
        def collect(self) -> Iterator[object]:
            gauge = GaugeMetricFamily("t_gauge", SPECS["t_gauge"].help, labels=["a", "b"])
            counter = CounterMetricFamily("t_events", "A counter.", labels=["kind"])
            plain = GaugeMetricFamily("t_plain", "No labels.")
            hist = HistogramMetricFamily("t_seconds", "A histogram.", labels=["stage"])
            for s in samples:
                if s.metric == "t_gauge":
                    gauge.add_metric([s.labels["a"], s.labels["b"]], s.value)
                elif s.metric == "t_events_total":
                    counter.add_metric([s.labels["kind"]], s.value)
                elif s.metric == "t_plain":
                    plain.add_metric([], s.value)
                else:
                    assert isinstance(s.value, HistogramValue)
                    buckets = list(zip(["0.1", "1.0", "10.0", "+Inf"], s.value.buckets,
                                       strict=True))
                    hist.add_metric([s.labels["stage"]], buckets, s.value.sum)
            yield from (gauge, counter, plain, hist)

    registry = CollectorRegistry()
    registry.register(Custom())  # type: ignore[arg-type]
    return registry


def parsed(text: str, openmetrics: bool = False) -> set[tuple[object, ...]]:
    parse = om_families if openmetrics else text_string_to_metric_families
    out = set()
    for family in parse(text):
        for s in family.samples:
            value = "NaN" if s.value != s.value else s.value
            out.add((family.name, family.type, family.documentation, s.name,
                     tuple(sorted(s.labels.items())), value))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_parsed_output_as_generate_latest(seed: int) -> None:
    samples = random_samples(seed, 200)
    ours = Renderer(SPECS).render(samples, openmetrics=False).decode()
    theirs = generate_latest(registry_for(samples)).decode()
    assert parsed(ours) == parsed(theirs)


def test_openmetrics_parses_and_ends_with_eof() -> None:
    samples = random_samples(7, 20)
    text = Renderer(SPECS).render(samples, openmetrics=True).decode()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in om_families(text)}
    assert families["t_events"].type == "counter"
    assert {s.name for s in families["t_events"].samples} == {"t_events_total"}
    assert families["t_seconds"].type == "histogram"
    # Both formats carry the same samples.
    plain = {(n, lab, v) for _, _, _, n, lab, v in parsed(
        Renderer(SPECS).render(samples, openmetrics=False).decode())}
    om = {(n, lab, v) for _, _, _, n, lab, v in parsed(text, openmetrics=True)}
    assert plain == om


def test_exemplars_only_in_openmetrics() -> None:
    value = HistogramValue((0.0, 1.0, 1.0, 1.0), 0.5, 1.0,
                           exemplars={1: ({"trace_id": "abc123"}, 0.5, 1700000000.0)})
    samples = [Sample("t_seconds", {"stage": "deploy"}, value)]
    om = Renderer(SPECS).render(samples, openmetrics=True).decode()
    text = Renderer(SPECS).render(samples, openmetrics=False).decode()
    assert "trace_id" not in text
    bucket = next(s for f in om_families(om) for s in f.samples
                  if s.name == "t_seconds_bucket" and s.labels["le"] == "1.0")
    assert bucket.exemplar is not None
    assert bucket.exemplar.labels == {"trace_id": "abc123"}
    assert bucket.exemplar.value == 0.5


def test_promtool_accepts_the_catalogue_exposition() -> None:
    samples = [
        Sample("implmon_component_up", {"component": "a", "type": "collector"}, 1.0),
        Sample("implmon_monitor_cycles_total", {"outcome": "success"}, 3.0),
        Sample("implmon_system_health_ratio", {}, 0.5),
    ]
    text = Renderer().render(samples, openmetrics=False)
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_exposition_variants_decompress_to_the_same_bytes() -> None:
    exp = Exposition.build(Renderer(SPECS), random_samples(3, 50))
    assert gzip.decompress(exp.text_gzip) == exp.text
    assert gzip.decompress(exp.openmetrics_gzip) == exp.openmetrics
    body, content_type = exp.variant(openmetrics=True, use_gzip=False)
    assert body == exp.openmetrics and content_type.startswith("application/openmetrics-text")


@pytest.mark.parametrize(("accept", "encoding", "expected"), [
    # What Prometheus 2.42 sends by default.
    ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
     "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", "gzip", (True, True)),
    ("text/plain", "", (False, False)),
    ("", "gzip, deflate", (False, True)),
    ("*/*", "gzip;q=0", (False, False)),
    ("*/*", "identity", (False, False)),
])
def test_choose_variant(accept: str, encoding: str, expected: tuple[bool, bool]) -> None:
    assert choose_variant(accept, encoding) == expected


def test_line_cache_is_pruned_when_series_go_away() -> None:
    renderer = Renderer(SPECS)
    Exposition.build(renderer, random_samples(1, 100))
    exp = Exposition.build(renderer, [Sample("t_plain", {}, 1.0)])
    assert exp.text.decode().count("\n") == 3
    assert sum(len(f.lines) for f in renderer._families.values()) == 1


def test_cycle_exposition_matches_a_cold_render_as_series_come_and_go() -> None:
    """Series that appear in the middle of a render slice (the prefix cache misses there),
    vanish, and carry NaN and ±Inf: each cycle's OpenMetrics bytes and its text format (built
    from slices of them) equal what a fresh renderer writes for the same samples."""
    renderer = Renderer(SPECS)
    for seed, n in ((1, 3000), (2, 5000), (3, 1200), (4, 5000)):
        samples = random_samples(seed, n)
        rng = random.Random(seed)
        for i in rng.sample(range(1, len(samples) - 1), 40):
            sample = samples[i]
            samples[i] = Sample(sample.metric, sample.labels,
                                rng.choice([float("nan"), float("inf"), float("-inf")]))
        exp = Exposition.build(renderer, samples)
        assert exp.openmetrics == Renderer(SPECS).render(samples, openmetrics=True)
        assert exp.text == Renderer(SPECS).render(samples, openmetrics=False)
        assert parsed(exp.text.decode()) == parsed(generate_latest(registry_for(samples)).decode())


def _runs(seed: int, value_seed: int) -> list[Sample]:
    """Families in long runs (as collectors emit them), one family split in two runs, and a
    few duplicated series (the later sample wins, in the place of the first)."""
    rng = random.Random(value_seed)
    gauges = [Sample("t_gauge", {"a": NASTY[i % len(NASTY)], "b": f"{seed}-{i}"},
                     rng.uniform(-1e3, 1e3)) for i in range(5000)]
    counters = [Sample("t_events_total", {"kind": f"k{i}"}, float(rng.randint(0, 99)))
                for i in range(3000)]
    dupes = [Sample(s.metric, s.labels, rng.choice([float("nan"), 7.0])) for s in gauges[::997]]
    return [*gauges[:2500], *counters, Sample("t_plain", {}, 1.0), *gauges[2500:], *dupes]


def test_steady_series_render_like_a_cold_render_with_new_values() -> None:
    """The same series cycle after cycle (the cached slice formats are used), then a change
    of series (they are rebuilt): every cycle equals a fresh render and prometheus_client's."""
    renderer = Renderer(SPECS)
    for seed, value_seed in ((1, 1), (1, 2), (1, 3), (2, 4), (2, 5)):
        samples = _runs(seed, value_seed)
        exp = Exposition.build(renderer, samples)
        assert exp.openmetrics == Renderer(SPECS).render(samples, openmetrics=True)
        assert exp.text == Renderer(SPECS).render(samples, openmetrics=False)
        last = {}
        for s in samples:
            last[(s.metric, tuple(sorted(s.labels.items())))] = s
        assert parsed(exp.text.decode()) == parsed(
            generate_latest(registry_for(list(last.values()))).decode())
        assert exp.text.count(b"\n") == len(last) + 2 * 3  # 3 families, HELP and TYPE each
