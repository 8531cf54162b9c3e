"""Pipeline aggregates and the DORA four keys, folded from events in the order they were stored.

:class:`PipelineAggregates` turns the event stream into the catalogue's pipeline families:
counters by type and outcome, duration histograms (with the run's trace id as exemplar), the
last success time and the DORA figures per environment:

- deployment frequency: ``implmon_deployments_total{outcome="success"}`` over time;
- lead time for changes: ``implmon_deployment_lead_time_seconds``, a successful deployment's
  time minus its ``commit_time``;
- change failure rate: ``implmon_deployments_total{outcome="failure"}`` over all deployments
  (every outcome), the definition Four Keys and DevLake both settled on;
- time to restore: ``implmon_deployment_time_to_restore_seconds``, from the first failed
  deployment or opened incident of an environment to its next successful deployment (or the
  incident's resolution), whichever comes first.

Events are folded in store order (not by their timestamps), so a rebuild from the store gives
exactly the figures the live process had; the state also round-trips through JSON for the
store's checkpoints.

>>> from implmon.events import parse_event
>>> agg = PipelineAggregates()
>>> agg.apply(parse_event({"kind": "deployment", "id": "1", "environment": "production",
...     "outcome": "failure", "timestamp": "2026-01-01T00:00:00Z"}), received=0)
>>> agg.apply(parse_event({"kind": "deployment", "id": "2", "environment": "production",
...     "outcome": "success", "timestamp": "2026-01-01T00:10:00Z"}), received=0)
>>> agg.histograms["implmon_deployment_time_to_restore_seconds"][("production",)].sum
600.0
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from implmon.events import (
    BuildEvent,
    BuildType,
    DeploymentEvent,
    Environment,
    Event,
    IncidentEvent,
    IncidentStatus,
    Outcome,
    ValidationEvent,
    ValidationOutcome,
    ValidationType,
)
from implmon.metrics import CATALOGUE, HistogramValue, Sample

__all__ = ["Histogram", "PipelineAggregates"]

BUILDS = "implmon_builds_total"
BUILD_DURATION = "implmon_build_duration_seconds"
BUILD_LAST_SUCCESS = "implmon_build_last_success_timestamp_seconds"
DEPLOYMENTS = "implmon_deployments_total"
DEPLOYMENT_DURATION = "implmon_deployment_duration_seconds"
LEAD_TIME = "implmon_deployment_lead_time_seconds"
TIME_TO_RESTORE = "implmon_deployment_time_to_restore_seconds"
DEPLOYMENT_LAST_SUCCESS = "implmon_deployment_last_success_timestamp_seconds"
ENVIRONMENT_FAILED = "implmon_environment_failed"
INCIDENTS = "implmon_incidents_total"
VALIDATIONS = "implmon_validations_total"
VALIDATION_DURATION = "implmon_validation_duration_seconds"

COUNTERS = (BUILDS, DEPLOYMENTS, VALIDATIONS, INCIDENTS)
HISTOGRAMS = (BUILD_DURATION, DEPLOYMENT_DURATION, LEAD_TIME, TIME_TO_RESTORE, VALIDATION_DURATION)
GAUGES = (BUILD_LAST_SUCCESS, DEPLOYMENT_LAST_SUCCESS, ENVIRONMENT_FAILED)

Labels = tuple[str, ...]
# (trace_id, span_id or "", observed value, Unix time)
Exemplar = tuple[str, str, float, float]


@dataclass(slots=True)
class Histogram:
    """Per-bucket (not cumulative) counts, one per bound plus +Inf, with one exemplar each."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    sum: float = 0.0
    count: int = 0
    exemplars: dict[int, Exemplar] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float, exemplar: tuple[str, str] | None, at: float) -> None:
        index = bisect.bisect_left(self.bounds, value)  # le semantics: value <= bound
        self.counts[index] += 1
        self.sum += value
        self.count += 1
        if exemplar is not None:
            self.exemplars[index] = (exemplar[0], exemplar[1], value, at)

    def value(self) -> HistogramValue:
        cumulative: list[float] = []
        running = 0
        for c in self.counts:
            running += c
            cumulative.append(float(running))
        exemplars = {
            i: (
                {"trace_id": t, "span_id": s} if s else {"trace_id": t},
                v,
                at,
            )
            for i, (t, s, v, at) in self.exemplars.items()
        }
        return HistogramValue(tuple(cumulative), self.sum, float(self.count), exemplars)


