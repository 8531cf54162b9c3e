"""Every metric family implmon exposes, in one place.

Each family is a :class:`MetricSpec`: its full name (counters end in ``_total``), type, HELP text
and label names. Collectors, analyzers and providers emit :class:`Sample` values naming a family
from :data:`CATALOGUE`; the monitor checks them against the spec (unknown family, wrong labels or a
non-numeric value make the sample "garbage" and fail its collector).

HELP texts say "(last cycle)" when the value is computed by the monitor loop rather than at
scrape time: every family here is, since scrapes serve the snapshot of the last completed cycle.

>>> spec = CATALOGUE["implmon_component_up"]
>>> spec.labels
('component', 'type')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "CATALOGUE",
    "HistogramValue",
    "MetricSpec",
    "MetricType",
    "Sample",
    "define",
]


class MetricType(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric family: name, type, HELP text and label names (in exposition order)."""

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.type is MetricType.COUNTER and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name} must end in _total")
        if self.type is not MetricType.COUNTER and self.name.endswith("_total"):
            raise ValueError(f"{self.type} {self.name} must not end in _total")

    @property
    def family_name(self) -> str:
        """The OpenMetrics family name (a counter's name without ``_total``)."""
        if self.type is MetricType.COUNTER:
            return self.name[: -len("_total")]
        return self.name


