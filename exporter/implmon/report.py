"""The seed's ReportGenerator: one report model, three renderers, two routes.

A :class:`Report` is built from the monitor's latest :class:`~implmon.component.Snapshot` (the
state of components, quality gates, benchmarks, findings and collectors as of the last cycle)
and the pipeline events of a review period (recent builds and deployments from the event
store). It renders as JSON (``GET /api/v1/report``), Markdown fit for a CI comment, and the HTML
status page the exporter serves at ``/``. ``implmon report`` fetches the JSON from a running
exporter and renders it locally, so all three formats come from the same data.

Review periods follow the seed's maintenance schedule (daily code review, weekly implementation
review, monthly quality assessment, quarterly framework audit). A period is a rolling window
that ends when the report is generated; it selects which pipeline events the report counts and
lists. The snapshot part is always "now": a monitor cycle has no history.

>>> from implmon.component import Snapshot
>>> from implmon.metrics import Sample
>>> snap = Snapshot(timestamp=1_800_000_000.0, samples=[
...     Sample("implmon_component_up", {"component": "api", "type": "collector"}, 1.0),
...     Sample("implmon_system_health_ratio", {}, 1.0)], findings=[])
>>> report = build_report(snap, period=Period.WEEKLY, now=1_800_000_010.0)
>>> report.status, [c.name for c in report.components], report.review
('ok', ['api'], 'Weekly implementation review')
>>> render_markdown(report).splitlines()[1]
'## implmon: Weekly implementation review: OK'
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import math
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal, Protocol

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from implmon import __version__
from implmon.component import Finding, Severity, Snapshot
from implmon.events import BuildEvent, DeploymentEvent, Event
from implmon.metrics import HistogramValue, Sample

__all__ = [
    "MARKDOWN_MARKER",
    "MARKDOWN_ROWS",
    "RECENT_LIMIT",
    "REPORT_OPTIONS",
    "SCHEMA_VERSION",
    "BenchmarkStatus",
    "CollectorStatus",
    "ComponentStatus",
    "CoverageStatus",
    "EventSource",
    "FindingStatus",
    "GateStatus",
    "OutcomeCount",
    "Period",
    "PipelineRun",
    "Report",
    "ReportOptions",
    "SnapshotSource",
    "StoreEvents",
    "TestSuiteStatus",
    "build_report",
    "render_html",
    "render_json",
    "render_markdown",
    "setup_routes",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# How many recent builds and deployments a report lists (counts cover the whole window).
RECENT_LIMIT = 20
# Where no regression analyzer gives its verdict (implmon_performance_regression_detected or a
# finding labelled with the benchmark), a ratio above 1 + this is shown as a regression.
DEFAULT_REGRESSION_TOLERANCE = 0.10


class Period(StrEnum):
    """The seed's review schedule as rolling report windows."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"

    @property
    def seconds(self) -> float:
        """Length of the window; a month is 30 days and a quarter 90, as rolling windows."""
        days = {"daily": 1, "weekly": 7, "monthly": 30, "quarterly": 90}[self.value]
        return days * 86400.0

    @property
    def review(self) -> str:
        """The seed's name for the review this period serves."""
        return {
            "daily": "Daily code review",
            "weekly": "Weekly implementation review",
            "monthly": "Monthly quality assessment",
            "quarterly": "Quarterly framework audit",
        }[self.value]


Status = Literal["ok", "degraded", "critical", "unknown"]


class _Model(BaseModel):
    # Clients ignore fields a newer exporter adds, so ``implmon report`` keeps working against
    # an exporter one version ahead; ``schema_version`` changes only on breaking changes.
    model_config = ConfigDict(frozen=True, extra="ignore")


class ComponentStatus(_Model):
    """One monitored component, from the ``implmon_component_*`` families."""

    name: str
    type: str
    version: str = ""
    # "up"/"down" from implmon_component_up; "unknown" when only its info is known.
    state: Literal["up", "down", "unknown"] = "unknown"
    health: str = ""  # pass, warn or fail: the status the component itself last reported
    probe_success: bool | None = None
    probe_duration_seconds: float | None = None
    http_status: int | None = None
    consecutive_failures: int | None = None


class GateStatus(_Model):
    gate: str
    build_type: str
    passed: bool


class TestSuiteStatus(_Model):
    # Not a pytest test class, despite the name (pytest collects Test* classes in test modules
    # that import it).
    __test__ = False

    suite: str
    passed: int = 0
    failed: int = 0
    error: int = 0
    skipped: int = 0


class CoverageStatus(_Model):
    component: str
    kind: str
    ratio: float


class BenchmarkStatus(_Model):
    benchmark: str
    regression_ratio: float | None = None
    median_seconds: float | None = None
    regressed: bool = False