class PipelineAggregates:
    """Counters, histograms and gauges over the pipeline events applied so far."""

    def __init__(self) -> None:
        self.counters: dict[str, dict[Labels, float]] = {name: {} for name in COUNTERS}
        self.histograms: dict[str, dict[Labels, Histogram]] = {name: {} for name in HISTOGRAMS}
        self.gauges: dict[str, dict[Labels, float]] = {name: {} for name in GAUGES}
        # Environment -> time it became failed (a failed deployment or an opened incident).
        self.failed_since: dict[str, float] = {}
        # Every combination of the closed label sets starts at 0, so rate() sees the first one.
        for bt in BuildType:
            for o in Outcome:
                self.counters[BUILDS][(bt.value, o.value)] = 0.0
        for env in Environment:
            for o in Outcome:
                self.counters[DEPLOYMENTS][(env.value, o.value)] = 0.0
            self.counters[INCIDENTS][(env.value,)] = 0.0
            self.gauges[ENVIRONMENT_FAILED][(env.value,)] = 0.0
        for vt in ValidationType:
            for vo in ValidationOutcome:
                self.counters[VALIDATIONS][(vt.value, vo.value)] = 0.0

    # --- folding ----------------------------------------------------------------------------

    def _observe(self, name: str, labels: Labels, value: float, event: Event, at: float) -> None:
        hist = self.histograms[name].get(labels)
        if hist is None:
            hist = self.histograms[name][labels] = Histogram(CATALOGUE[name].buckets)
        exemplar = (event.trace_id, event.span_id or "") if event.trace_id else None
        hist.observe(value, exemplar, at)

    def _count(self, name: str, labels: Labels) -> None:
        series = self.counters[name]
        series[labels] = series.get(labels, 0.0) + 1.0

    def _fail(self, env: str, at: float) -> None:
        if env not in self.failed_since:
            self.failed_since[env] = at
            self.gauges[ENVIRONMENT_FAILED][(env,)] = 1.0

    def _restore(self, env: str, at: float, event: Event) -> None:
        since = self.failed_since.pop(env, None)
        if since is not None:
            self._observe(TIME_TO_RESTORE, (env,), max(0.0, at - since), event, at)
            self.gauges[ENVIRONMENT_FAILED][(env,)] = 0.0

    def apply(self, event: Event, received: float) -> None:
        """Fold one event in; ``received`` stands in for a missing timestamp."""
        at = event.time(received)
        if isinstance(event, BuildEvent):
            bt = event.build_type.value
            self._count(BUILDS, (bt, event.outcome.value))
            if event.duration_seconds is not None:
                self._observe(BUILD_DURATION, (bt,), event.duration_seconds, event, at)
            if event.outcome is Outcome.SUCCESS:
                self._latest(BUILD_LAST_SUCCESS, (bt,), at)
        elif isinstance(event, DeploymentEvent):
            env = event.environment.value
            self._count(DEPLOYMENTS, (env, event.outcome.value))
            if event.duration_seconds is not None:
                self._observe(DEPLOYMENT_DURATION, (env,), event.duration_seconds, event, at)
            if event.outcome is Outcome.SUCCESS:
                self._latest(DEPLOYMENT_LAST_SUCCESS, (env,), at)
                if event.commit_time is not None:
                    lead = max(0.0, at - event.commit_time.timestamp())
                    self._observe(LEAD_TIME, (env,), lead, event, at)
                self._restore(env, at, event)
            elif event.outcome is Outcome.FAILURE:
                self._fail(env, at)
        elif isinstance(event, ValidationEvent):
            vt = event.validation_type.value
            self._count(VALIDATIONS, (vt, event.outcome.value))
            if event.duration_seconds is not None:
                self._observe(VALIDATION_DURATION, (vt,), event.duration_seconds, event, at)
        elif isinstance(event, IncidentEvent):
            env = event.environment.value
            if event.status is IncidentStatus.OPENED:
                self._count(INCIDENTS, (env,))
                self._fail(env, at)
            else:
                self._restore(env, at, event)

    def _latest(self, name: str, labels: Labels, at: float) -> None:
        series = self.gauges[name]
        series[labels] = max(series.get(labels, 0.0), at)

    # --- output -----------------------------------------------------------------------------

    def samples(self) -> list[Sample]:
        out: list[Sample] = []
        for name, series in (*self.counters.items(), *self.gauges.items()):
            spec = CATALOGUE[name]
            for labels, value in series.items():
                out.append(Sample(name, dict(zip(spec.labels, labels, strict=True)), value))
        for name, hists in self.histograms.items():
            spec = CATALOGUE[name]
            for labels, hist in hists.items():
                out.append(Sample(name, dict(zip(spec.labels, labels, strict=True)), hist.value()))
        return out

    # --- checkpoints ------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        def rows(series: dict[Labels, float]) -> list[list[Any]]:
            return [[list(k), v] for k, v in series.items()]

        return {
            "counters": {n: rows(s) for n, s in self.counters.items()},
            "gauges": {n: rows(s) for n, s in self.gauges.items()},
            "histograms": {
                n: [
                    [list(k), h.counts, h.sum, h.count, [[i, *e] for i, e in h.exemplars.items()]]
                    for k, h in s.items()
                ]
                for n, s in self.histograms.items()
            },
            "failed_since": self.failed_since,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PipelineAggregates:
        agg = cls()
        for name, series in state.get("counters", {}).items():
            agg.counters.setdefault(name, {}).update({tuple(k): float(v) for k, v in series})
        for name, series in state.get("gauges", {}).items():
            agg.gauges.setdefault(name, {}).update({tuple(k): float(v) for k, v in series})
        for name, series in state.get("histograms", {}).items():
            target = agg.histograms.setdefault(name, {})
            for labels, counts, total, count, exemplars in series:
                target[tuple(labels)] = Histogram(
                    CATALOGUE[name].buckets,
                    [int(c) for c in counts],
                    float(total),
                    int(count),
                    {int(i): (str(t), str(s), float(v), float(at)) for i, t, s, v, at in exemplars},
                )
        agg.failed_since = {str(k): float(v) for k, v in state.get("failed_since", {}).items()}
        return agg
