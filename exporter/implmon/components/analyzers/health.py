"""Analyzer ``health``: component and system health from the probes' results.

A component is down after ``failure_threshold`` consecutive failed health checks (one failure
is noise, N in a row is an outage); it is up again at the first success. From that it derives
``implmon_component_up``, ``implmon_system_components{type,state}``,
``implmon_system_health_ratio`` and findings:

- ``ImplmonComponentUnhealthy`` (component monitoring) for each down component,
- ``ImplmonSystemDegraded`` (system monitoring) when the up ratio is below ``degraded_below``,
- ``ImplmonSystemDown`` (system monitoring) when no component is up.

>>> from implmon.metrics import Sample
>>> a = HealthAnalyzer(HealthSettings(kind="health", name="health", failure_threshold=2))
>>> labels = {"component": "x", "type": "collector"}
>>> failed = [Sample("implmon_component_probe_success", labels, 0.0)]
>>> [f.alertname for f in a.analyze(failed).findings]
[]
>>> sorted(f.alertname for f in a.analyze(failed).findings)
['ImplmonComponentUnhealthy', 'ImplmonSystemDegraded', 'ImplmonSystemDown']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from implmon.component import (
    Analysis,
    Analyzer,
    ComponentSettings,
    Finding,
    MonitoringType,
    Severity,
)
from implmon.metrics import Sample

__all__ = ["HealthAnalyzer"]


class HealthSettings(ComponentSettings):
    failure_threshold: int = Field(default=3, gt=0)
    degraded_below: float = Field(default=1.0, ge=0.0, le=1.0)
    component_severity: Severity = Severity.CRITICAL


class HealthAnalyzer(Analyzer):
    """Turns ``implmon_component_probe_success`` into up/down state and system health."""

    kind = "health"
    Settings = HealthSettings

    def __init__(self, settings: HealthSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.settings: HealthSettings = settings
        self._failures: dict[tuple[str, str], int] = {}

    def analyze(self, samples: Sequence[Sample]) -> Analysis:
        threshold = self.settings.failure_threshold
        seen: dict[tuple[str, str], bool] = {}
        for s in samples:
            if s.metric == "implmon_component_probe_success":
                seen[(s.labels["component"], s.labels["type"])] = s.value == 1.0
        # Components no longer probed (removed from config) are forgotten.
        self._failures = {k: v for k, v in self._failures.items() if k in seen}
        out: list[Sample] = []
        findings: list[Finding] = []
        states: Counter[tuple[str, str]] = Counter()
        for (component, ctype), ok in sorted(seen.items()):
            failures = 0 if ok else self._failures.get((component, ctype), 0) + 1
            self._failures[(component, ctype)] = failures
            up = failures < threshold
            labels = {"component": component, "type": ctype}
            out.append(Sample("implmon_component_up", labels, float(up)))
            out.append(Sample("implmon_component_consecutive_failures", labels, float(failures)))
            states[(ctype, "up" if up else "down")] += 1
            states[(ctype, "down" if up else "up")] += 0
            if not up:
                findings.append(
                    Finding(
                        alertname="ImplmonComponentUnhealthy",
                        severity=self.settings.component_severity,
                        monitoring_type=MonitoringType.COMPONENT,
                        summary=f"Component {component} ({ctype}) is down.",
                        description=(
                            f"{component} failed its last {failures} health checks "
                            f"(threshold {threshold})."
                        ),
                        labels=labels,
                    )
                )
        for (ctype, state), n in sorted(states.items()):
            out.append(
                Sample("implmon_system_components", {"type": ctype, "state": state}, float(n))
            )
        if seen:
            up_count = sum(n for (_, state), n in states.items() if state == "up")
            ratio = up_count / len(seen)
            out.append(Sample("implmon_system_health_ratio", {}, ratio))
            findings.extend(self._system_findings(ratio, up_count, len(seen)))
        return Analysis(samples=out, findings=findings)

    def _system_findings(self, ratio: float, up: int, total: int) -> list[Finding]:
        findings = []
        if ratio < self.settings.degraded_below:
            findings.append(
                Finding(
                    alertname="ImplmonSystemDegraded",
                    severity=Severity.WARNING,
                    monitoring_type=MonitoringType.SYSTEM,
                    summary=(
                        f"System health is {ratio:.0%}: {total - up} of {total} components down."
                    ),
                    description=(
                        f"{up} of {total} monitored components are up, below the "
                        f"{self.settings.degraded_below:.0%} target."
                    ),
                )
            )
        if up == 0:
            findings.append(
                Finding(
                    alertname="ImplmonSystemDown",
                    severity=Severity.CRITICAL,
                    monitoring_type=MonitoringType.SYSTEM,
                    summary="System is down: no monitored component is up.",
                    description=f"All {total} monitored components failed their health checks.",
                )
            )
        return findings