class FindingStatus(_Model):
    """An active analyzer finding, as the alert stage sends it to Alertmanager."""

    alertname: str
    severity: str
    monitoring_type: str
    summary: str
    description: str = ""
    labels: dict[str, str] = {}
    runbook: str = ""


class CollectorStatus(_Model):
    name: str
    success: bool
    duration_seconds: float
    last_success_timestamp: float | None = None
    error: str = ""


class PipelineRun(_Model):
    """A build or deployment from the event store."""

    kind: Literal["build", "deployment"]
    id: str
    timestamp: float
    target: str  # build type for builds, environment for deployments
    outcome: str
    version: str = ""
    duration_seconds: float | None = None


class OutcomeCount(_Model):
    kind: Literal["build", "deployment"]
    target: str
    outcome: str
    count: int


class Report(_Model):
    """Everything a status page, a CI comment or a review needs, as plain data.

    ``status`` is ``critical`` when a critical finding is active; ``degraded`` when a warning
    finding is active, a component is down, a quality gate failed, a benchmark regressed or a
    collector failed; ``unknown`` before the first monitor cycle; ``ok`` otherwise.
    """

    schema_version: int = SCHEMA_VERSION
    exporter_version: str = __version__
    generated_at: float
    period: Period
    review: str
    window_start: float
    window_end: float
    status: Status
    last_cycle_timestamp: float | None = None
    system_health_ratio: float | None = None
    components: list[ComponentStatus] = []
    quality_gates: list[GateStatus] = []
    tests: list[TestSuiteStatus] = []
    coverage: list[CoverageStatus] = []
    benchmarks: list[BenchmarkStatus] = []
    findings: list[FindingStatus] = []
    collectors: list[CollectorStatus] = []
    # Counts over the whole window; ``builds``/``deployments`` list the most recent runs.
    pipeline_counts: list[OutcomeCount] = []
    builds: list[PipelineRun] = []
    deployments: list[PipelineRun] = []
    # False when no event store is wired in or it could not be read (``events_error`` says
    # why): the pipeline sections are then absent, not empty.
    events_available: bool = False
    events_error: str = ""


# --- building -------------------------------------------------------------------------------


def _number(value: float | HistogramValue) -> float | None:
    """A gauge value fit for JSON: histograms and NaN/±Inf (e.g. a health ratio with no
    components) become None, which every renderer shows as "n/a"."""
    if isinstance(value, HistogramValue) or not math.isfinite(value):
        return None
    return float(value)


def _by_metric(samples: Iterable[Sample]) -> dict[str, list[Sample]]:
    grouped: dict[str, list[Sample]] = {}
    for sample in samples:
        grouped.setdefault(sample.metric, []).append(sample)
    return grouped


def _components(grouped: Mapping[str, list[Sample]]) -> list[ComponentStatus]:
    fields: dict[tuple[str, str], dict[str, object]] = {}

    def entry(sample: Sample) -> dict[str, object]:
        key = (sample.labels.get("component", ""), sample.labels.get("type", ""))
        return fields.setdefault(key, {"name": key[0], "type": key[1]})

    for s in grouped.get("implmon_component_info", []):
        entry(s)["version"] = s.labels.get("version", "")
    for s in grouped.get("implmon_component_up", []):
        up = _number(s.value)
        if up is not None:
            entry(s)["state"] = "up" if up >= 1 else "down"
    for s in grouped.get("implmon_component_health_status", []):
        if _number(s.value) == 1:
            entry(s)["health"] = s.labels.get("status", "")
    for s in grouped.get("implmon_component_probe_success", []):
        ok = _number(s.value)
        entry(s)["probe_success"] = None if ok is None else ok >= 1
    for s in grouped.get("implmon_component_probe_duration_seconds", []):
        entry(s)["probe_duration_seconds"] = _number(s.value)
    for s in grouped.get("implmon_component_probe_http_status_code", []):
        code = _number(s.value)
        entry(s)["http_status"] = None if code is None else int(code)
    for s in grouped.get("implmon_component_consecutive_failures", []):
        failures = _number(s.value)
        entry(s)["consecutive_failures"] = None if failures is None else int(failures)
    # Down first: the page is read top to bottom by someone looking for what is broken.
    order = {"down": 0, "unknown": 1, "up": 2}
    statuses = [ComponentStatus.model_validate(f) for f in fields.values()]
    return sorted(statuses, key=lambda c: (order[c.state], c.type, c.name))


def _tests(grouped: Mapping[str, list[Sample]]) -> list[TestSuiteStatus]:
    suites: dict[str, dict[str, int]] = {}
    for s in grouped.get("implmon_quality_tests", []):
        count = _number(s.value)
        result = s.labels.get("result", "")
        if count is not None and result in ("passed", "failed", "error", "skipped"):
            suites.setdefault(s.labels.get("suite", ""), {})[result] = int(count)
    return [TestSuiteStatus(suite=name, **counts) for name, counts in sorted(suites.items())]