@dataclass(frozen=True, slots=True)
class HistogramValue:
    """Cumulative bucket counts (one per ``spec.buckets`` bound, then +Inf), sum and count.

    ``exemplars`` maps a bucket index to ``(labels, value, timestamp)``; it is rendered only in
    OpenMetrics.
    """

    buckets: tuple[float, ...]
    sum: float
    count: float
    exemplars: Mapping[int, tuple[Mapping[str, str], float, float | None]] = field(
        default_factory=dict
    )


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one series, as components emit it.

    >>> Sample("implmon_system_health_ratio", {}, 1.0)
    Sample(metric='implmon_system_health_ratio', labels={}, value=1.0)
    """

    metric: str
    labels: Mapping[str, str]
    value: float | HistogramValue


CATALOGUE: dict[str, MetricSpec] = {}


def define(
    name: str,
    type_: MetricType,
    help_: str,
    labels: Iterable[str] = (),
    buckets: Iterable[float] = (),
) -> MetricSpec:
    """Add a family to the catalogue (plugins call this for families of their own)."""
    spec = MetricSpec(name, type_, help_, tuple(labels), tuple(buckets))
    existing = CATALOGUE.get(name)
    if existing is not None and existing != spec:
        raise ValueError(f"metric {name} is already defined differently")
    CATALOGUE[name] = spec
    return spec


G, C, H = MetricType.GAUGE, MetricType.COUNTER, MetricType.HISTOGRAM
DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
)

# --- component monitoring -------------------------------------------------------------------
define(
    "implmon_component_info",
    G,
    "Component identity from config or its health endpoint; always 1 (last cycle).",
    ("component", "type", "version"),
)
define(
    "implmon_component_up",
    G,
    "1 unless the component failed its last N consecutive health checks (last cycle).",
    ("component", "type"),
)
define(
    "implmon_component_probe_success",
    G,
    "1 if the last health check of the component passed or warned (last cycle).",
    ("component", "type"),
)
define(
    "implmon_component_health_status",
    G,
    "1 for the health status (pass, warn, fail) the component last reported (last cycle).",
    ("component", "type", "status"),
)
define(
    "implmon_component_probe_duration_seconds",
    G,
    "Duration of the last health check of the component (last cycle).",
    ("component", "type"),
)
define(
    "implmon_component_probe_http_status_code",
    G,
    "HTTP status code of the last health check, 0 if none was received (last cycle).",
    ("component", "type"),
)
define(
    "implmon_component_probes_total",
    C,
    "Health checks of the component by result: success, failure (last cycle).",
    ("component", "type", "result"),
)
define(
    "implmon_component_consecutive_failures",
    G,
    "Health checks the component has failed in a row (last cycle).",
    ("component", "type"),
)
define(
    "implmon_pipeline_component_up",
    G,
    "1 if the exporter's own pipeline component (collector, processor, analyzer, reporter) "
    "ran without error in the last cycle (last cycle).",
    ("component", "role", "kind"),
)
define(
    "implmon_components_created_total",
    C,
    "Pipeline components the factory created, by component type and outcome (last cycle).",
    ("type", "outcome"),
)

# --- system monitoring ----------------------------------------------------------------------
define(
    "implmon_system_health_ratio",
    G,
    "Fraction of monitored components that are up, 0 to 1 (last cycle).",
)
define(
    "implmon_system_components",
    G,
    "Monitored components by type and state: up, down (last cycle).",
    ("type", "state"),
)
define(
    "implmon_host_cpu_usage_ratio",
    G,
    "Host CPU busy fraction over the last cycle, 0 to 1 (last cycle).",
)
define("implmon_host_cpus", G, "Logical CPUs of the host (last cycle).")
define("implmon_host_load1", G, "Host 1-minute load average (last cycle).")
define("implmon_host_load5", G, "Host 5-minute load average (last cycle).")
define("implmon_host_load15", G, "Host 15-minute load average (last cycle).")
define("implmon_host_memory_total_bytes", G, "Host memory in total (last cycle).")
define(
    "implmon_host_memory_available_bytes",
    G,
    "Host memory available to new processes without swapping (last cycle).",
)
define("implmon_host_filesystem_size_bytes", G, "Filesystem size (last cycle).", ("mountpoint",))
define(
    "implmon_host_filesystem_free_bytes",
    G,
    "Filesystem space free for unprivileged users (last cycle).",
    ("mountpoint",),
)

# --- quality monitoring ---------------------------------------------------------------------
define(
    "implmon_quality_tests",
    G,
    "Tests in the latest report of each suite, by result: passed, failed, error, skipped "
    "(last cycle).",
    ("suite", "result"),
)
define(
    "implmon_quality_coverage_ratio",
    G,
    "Coverage ratio 0 to 1 from the latest coverage report, by kind: line, branch (last cycle).",
    ("component", "kind"),
)
define(
    "implmon_quality_findings",
    G,
    "Static-analysis and security findings in the latest reports (last cycle).",
    ("tool", "severity", "category"),
)
define(
    "implmon_quality_gate_passed",
    G,
    "1 if the quality gate passed for the build type, 0 if it failed (last cycle).",
    ("gate", "build_type"),
)
define(
    "implmon_quality_report_timestamp_seconds",
    G,
    "Time the latest report of the source was written, Unix seconds (last cycle).",
    ("source",),
)
define(
    "implmon_quality_report_age_seconds",
    G,
    "Seconds since the latest report of the source was written (last cycle).",
    ("source",),
)
define(
    "implmon_quality_report_files",
    G,
    "Report files the source's path globs matched (last cycle).",
    ("source",),
)
define(
    "implmon_quality_report_stale",
    G,
    "1 while a report file of the source is unreadable and its last good values are served "
    "instead (last cycle).",
    ("source",),
)
define(
    "implmon_quality_report_errors_total",
    C,
    "Report file versions of the source that could not be used: malformed, empty, truncated, "
    "too big or hostile (last cycle).",
    ("source",),
)
define(
    "implmon_quality_suite_duration_seconds",
    G,
    "Duration of the latest run of each test suite (last cycle).",
    ("suite",),
)
define(
    "implmon_quality_test_failed",
    G,
    "Per-test breakdown, only when configured and capped: 1 if the test failed or errored "
    "(last cycle).",
    ("suite", "test"),
)
define(
    "implmon_quality_test_duration_seconds",
    G,
    "Per-test breakdown, only when configured and capped: duration of the test (last cycle).",
    ("suite", "test"),
)
define(
    "implmon_quality_rule_findings",
    G,
    "Findings in the latest static-analysis reports by rule, capped to the most frequent "
    "rules (last cycle).",
    ("tool", "rule", "severity", "category"),
)
define(
    "implmon_quality_gate_violations",
    G,
    "Thresholds of the quality gate the latest reports violate, by build type (last cycle).",
    ("gate", "build_type"),
)
define(
    "implmon_quality_coverage_change_ratio",
    G,
    "Coverage ratio of the latest coverage report minus that of the report before it (last cycle).",
    ("component", "kind"),
)
define(
    "implmon_quality_tests_change",
    G,
    "Tests in the latest report of each suite minus those in the report before it (last cycle).",
    ("suite",),
)

# --- performance monitoring -----------------------------------------------------------------
define(
    "implmon_performance_benchmark_seconds",
    G,
    "Benchmark statistic (min, median, mean, stddev) of the latest run (last cycle).",
    ("benchmark", "stat"),
)
define(
    "implmon_performance_regression_ratio",
    G,
    "Benchmark's stable statistic over its baseline; above 1 is slower (last cycle).",
    ("benchmark",),
)
define(
    "implmon_performance_benchmark_rounds",
    G,
    "Rounds the benchmark's latest run measured (last cycle).",
    ("benchmark",),
)
define(
    "implmon_performance_regression_detected",
    G,
    "1 if the benchmark's regression ratio stayed above 1 + tolerance over the configured "
    "number of consecutive runs (last cycle).",
    ("benchmark",),
)

# --- pipeline (builds, deployments, validations) ----------------------------------------------
define(
    "implmon_builds_total",
    C,
    "Builds by build type and outcome (last cycle).",
    ("build_type", "outcome"),
)
define(
    "implmon_build_duration_seconds",
    H,
    "Build durations by build type (last cycle).",
    ("build_type",),
    DURATION_BUCKETS,
)
define(
    "implmon_deployments_total",
    C,
    "Deployments by environment and outcome (last cycle).",
    ("environment", "outcome"),
)
define(
    "implmon_deployment_duration_seconds",
    H,
    "Deployment durations by environment (last cycle).",
    ("environment",),
    DURATION_BUCKETS,
)
define(
    "implmon_deployment_lead_time_seconds",
    H,
    "Lead time for changes: change time to successful deployment (last cycle).",
    ("environment",),
    (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800, 2592000),
)
define(
    "implmon_validations_total",
    C,
    "Validations by validation type and outcome (last cycle).",
    ("validation_type", "outcome"),
)
# Pipeline figures below are folded from the durable event store (SDK calls and ingested
# events): counters never go backwards across restarts. See implmon.dora for the definitions.
define(
    "implmon_validation_duration_seconds",
    H,
    "Validation durations by validation type (last cycle).",
    ("validation_type",),
    DURATION_BUCKETS,
)
define(
    "implmon_build_last_success_timestamp_seconds",
    G,
    "Time of the latest successful build of the build type, Unix seconds (last cycle).",
    ("build_type",),
)
define(
    "implmon_deployment_last_success_timestamp_seconds",
    G,
    "Time of the latest successful deployment to the environment, Unix seconds (last cycle).",
    ("environment",),
)
define(
    "implmon_deployment_time_to_restore_seconds",
    H,
    "Time to restore: first failed deployment or opened incident of the environment to its "
    "next successful deployment or the incident's resolution (last cycle).",
    ("environment",),
    (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800, 2592000),
)
define(
    "implmon_incidents_total",
    C,
    "Incidents opened against the environment (last cycle).",
    ("environment",),
)
define(
    "implmon_environment_failed",
    G,
    "1 while the environment's last deployment failed or an incident is open and no "
    "successful deployment has restored it yet (last cycle).",
    ("environment",),
)

# --- the exporter itself --------------------------------------------------------------------
define(
    "implmon_collector_success",
    G,
    "1 if the collector's last run succeeded within its deadline (last cycle).",
    ("collector",),
)
define(
    "implmon_collector_duration_seconds",
    G,
    "Duration of the collector's last run (last cycle).",
    ("collector",),
)
define(
    "implmon_collector_last_success_timestamp_seconds",
    G,
    "Time of the collector's last successful run, Unix seconds; its values are stale when "
    "this is older than the last cycle (last cycle).",
    ("collector",),
)
define(
    "implmon_collector_stale",
    G,
    "1 if the collector's values are carried over from an earlier, successful run (last cycle).",
    ("collector",),
)
define(
    "implmon_component_errors_total",
    C,
    "Errors raised by pipeline components (analyzers, processors, reporters) and the alert "
    "stage (last cycle).",
    ("component", "role"),
)
define(
    "implmon_stage_duration_seconds",
    G,
    "Duration of each monitor stage (collect, process, analyze, alert, report) in the last cycle.",
    ("stage",),
)
define(
    "implmon_monitor_cycles_total", C, "Monitor loop cycles by outcome (last cycle).", ("outcome",)
)
define(
    "implmon_monitor_last_cycle_timestamp_seconds",
    G,
    "Time the last monitor cycle completed, Unix seconds (last cycle).",
)
define("implmon_monitor_interval_seconds", G, "Configured monitor loop interval.")
define(
    "implmon_findings",
    G,
    "Active analyzer findings by severity and monitoring type (last cycle).",
    ("severity", "monitoring_type"),
)
# The alert stage (alerter.py), shaped like Prometheus's own prometheus_notifications_* families.
define(
    "implmon_alerts_sent_total",
    C,
    "Alerts (findings) Alertmanager accepted, by Alertmanager base URL (last cycle).",
    ("alertmanager",),
)
define(
    "implmon_alerts_send_errors_total",
    C,
    "Alerts in delivery attempts that failed (refused, timed out, unreachable), by "
    "Alertmanager base URL; each retry counts again (last cycle).",
    ("alertmanager",),
)
define(
    "implmon_alerts_dropped_total",
    C,
    "Alert notifications given up for an Alertmanager, by reason: queue_full (the oldest "
    "queued notification made room) or rejected (a 4xx answer; retrying cannot help) "
    "(last cycle).",
    ("alertmanager", "reason"),
)
define(
    "implmon_alert_queue_length",
    G,
    "Alert notifications waiting to be sent, by Alertmanager base URL (last cycle).",
    ("alertmanager",),
)
define(
    "implmon_alert_queue_capacity",
    G,
    "Capacity of each Alertmanager's alert queue (last cycle).",
    ("alertmanager",),
)
define(
    "implmon_alertmanagers_discovered", G, "Alertmanagers the alert stage sends to (last cycle)."
)
define(
    "implmon_config_last_reload_successful",
    G,
    "1 if the last configuration load or reload succeeded.",
)
define(
    "implmon_config_last_reload_success_timestamp_seconds",
    G,
    "Time of the last successful configuration load, Unix seconds.",
)
define(
    "implmon_ingest_requests_total",
    C,
    "Requests to the event ingest API by HTTP status code, since the process started (last cycle).",
    ("code",),
)
define(
    "implmon_store_events_total",
    C,
    "Events offered to the event store by kind and result: stored, duplicate, conflict, "
    "since the process started (last cycle).",
    ("kind", "result"),
)
define(
    "implmon_store_commits_total",
    C,
    "Group commits of the event store since the process started (last cycle).",
)
define(
    "implmon_store_commit_events",
    H,
    "Events per group commit of the event store (last cycle).",
    (),
    (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
define("implmon_store_events", G, "Events held in the event store (last cycle).")
define(
    "implmon_store_size_bytes",
    G,
    "Size of the event store's database file and its WAL (last cycle).",
)
define(
    "implmon_store_oldest_event_timestamp_seconds",
    G,
    "Receive time of the oldest event in the store, Unix seconds; retention removes older "
    "ones (last cycle).",
)
define(
    "implmon_build_info", G, "implmon build information; always 1.", ("version", "python_version")
)

del G, C, H


def is_valid_value(value: object) -> bool:
    """A sample value the exposition can carry: a real number (NaN and ±Inf included)."""
    if isinstance(value, HistogramValue):
        return True
    return isinstance(value, int | float) and not isinstance(value, bool)
