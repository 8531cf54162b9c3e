"""ImplementationMonitor: the collect → process → analyze → alert → report loop.

Every interval, all collectors run concurrently, each under its own deadline. The monitor, not
the collector, times each run and records ``implmon_collector_success`` and
``implmon_collector_duration_seconds`` (as node_exporter does): a collector that raises, hangs
past its deadline or returns garbage is a metric, never a broken cycle. Its last good samples
are carried over, marked stale by ``implmon_collector_stale`` and an old
``implmon_collector_last_success_timestamp_seconds``.

>>> import asyncio
>>> from implmon.component import Collector, ComponentSettings
>>> from implmon.metrics import Sample
>>> class Broken(Collector):
...     kind = "broken"
...     async def collect(self):
...         raise RuntimeError("boom")
>>> monitor = ImplementationMonitor(Pipeline(collectors=[Broken(ComponentSettings(
...     kind="broken", name="b"))]), interval=1.0)
>>> snapshot = asyncio.run(monitor.run_cycle())
>>> [s.value for s in snapshot.samples if s.metric == "implmon_collector_success"]
[0.0]
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from operator import attrgetter

from implmon import __version__
from implmon.component import (
    AlertSink,
    Analyzer,
    Collector,
    Component,
    Finding,
    Processor,
    Reporter,
    SampleProvider,
    Snapshot,
)
from implmon.gcpolicy import release_piecewise, sole_owner
from implmon.metrics import (
    CATALOGUE,
    HistogramValue,
    MetricSpec,
    MetricType,
    Sample,
    is_valid_value,
)

__all__ = ["GarbageError", "ImplementationMonitor", "Pipeline", "check_samples"]

log = logging.getLogger(__name__)

STAGES = ("collect", "process", "analyze", "alert", "report")


class GarbageError(ValueError):
    """A collector returned something that is not a list of valid catalogue samples."""


@dataclass
class Pipeline:
    """The assembled components of one configuration, by role."""

    collectors: list[Collector] = field(default_factory=list)
    processors: list[Processor] = field(default_factory=list)
    analyzers: list[Analyzer] = field(default_factory=list)
    reporters: list[Reporter] = field(default_factory=list)
    # Deadline per collector name, seconds.
    timeouts: dict[str, float] = field(default_factory=dict)

    def components(self) -> list[Component]:
        return [*self.collectors, *self.processors, *self.analyzers, *self.reporters]


def check_samples(result: object) -> list[Sample]:
    """``result`` as a list of samples, or GarbageError saying what is wrong with it.

    Runs over every sample every cycle (100k at large scale), so it checks a slice of samples
    at a time with C-level passes (:func:`_slice_ok`); a slice that does not pass them, or
    that mixes families, is checked sample by sample (:func:`_check_each`), which names the
    first bad item.
    """
    if not isinstance(result, list | tuple):
        raise GarbageError(f"returned {type(result).__name__}, not a list of samples")
    samples = list(result)
    # metric -> (label names, spec, is a histogram)
    specs: dict[str, tuple[frozenset[str], MetricSpec, bool]] = {}
    for start in range(0, len(samples), _CHECK_SLICE):
        chunk = samples[start : start + _CHECK_SLICE]
        if not _slice_ok(chunk, specs):
            samples[start : start + _CHECK_SLICE] = _check_each(chunk, start, specs)
    return samples


# Samples checked per pass: a pass holds the GIL for a fraction of a millisecond.
_CHECK_SLICE = 2048
_METRIC = attrgetter("metric")
_LABELS = attrgetter("labels")
_VALUE = attrgetter("value")
_PLAIN_VALUES = frozenset({float, int})


def _spec_of(
    metric: str, specs: dict[str, tuple[frozenset[str], MetricSpec, bool]]
) -> tuple[frozenset[str], MetricSpec, bool] | None:
    known = specs.get(metric)
    if known is None:
        spec = CATALOGUE.get(metric)
        if spec is None:
            return None
        known = specs[metric] = (
            frozenset(spec.labels),
            spec,
            spec.type is MetricType.HISTOGRAM,
        )
    return known


def _slice_ok(
    chunk: list[Sample], specs: dict[str, tuple[frozenset[str], MetricSpec, bool]]
) -> bool:
    """True when every item is a Sample of one known non-histogram family, with exactly its
    label names, string label values and a float or int value: each check is one C-level pass
    over the slice. False means "check each sample", not "garbage"."""
    if not chunk or set(map(type, chunk)) != {Sample}:
        return False
    metrics = list(map(_METRIC, chunk))
    known = _spec_of(metrics[0], specs)
    if known is None or known[2] or metrics.count(metrics[0]) != len(metrics):
        return False
    labels = list(map(_LABELS, chunk))
    if set(map(type, labels)) != {dict}:
        return False
    # Every dict has as many keys as the family has label names, and all keys together are
    # those names: so each dict has exactly them (a dict's keys are distinct).
    if set(map(len, labels)) != {len(known[0])} or not known[0].issuperset(
        chain.from_iterable(labels)
    ):
        return False
    try:
        "".join(chain.from_iterable(map(dict.values, labels)))
    except TypeError:
        return False
    return set(map(type, map(_VALUE, chunk))) <= _PLAIN_VALUES


def _check_each(
    chunk: list[Sample], start: int, specs: dict[str, tuple[frozenset[str], MetricSpec, bool]]
) -> list[Sample]:
    """Check samples one at a time; GarbageError names the first bad item. Values of a float
    or int subclass (numpy's, an IntEnum) come back as plain floats: the exposition writes
    ``repr(value)``, which for those is not a number."""
    join = "".join
    checked: list[Sample] = []
    for i, sample in enumerate(chunk, start):
        if not isinstance(sample, Sample):
            raise GarbageError(f"item {i} is a {type(sample).__name__}, not a Sample")
        known = _spec_of(sample.metric, specs)
        if known is None:
            raise GarbageError(f"item {i}: unknown metric {sample.metric!r}")
        names, spec, is_histogram = known
        labels = sample.labels
        if labels.keys() != names:
            raise GarbageError(
                f"item {i}: {sample.metric} needs labels {list(spec.labels)}, got {sorted(labels)}"
            )
        try:
            join(labels.values())
        except TypeError:
            raise GarbageError(
                f"item {i}: {sample.metric} has a label value that is not a string"
            ) from None
        value = sample.value
        kind = type(value)
        if kind is float or kind is int:
            fits = not is_histogram
        elif isinstance(value, HistogramValue):
            fits = is_histogram and len(value.buckets) == len(spec.buckets) + 1
        elif is_valid_value(value):  # a float or int subclass (numpy's, say)
            fits = not is_histogram
            sample = Sample(sample.metric, labels, float(value))
        else:
            raise GarbageError(f"item {i}: {sample.metric} value {value!r} is not a number")
        if not fits:
            raise GarbageError(f"item {i}: {sample.metric} value does not fit a {spec.type}")
        checked.append(sample)
    return checked


@dataclass
class _CollectorState:
    success: bool = False
    duration: float = 0.0
    last_success: float = 0.0
    error: str = ""
    last_good: list[Sample] = field(default_factory=list)
    # A run that outlived its deadline and ignored cancellation; no new run starts until it ends.
    lingering: asyncio.Task[object] | None = None


class ImplementationMonitor:
    """Runs the loop over a :class:`Pipeline`; keeps the last completed :class:`Snapshot`."""

    def __init__(
        self,
        pipeline: Pipeline,
        interval: float,
        *,
        providers: Sequence[SampleProvider] = (),
        alert_sink: AlertSink | None = None,
        clock: Callable[[], float] = time.time,
        before_cycle: Callable[[], None] | None = None,
        after_cycle: Callable[[], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.interval = interval
        self.providers = list(providers)
        self.alert_sink = alert_sink
        self.clock = clock
        # Process-level housekeeping between cycles (the exporter's GC policy).
        self.before_cycle = before_cycle
        self.after_cycle = after_cycle
        self.snapshot: Snapshot | None = None
        self.cycles: Counter[str] = Counter()
        self.component_errors: Counter[tuple[str, str]] = Counter()
        self.component_ok: dict[str, bool] = {}
        self.stage_durations: dict[str, float] = {}
        self._collectors: dict[str, _CollectorState] = {}
        self.cycle_done = asyncio.Event()

    @property
    def ready(self) -> bool:
        """True once a cycle has completed."""
        return self.snapshot is not None

    def replace_pipeline(self, pipeline: Pipeline, interval: float) -> None:
        """Switch to a new pipeline at the next cycle; collector state is kept by name."""
        self.pipeline = pipeline
        self.interval = interval
        names = {c.name for c in pipeline.collectors}
        self._collectors = {n: s for n, s in self._collectors.items() if n in names}

    # --- stages --------------------------------------------------------------------------

    async def _run_collector(self, collector: Collector) -> None:
        state = self._collectors.setdefault(collector.name, _CollectorState())
        timeout = self.pipeline.timeouts.get(collector.name, self.interval * 0.8)
        start = time.perf_counter()
        error = ""
        samples: list[Sample] = []
        if state.lingering is not None and not state.lingering.done():
            error = "previous run is still running past its deadline"
        else:
            collector.deadline = timeout
            task: asyncio.Task[object] = asyncio.ensure_future(collector.collect())
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                task.cancel()
                # A collector that swallows cancellation keeps running; don't wait for it.
                done, _ = await asyncio.wait({task}, timeout=0.1)
                if not done:
                    state.lingering = task
                    task.add_done_callback(_consume_result)
                error = f"deadline of {timeout:g}s exceeded"
            elif task.cancelled():
                error = "cancelled"
            elif (exc := task.exception()) is not None:
                error = f"{type(exc).__name__}: {exc}"
            else:
                try:
                    # Validation is per sample: off the event loop, so scrapes are not held up.
                    samples = await asyncio.to_thread(check_samples, task.result())
                except GarbageError as exc:
                    error = f"returned garbage: {exc}"
        state.duration = time.perf_counter() - start
        if error:
            if state.success or not state.error:
                log.warning("collector %s failed: %s", collector.name, error)
            state.success, state.error = False, error
        else:
            state.success, state.error = True, ""
            state.last_good = samples
            state.last_success = self.clock()

    async def _collect(self) -> list[Sample]:
        collectors = self.pipeline.collectors
        await asyncio.gather(*(self._run_collector(c) for c in collectors))
        samples: list[Sample] = []
        for c in collectors:
            samples.extend(self._collectors[c.name].last_good)
        return samples

    def _guard(self, component: Component, call: Callable[[], object]) -> object | None:
        """Run one component's method at the stage boundary; an error is logged and counted."""
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001 - a broken component must not stop the loop
            self._component_failed(component, exc)
            return None
        self.component_ok[component.name] = True
        return result

    def _component_failed(self, component: Component, exc: BaseException) -> None:
        if self.component_ok.get(component.name, True):
            log.warning(
                "%s %s failed: %s: %s",
                component.role.value,
                component.name,
                type(exc).__name__,
                exc,
            )
        self.component_errors[(component.name, component.role.value)] += 1
        self.component_ok[component.name] = False

    def _process(self, samples: list[Sample]) -> list[Sample]:
        for processor in self.pipeline.processors:
            result = self._guard(processor, partial(processor.process, samples))
            if result is not None:
                try:
                    samples = check_samples(result)
                except GarbageError as exc:
                    self._component_failed(processor, exc)
        return samples

    def _analyze(self, samples: list[Sample]) -> tuple[list[Sample], list[Finding]]:
        derived: list[Sample] = []
        findings: list[Finding] = []
        for analyzer in self.pipeline.analyzers:
            result = self._guard(analyzer, partial(analyzer.analyze, samples))
            if result is None:
                continue
            try:
                derived.extend(check_samples(list(result.samples)))  # type: ignore[attr-defined]
                findings.extend(result.findings)  # type: ignore[attr-defined]
            except (GarbageError, AttributeError, TypeError) as exc:
                self._component_failed(analyzer, exc)
        return derived, findings

    async def _alert(self, findings: list[Finding]) -> None:
        if self.alert_sink is None:
            return
        try:
            await self.alert_sink.process(findings)
        except Exception as exc:  # noqa: BLE001 - delivery problems are the sink's to count
            # A sink that raises (rather than counting its own delivery failures) is a bug in
            # it: counted like a failing component, not as a failed cycle.
            self.component_errors[("alert-stage", "alerter")] += 1
            log.warning("alert stage failed: %s: %s", type(exc).__name__, exc)

    async def _report(self, snapshot: Snapshot) -> None:
        for reporter in self.pipeline.reporters:
            try:
                await reporter.report(snapshot)
            except Exception as exc:  # noqa: BLE001 - one reporter must not stop the others
                self._component_failed(reporter, exc)
            else:
                self.component_ok[reporter.name] = True

    # --- one cycle -----------------------------------------------------------------------

    async def run_cycle(self) -> Snapshot:
        """Run every stage once and return (and keep) the new snapshot."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        collected = await self._collect()
        t1 = time.perf_counter()
        # Processors and analyzers are plain functions over every sample: a worker thread
        # keeps that work (100k samples take a while) from stalling scrapes on the loop.
        processed = await asyncio.to_thread(self._process, collected)
        t2 = time.perf_counter()
        derived, findings = await asyncio.to_thread(self._analyze, processed)
        t3 = time.perf_counter()
        await self._alert(findings)
        t4 = time.perf_counter()
        timings.update(collect=t1 - t0, process=t2 - t1, analyze=t3 - t2, alert=t4 - t3)
        # The report stage's own duration is known only after it ran: it shows next cycle.
        timings["report"] = self.stage_durations.get("report", 0.0)
        self.stage_durations.update(timings)
        self.cycles["success"] += 1
        now = self.clock()
        snapshot = Snapshot(
            timestamp=now,
            samples=[*processed, *derived],
            findings=findings,
            collectors={
                n: (s.success, s.duration, s.last_success, s.error)
                for n, s in self._collectors.items()
            },
        )
        snapshot.samples.extend(self.self_samples(snapshot))
        await self._report(snapshot)
        self.stage_durations["report"] = time.perf_counter() - t4
        previous, self.snapshot = self.snapshot, snapshot
        self.cycle_done.set()
        self.cycle_done = asyncio.Event()
        if previous is not None:
            samples = previous.samples
            previous = None
            # The last cycle's samples die here: free them off the loop, a slice at a time,
            # unless a report being rendered still holds the list.
            if sole_owner(samples, expected=1):
                await asyncio.to_thread(release_piecewise, samples)
        return snapshot

    def self_samples(self, snapshot: Snapshot | None = None) -> list[Sample]:
        """The monitor's own figures, plus those of every provider and the alert sink."""
        out: list[Sample] = [
            Sample(
                "implmon_build_info",
                {"version": __version__, "python_version": sys.version.split()[0]},
                1.0,
            ),
            Sample("implmon_monitor_interval_seconds", {}, self.interval),
        ]
        for name, state in self._collectors.items():
            labels = {"collector": name}
            out += [
                Sample("implmon_collector_success", labels, float(state.success)),
                Sample("implmon_collector_duration_seconds", labels, state.duration),
                Sample(
                    "implmon_collector_last_success_timestamp_seconds", labels, state.last_success
                ),
                Sample(
                    "implmon_collector_stale",
                    labels,
                    float(not state.success and state.last_success > 0),
                ),
            ]
        for stage, seconds in self.stage_durations.items():
            out.append(Sample("implmon_stage_duration_seconds", {"stage": stage}, seconds))
        for outcome, n in sorted(self.cycles.items()):
            out.append(Sample("implmon_monitor_cycles_total", {"outcome": outcome}, float(n)))
        for (component, role), n in sorted(self.component_errors.items()):
            out.append(
                Sample(
                    "implmon_component_errors_total",
                    {"component": component, "role": role},
                    float(n),
                )
            )
        for part in self.pipeline.components():
            ok = (
                self._collectors[part.name].success
                if isinstance(part, Collector) and part.name in self._collectors
                else self.component_ok.get(part.name, True)
            )
            out.append(
                Sample(
                    "implmon_pipeline_component_up",
                    {"component": part.name, "role": part.role.value, "kind": part.kind},
                    float(ok),
                )
            )
        if snapshot is not None:
            out.append(
                Sample("implmon_monitor_last_cycle_timestamp_seconds", {}, snapshot.timestamp)
            )
            counts: Counter[tuple[str, str]] = Counter(
                (f.severity.value, f.monitoring_type.value) for f in snapshot.findings
            )
            for (severity, mtype), n in sorted(counts.items()):
                out.append(
                    Sample(
                        "implmon_findings",
                        {"severity": severity, "monitoring_type": mtype},
                        float(n),
                    )
                )
        sources: list[SampleProvider] = list(self.providers)
        if self.alert_sink is not None:
            sources.append(self.alert_sink)
        for provider in sources:
            try:
                out.extend(check_samples(list(provider.samples())))
            except Exception as exc:  # noqa: BLE001 - a provider must not break the snapshot
                log.warning("sample provider %r failed: %s: %s", provider, type(exc).__name__, exc)
        return out

    async def run(self, stop: asyncio.Event) -> None:
        """Run cycles every interval until ``stop`` is set. Cycles start on interval slots; a
        cycle that overruns skips the slots it missed rather than running back to back."""
        next_start = time.monotonic()
        while not stop.is_set():
            if self.before_cycle is not None:
                self.before_cycle()
            try:
                await self.run_cycle()
            except Exception:
                self.cycles["failure"] += 1
                log.exception("monitor cycle failed")
            finally:
                if self.after_cycle is not None:
                    self.after_cycle()
            now = time.monotonic()
            next_start += self.interval
            if next_start < now:
                next_start += math.ceil((now - next_start) / self.interval) * self.interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=next_start - now)


def _consume_result(task: asyncio.Task[object]) -> None:
    # Retrieve the late result so asyncio does not log "exception was never retrieved".
    if not task.cancelled():
        task.exception()