def _benchmarks(
    grouped: Mapping[str, list[Sample]], findings: Sequence[Finding], tolerance: float
) -> list[BenchmarkStatus]:
    flagged = {f.labels["benchmark"] for f in findings if "benchmark" in f.labels}
    ratios = {
        s.labels.get("benchmark", ""): _number(s.value)
        for s in grouped.get("implmon_performance_regression_ratio", [])
    }
    medians = {
        s.labels.get("benchmark", ""): _number(s.value)
        for s in grouped.get("implmon_performance_benchmark_seconds", [])
        if s.labels.get("stat") == "median"
    }
    # The regression analyzer's verdict, where it runs: it requires the ratio over its
    # tolerance for N runs in a row, so one noisy run is not reported as a regression here.
    detected = {
        s.labels.get("benchmark", ""): _number(s.value) == 1
        for s in grouped.get("implmon_performance_regression_detected", [])
    }
    result = []
    for name in sorted(ratios.keys() | medians.keys()):
        ratio = ratios.get(name)
        if name in detected:
            regressed = detected[name] or name in flagged
        else:
            regressed = name in flagged or (ratio is not None and ratio > 1 + tolerance)
        result.append(
            BenchmarkStatus(
                benchmark=name,
                regression_ratio=ratio,
                median_seconds=medians.get(name),
                regressed=regressed,
            )
        )
    # Regressions first, worst first.
    return sorted(result, key=lambda b: (not b.regressed, -(b.regression_ratio or 0.0)))


_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


def _findings(findings: Sequence[Finding]) -> list[FindingStatus]:
    ordered = sorted(
        findings, key=lambda f: (_SEVERITY_ORDER.get(f.severity, 3), f.alertname, f.key)
    )
    return [
        FindingStatus(
            alertname=f.alertname,
            severity=str(f.severity),
            monitoring_type=str(f.monitoring_type),
            summary=f.summary,
            description=f.description,
            labels=dict(f.labels),
            runbook=f.runbook_url,
        )
        for f in ordered
    ]


def _collectors(snapshot: Snapshot) -> list[CollectorStatus]:
    return [
        CollectorStatus(
            name=name,
            success=success,
            duration_seconds=duration,
            # The monitor uses 0 for "never succeeded"; say so instead of showing 1970.
            last_success_timestamp=last_success or None,
            error=error,
        )
        for name, (success, duration, last_success, error) in sorted(snapshot.collectors.items())
    ]


def _run(event: Event, default_time: float) -> PipelineRun | None:
    if isinstance(event, BuildEvent):
        target = str(event.build_type)
    elif isinstance(event, DeploymentEvent):
        target = str(event.environment)
    else:
        return None
    return PipelineRun(
        kind=event.kind,
        id=event.id,
        timestamp=event.time(default_time),
        target=target,
        outcome=str(event.outcome),
        version=event.version or "",
        duration_seconds=event.duration_seconds,
    )


def _status(problems: Mapping[str, Sequence[object]], findings: Sequence[FindingStatus]) -> Status:
    severities = {f.severity for f in findings}
    if Severity.CRITICAL in severities:
        return "critical"
    if Severity.WARNING in severities or any(problems.values()):
        return "degraded"
    return "ok"


def build_report(
    snapshot: Snapshot | None,
    events: Iterable[tuple[float, Event]] = (),
    *,
    period: Period = Period.DAILY,
    now: float,
    events_available: bool | None = None,
    events_error: str = "",
    regression_tolerance: float = DEFAULT_REGRESSION_TOLERANCE,
) -> Report:
    """Build a report from the latest snapshot (None before the first cycle) and pipeline
    events, each paired with the time the exporter received it (what the store keeps; it is the
    event's time when the event carries none). Events outside the window, validations and
    incidents are ignored, so a caller may pass more than the window. ``events_available`` says
    whether an event store answered; it defaults to "some events were passed"."""
    window_start = now - period.seconds
    runs = [
        run
        for run in (_run(event, received) for received, event in events)
        if run is not None and window_start <= run.timestamp <= now
    ]
    runs.sort(key=lambda r: r.timestamp, reverse=True)
    counts: dict[tuple[Literal["build", "deployment"], str, str], int] = {}
    for run in runs:
        key = (run.kind, run.target, run.outcome)
        counts[key] = counts.get(key, 0) + 1
    pipeline = {
        "pipeline_counts": [
            OutcomeCount(kind=k, target=t, outcome=o, count=n)
            for (k, t, o), n in sorted(counts.items())
        ],
        "builds": [r for r in runs if r.kind == "build"][:RECENT_LIMIT],
        "deployments": [r for r in runs if r.kind == "deployment"][:RECENT_LIMIT],
        "events_available": bool(runs) if events_available is None else events_available,
        "events_error": events_error,
    }
    base = {
        "generated_at": now,
        "period": period,
        "review": period.review,
        "window_start": window_start,
        "window_end": now,
    }
    if snapshot is None:
        return Report.model_validate({**base, **pipeline, "status": "unknown"})

    grouped = _by_metric(snapshot.samples)
    health = grouped.get("implmon_system_health_ratio", [])
    components = _components(grouped)
    gates = sorted(
        (
            GateStatus(
                gate=s.labels.get("gate", ""),
                build_type=s.labels.get("build_type", ""),
                passed=_number(s.value) == 1,
            )
            for s in grouped.get("implmon_quality_gate_passed", [])
        ),
        key=lambda g: (g.passed, g.gate, g.build_type),
    )
    coverage = sorted(
        (
            CoverageStatus(
                component=s.labels.get("component", ""), kind=s.labels.get("kind", ""), ratio=r
            )
            for s in grouped.get("implmon_quality_coverage_ratio", [])
            if (r := _number(s.value)) is not None
        ),
        key=lambda c: (c.component, c.kind),
    )
    benchmarks = _benchmarks(grouped, snapshot.findings, regression_tolerance)
    findings = _findings(snapshot.findings)
    collectors = _collectors(snapshot)
    problems: dict[str, Sequence[object]] = {
        "components down": [c for c in components if c.state == "down"],
        "gates failed": [g for g in gates if not g.passed],
        "regressions": [b for b in benchmarks if b.regressed],
        "collectors failed": [c for c in collectors if not c.success],
    }
    return Report.model_validate(
        {
            **base,
            **pipeline,
            "status": _status(problems, findings),
            "last_cycle_timestamp": snapshot.timestamp,
            "system_health_ratio": _number(health[0].value) if health else None,
            "components": components,
            "quality_gates": gates,
            "tests": _tests(grouped),
            "coverage": coverage,
            "benchmarks": benchmarks,
            "findings": findings,
            "collectors": collectors,
        }
    )


# --- rendering: shared helpers ----------------------------------------------------------------


def _when(ts: float | None) -> str:
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    delta = max(0.0, now - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{delta / size:.0f}{unit} ago"
    return f"{delta:.0f}s ago"


def _seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    if value < 120:
        return f"{value:.2f} s"
    return f"{value / 60:.1f} min"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


PIPELINE_HEADER = ("Kind", "Build type / environment", "Runs", "Succeeded", "Success rate")


def _pipeline_summary(report: Report) -> list[tuple[str, str, int, int, str]]:
    """Per kind and target: runs, successful runs and success rate over the window."""
    rates: dict[tuple[str, str], tuple[int, int]] = {}
    for c in report.pipeline_counts:
        ok, total = rates.get((c.kind, c.target), (0, 0))
        succeeded = c.count if c.outcome == "success" else 0
        rates[(c.kind, c.target)] = (ok + succeeded, total + c.count)
    return [
        (kind, target, total, ok, _ratio(ok / total))
        for (kind, target), (ok, total) in sorted(rates.items())
    ]


def render_json(report: Report) -> str:
    """The report as indented JSON (the body of ``GET /api/v1/report``)."""
    return report.model_dump_json(indent=2)


# --- Markdown (CI comments) -------------------------------------------------------------------

# Hidden marker so a CI job can find and update its previous comment instead of adding one.
MARKDOWN_MARKER = "<!-- implmon-report -->"
# A CI comment should stay short: longer lists end in "... and N more".
MARKDOWN_ROWS = 15


def _md(text: object) -> str:
    """A table cell: pipes and newlines would break the row; HTML-like text is escaped so a
    finding's summary cannot inject markup into the rendered comment."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ").strip() or " "


def _md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows[:MARKDOWN_ROWS]]
    if len(rows) > MARKDOWN_ROWS:
        lines.append(f"\n… and {len(rows) - MARKDOWN_ROWS} more")
    return [*lines, ""]


def render_markdown(report: Report) -> str:
    """GitHub/GitLab-flavoured Markdown for a CI comment: status first, then only what needs
    attention in full (problems), and compact summaries of the rest."""
    now = report.generated_at
    out = [
        MARKDOWN_MARKER,
        f"## implmon: {report.review}: {report.status.upper()}",
        "",
        f"Window {_when(report.window_start)} to {_when(report.window_end)} · "
        f"last monitor cycle {_ago(report.last_cycle_timestamp, now)} · "
        f"system health {_ratio(report.system_health_ratio)}",
        "",
    ]
    up = sum(1 for c in report.components if c.state == "up")
    out.append(f"### Components: {up}/{len(report.components)} up")
    out.append("")
    header = ["Component", "Type", "Version", "State", "Health", "Failures in a row"]

    def rows(components: Sequence[ComponentStatus]) -> list[list[object]]:
        return [
            [c.name, c.type, c.version or "n/a", c.state, c.health or "n/a",
             c.consecutive_failures or 0]
            for c in components
        ]  # fmt: skip

    not_up = [c for c in report.components if c.state != "up"]
    if not_up:
        out += _md_table(header, rows(not_up))
    if report.components:
        # Folded: a reviewer opens it when needed, the comment stays short.
        out += ["<details><summary>All components</summary>", ""]
        out += _md_table(header, rows(report.components))
        out += ["</details>", ""]
    if report.findings:
        out += ["### Active findings", ""]
        out += _md_table(
            ["Severity", "Type", "Alert", "Summary", "Runbook"],
            [
                [
                    f.severity,
                    f.monitoring_type,
                    f.alertname,
                    f.summary,
                    f"[runbook]({f.runbook})" if f.runbook.startswith("http") else f.runbook,
                ]
                for f in report.findings
            ],
        )
    if report.quality_gates:
        out += ["### Quality gates", ""]
        out += _md_table(
            ["Gate", "Build type", "Result"],
            [
                [g.gate, g.build_type, "passed" if g.passed else "**FAILED**"]
                for g in report.quality_gates
            ],
        )
    if report.tests or report.coverage:
        out += ["### Tests and coverage", ""]
        out += (
            _md_table(
                ["Suite", "Passed", "Failed", "Errors", "Skipped"],
                [[t.suite, t.passed, t.failed, t.error, t.skipped] for t in report.tests],
            )
            if report.tests
            else []
        )
        if report.coverage:
            out += [
                "Coverage: "
                + ", ".join(
                    f"{_md(c.component)} {c.kind} {_ratio(c.ratio)}" for c in report.coverage
                ),
                "",
            ]
    if report.benchmarks:
        regressed = [b for b in report.benchmarks if b.regressed]
        out += [f"### Benchmarks: {len(regressed)} of {len(report.benchmarks)} regressed", ""]
        out += _md_table(
            ["Benchmark", "Median", "vs baseline", "Regressed"],
            [
                [
                    b.benchmark,
                    _seconds(b.median_seconds),
                    _times(b.regression_ratio),
                    "**yes**" if b.regressed else "no",
                ]
                for b in report.benchmarks
            ],
        )
    if report.events_available:
        out += ["### Builds and deployments in the window", ""]
        out += _md_table(PIPELINE_HEADER, _pipeline_summary(report))
        failed = [r for r in (*report.builds, *report.deployments) if r.outcome != "success"]
        if failed:
            out += ["Recent runs that did not succeed:", ""]
            out += _md_table(
                ["When", "Kind", "Target", "Outcome", "Version", "Id"],
                [
                    [_when(r.timestamp), r.kind, r.target, r.outcome, r.version, r.id]
                    for r in failed
                ],
            )
    elif report.events_error:
        out += [f"Builds and deployments: {_md(report.events_error)}", ""]
    failed_collectors = [c for c in report.collectors if not c.success]
    if failed_collectors:
        out += ["### Collectors failing", ""]
        out += _md_table(
            ["Collector", "Last success", "Error"],
            [[c.name, _ago(c.last_success_timestamp, now), c.error] for c in failed_collectors],
        )
    out.append(f"<sub>implmon {_md(report.exporter_version)} · generated {_when(now)}</sub>")
    return "\n".join(out) + "\n"


# --- HTML (the status page) -------------------------------------------------------------------

_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
  margin:0;color:#212529;background:#fff;font-size:14px}
header{background:#343a40;color:#fff;padding:10px 20px;display:flex;gap:24px;align-items:baseline}
header a{color:#ddd;text-decoration:none}header a:hover{color:#fff}
header .brand{font-size:18px;font-weight:600;color:#fff}
main{padding:8px 20px 32px;max-width:1400px}
h1{font-size:22px;font-weight:500;margin:16px 0 4px}
h2{font-size:17px;font-weight:500;margin:24px 0 8px;border-bottom:1px solid #dee2e6;
  padding-bottom:4px}
.meta{color:#6c757d;margin:0 0 8px}
table{border-collapse:collapse;width:100%;margin-bottom:8px}
th,td{text-align:left;padding:6px 10px;border-top:1px solid #dee2e6;vertical-align:top}
thead th{border-bottom:2px solid #dee2e6;border-top:0;font-weight:600}
tbody tr:nth-child(odd){background:#f8f9fa}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:2px 7px;border-radius:4px;font-size:12px;font-weight:600;
  color:#fff;text-transform:uppercase;letter-spacing:.02em}
.ok{background:#28a745}.bad{background:#dc3545}.warn{background:#e0a800;color:#212529}
.unknown,.info{background:#6c757d}
.summary{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.tile{border:1px solid #dee2e6;border-radius:4px;padding:8px 14px;flex:1 1 0;min-width:120px}
.tile .label{color:#6c757d;font-size:12px}.tile .value{font-size:20px;font-weight:500}
.empty{color:#6c757d;font-style:italic;margin:4px 0 8px}
.error{color:#dc3545}
code{font-size:12px;background:#f1f3f5;padding:1px 4px;border-radius:3px}
nav.periods a{margin-right:10px}
nav.periods a.current{font-weight:600;color:#212529;text-decoration:none}
footer{color:#6c757d;font-size:12px;padding:0 20px 20px}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _badge(text: str, kind: str) -> str:
    return f'<span class="badge {_e(kind)}">{_e(text)}</span>'


_STATE_CLASS = {
    "up": "ok", "ok": "ok", "pass": "ok", "passed": "ok", "success": "ok",
    "down": "bad", "fail": "bad", "failed": "bad", "failure": "bad", "critical": "bad",
    "warn": "warn", "warning": "warn", "degraded": "warn", "cancelled": "warn",
}  # fmt: skip


def _state(text: str) -> str:
    return _badge(text or "n/a", _STATE_CLASS.get(text, "unknown"))


def _table(
    section_id: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    empty: str,
    numeric: Sequence[int] = (),
) -> str:
    """A table whose cells are already-escaped HTML; ``empty`` is shown when there are none."""
    if not rows:
        return f'<p class="empty" id="{_e(section_id)}">{_e(empty)}</p>'
    head = "".join(
        f"<th{' class=num' if i in numeric else ''}>{_e(h)}</th>" for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in numeric else ''}>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return (
        f'<table id="{_e(section_id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def _link(href: str, text: str) -> str:
    # Only web links become anchors: a runbook value like "javascript:..." stays inert text.
    if href.startswith(("http://", "https://", "/")):
        return f'<a href="{_e(href)}">{_e(text)}</a>'
    return _e(href)


def _tile(label: str, value_html: str) -> str:
    return (
        f'<div class="tile"><div class="label">{_e(label)}</div>'
        f'<div class="value">{value_html}</div></div>'
    )


def render_html(report: Report, *, refresh_seconds: float | None = 30.0) -> str:
    """The status page: a plain, JavaScript-free page in the manner of Prometheus's /targets.

    Every value from the report passes through :func:`html.escape`; ``refresh_seconds`` adds a
    meta refresh (None for a static file such as a CI artifact).
    """
    now = report.generated_at
    refresh = (
        f'<meta http-equiv="refresh" content="{max(1, round(refresh_seconds))}">'
        if refresh_seconds
        else ""
    )
    up = sum(1 for c in report.components if c.state == "up")
    failed_gates = sum(1 for g in report.quality_gates if not g.passed)
    regressed = sum(1 for b in report.benchmarks if b.regressed)
    tiles = [
        _tile("Status", _state(report.status)),
        _tile("System health", _e(_ratio(report.system_health_ratio))),
        _tile("Components up", f"{up} / {len(report.components)}"),
        _tile("Active findings", str(len(report.findings))),
        _tile("Quality gates failed", f"{failed_gates} / {len(report.quality_gates)}"),
        _tile("Regressed benchmarks", f"{regressed} / {len(report.benchmarks)}"),
        _tile("Last cycle", _e(_ago(report.last_cycle_timestamp, now))),
    ]
    periods = " ".join(
        f'<a href="?period={p.value}"{" class=current" if p is report.period else ""}>'
        f"{_e(p.review)}</a>"
        for p in Period
    )
    sections: list[str] = []

    def section(title: str, section_id: str, content: str) -> None:
        sections.append(f'<h2 id="{_e(section_id)}-title">{_e(title)}</h2>{content}')

    section(
        "Components",
        "components",
        _table(
            "components-table",
            [
                "Component",
                "Type",
                "Version",
                "State",
                "Health",
                "Probe",
                "HTTP",
                "Failures in a row",
            ],
            [
                [
                    _e(c.name),
                    _e(c.type),
                    _e(c.version or "n/a"),
                    _state(c.state),
                    _state(c.health),
                    _e(_seconds(c.probe_duration_seconds)),
                    _e(c.http_status if c.http_status else "n/a"),
                    _e(c.consecutive_failures if c.consecutive_failures is not None else "n/a"),
                ]
                for c in report.components
            ],
            "No components are monitored yet.",
            numeric=(5, 6, 7),
        ),
    )
    section(
        "Active findings",
        "findings",
        _table(
            "findings-table",
            ["Severity", "Monitoring type", "Alert", "Summary", "Labels", "Runbook"],
            [
                [
                    _state(f.severity),
                    _e(f.monitoring_type),
                    _e(f.alertname),
                    _e(f.summary)
                    + (f"<br><small>{_e(f.description)}</small>" if f.description else ""),
                    " ".join(f"<code>{_e(k)}={_e(v)}</code>" for k, v in sorted(f.labels.items())),
                    _link(f.runbook, "runbook") if f.runbook else "",
                ]
                for f in report.findings
            ],
            "No active findings.",
        ),
    )
    section(
        "Quality gates",
        "gates",
        _table(
            "gates-table",
            ["Gate", "Build type", "Result"],
            [
                [_e(g.gate), _e(g.build_type), _state("passed" if g.passed else "failed")]
                for g in report.quality_gates
            ],
            "No quality gate has been evaluated.",
        ),
    )
    if report.tests or report.coverage:
        section(
            "Tests and coverage",
            "tests",
            _table(
                "tests-table",
                ["Suite", "Passed", "Failed", "Errors", "Skipped"],
                [
                    [_e(t.suite), str(t.passed), str(t.failed), str(t.error), str(t.skipped)]
                    for t in report.tests
                ],
                "No test reports.",
                numeric=(1, 2, 3, 4),
            )
            + _table(
                "coverage-table",
                ["Component", "Kind", "Coverage"],
                [[_e(c.component), _e(c.kind), _e(_ratio(c.ratio))] for c in report.coverage],
                "No coverage reports.",
                numeric=(2,),
            ),
        )
    section(
        "Benchmarks",
        "benchmarks",
        _table(
            "benchmarks-table",
            ["Benchmark", "Median", "Ratio to baseline", "Regression"],
            [
                [
                    _e(b.benchmark),
                    _e(_seconds(b.median_seconds)),
                    _e(_times(b.regression_ratio)),
                    _state("failed" if b.regressed else "ok"),
                ]
                for b in report.benchmarks
            ],
            "No benchmark results.",
            numeric=(1, 2),
        ),
    )
    if report.events_available:

        def runs(rows: Sequence[PipelineRun], what: str) -> str:
            return _table(
                f"{what}s-table",
                [
                    "Finished",
                    "Id",
                    "Build type" if what == "build" else "Environment",
                    "Outcome",
                    "Version",
                    "Duration",
                ],
                [
                    [
                        _e(_when(r.timestamp)),
                        _e(r.id),
                        _e(r.target),
                        _state(r.outcome),
                        _e(r.version or "n/a"),
                        _e(_seconds(r.duration_seconds)),
                    ]
                    for r in rows
                ],
                f"No {what}s in this window.",
                numeric=(5,),
            )

        section(
            "Builds and deployments in this window",
            "pipeline",
            _table(
                "pipeline-table",
                PIPELINE_HEADER,
                [[_e(cell) for cell in row] for row in _pipeline_summary(report)],
                "No builds or deployments in this window.",
                numeric=(2, 3, 4),
            ),
        )
        section("Recent builds", "builds", runs(report.builds, "build"))
        section("Recent deployments", "deployments", runs(report.deployments, "deployment"))
    else:
        section(
            "Builds and deployments",
            "pipeline",
            '<p class="empty" id="pipeline-unavailable">'
            + _e(report.events_error or "No event store is connected.")
            + "</p>",
        )
    section(
        "Collectors",
        "collectors",
        _table(
            "collectors-table",
            ["Collector", "State", "Duration", "Last success", "Error"],
            [
                [
                    _e(c.name),
                    _state("ok" if c.success else "failed"),
                    _e(_seconds(c.duration_seconds)),
                    _e(_ago(c.last_success_timestamp, now)),
                    f'<span class="error">{_e(c.error)}</span>' if c.error else "",
                ]
                for c in report.collectors
            ],
            "No collector has run yet.",
            numeric=(2,),
        ),
    )
    notice = (
        '<p class="empty" id="no-cycle">No monitor cycle has completed yet.</p>'
        if report.status == "unknown"
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{refresh}
<title>implmon status: {_e(report.status)}</title>
<style>{_CSS}</style>
</head>
<body>
<header><span class="brand">implmon</span>
<a href="/">Status</a><a href="/metrics">Metrics</a>
<a href="/api/v1/report?period={_e(report.period.value)}">Report JSON</a>
</header>
<main>
<h1>{_e(report.review)}</h1>
<p class="meta">Last monitor cycle {_e(_when(report.last_cycle_timestamp))} ·
window {_e(_when(report.window_start))} to {_e(_when(report.window_end))}</p>
<nav class="periods">{periods}</nav>
{notice}
<div class="summary">{"".join(tiles)}</div>
{"".join(sections)}
</main>
<footer>implmon {_e(report.exporter_version)} · generated {_e(_when(now))}</footer>
</body>
</html>
"""


# --- routes ---------------------------------------------------------------------------------


class SnapshotSource(Protocol):
    """Returns the monitor's latest snapshot, or None before the first cycle completes."""

    def __call__(self) -> Snapshot | None: ...


class EventSource(Protocol):
    """Returns ``(received, event)`` pairs for the pipeline events of the window starting at
    ``since`` (Unix seconds); it may return more. Called in a worker thread, so it may block
    (read SQLite)."""

    def __call__(self, since: float) -> Sequence[tuple[float, Event]]: ...


class StoreEvents:
    """An :class:`EventSource` over an :class:`~implmon.store.EventStore` (or anything with its
    ``events(after_seq=, limit=)`` method).

    The store lists events by sequence number, not by time, so this keeps the builds and
    deployments it has read (at most ``max_runs``, newest kept) and reads only what was added
    since the previous call. The first call reads the whole store once; retention bounds it.
    """

    PAGE = 1000

    def __init__(self, store: _ReadableStore, *, max_runs: int = 10_000) -> None:
        self._store = store
        self._runs: deque[tuple[float, Event]] = deque(maxlen=max_runs)
        self._after_seq = 0
        # Two page loads may read at once from worker threads; one reader at a time keeps
        # ``_after_seq`` and the cache consistent.
        self._lock = threading.Lock()

    def __call__(self, since: float) -> list[tuple[float, Event]]:
        with self._lock:
            while True:
                page = self._store.events(after_seq=self._after_seq, limit=self.PAGE)
                for seq, received, event in page:
                    self._after_seq = seq
                    if isinstance(event, BuildEvent | DeploymentEvent):
                        self._runs.append((received, event))
                if len(page) < self.PAGE:
                    break
            return [(r, e) for r, e in self._runs if e.time(r) >= since]


class _ReadableStore(Protocol):
    def events(
        self, *, after_seq: int = 0, limit: int = 1000
    ) -> list[tuple[int, float, Event]]: ...


@dataclass(frozen=True, slots=True)
class ReportOptions:
    snapshot: SnapshotSource
    events: EventSource | None = None
    clock: Callable[[], float] = time.time
    # Seconds, or a function returning them at each request (a reload may change the interval).
    refresh_seconds: float | Callable[[], float] | None = 30.0
    regression_tolerance: float = DEFAULT_REGRESSION_TOLERANCE


REPORT_OPTIONS = web.AppKey("implmon_report_options", ReportOptions)


def _period(request: web.Request) -> Period:
    raw = request.query.get("period", Period.DAILY.value)
    try:
        return Period(raw)
    except ValueError:
        choices = ", ".join(p.value for p in Period)
        message = f"query parameter period: must be one of {choices}, not {raw!r}"
        raise web.HTTPBadRequest(
            text=json.dumps({"error": message}), content_type="application/json"
        ) from None


async def _report(request: web.Request) -> Report:
    options = request.app[REPORT_OPTIONS]
    period = _period(request)
    now = options.clock()
    events: Sequence[tuple[float, Event]] = ()
    error = ""
    if options.events is not None:
        try:
            # The store reads SQLite: off the event loop, so scrapes are not held up.
            events = await asyncio.to_thread(options.events, now - period.seconds)
        except (sqlite3.Error, OSError) as exc:
            # The page still shows the snapshot; it says the pipeline part is missing and why.
            error = f"event store unreadable: {type(exc).__name__}: {exc}"
            log.warning("report: %s", error)
    return build_report(
        options.snapshot(),
        events,
        period=period,
        now=now,
        events_available=options.events is not None and not error,
        events_error=error,
        regression_tolerance=options.regression_tolerance,
    )


async def _json_handler(request: web.Request) -> web.Response:
    return web.Response(text=render_json(await _report(request)), content_type="application/json")


async def _html_handler(request: web.Request) -> web.Response:
    options = request.app[REPORT_OPTIONS]
    refresh = options.refresh_seconds
    page = render_html(
        await _report(request), refresh_seconds=refresh() if callable(refresh) else refresh
    )
    return web.Response(text=page, content_type="text/html")


def setup_routes(
    app: web.Application,
    snapshot: SnapshotSource,
    *,
    events: EventSource | None = None,
    refresh_seconds: float | Callable[[], float] | None = 30.0,
    regression_tolerance: float = DEFAULT_REGRESSION_TOLERANCE,
    clock: Callable[[], float] = time.time,
) -> None:
    """Serve the status page at ``GET /`` and the JSON report at ``GET /api/v1/report``.

    Both take ``?period=daily|weekly|monthly|quarterly`` (default daily). ``snapshot`` returns
    the monitor's latest snapshot; ``events`` (optional) returns pipeline events since a time.
    """
    app[REPORT_OPTIONS] = ReportOptions(
        snapshot=snapshot,
        events=events,
        refresh_seconds=refresh_seconds,
        regression_tolerance=regression_tolerance,
        clock=clock,
    )
    app.router.add_get("/", _html_handler, name="status_page")
    app.router.add_get("/api/v1/report", _json_handler, name="report")
