"""Performance: benchmarks and regressions (code), monitor stage latency (system), probe
latency between components (integration) and host resources (resource).

The seed's four performance areas, one row each. A regression ratio above 1 means slower than
the baseline; the "detected" flag only rises once the regression held over consecutive runs, so
it is the figure to alert on and the ratio the one to read.
"""

from __future__ import annotations

from implmon.dashboards.common import (
    COMPONENT,
    COMPONENT_SELECTOR,
    COMPONENT_TYPE,
    DATASOURCE,
    ENVIRONMENT,
    UID_OVERVIEW,
    UID_PERFORMANCE,
    UID_SYSTEM,
    Dashboard,
    Link,
    Row,
    Target,
    bargauge,
    dashboard_url,
    runbook,
    stat,
    thresholds,
    timeseries,
)

REGRESSION_THRESHOLDS = thresholds("green", (1.1, "orange"), (1.25, "red"))
REGRESSION_RUNBOOK = Link("Runbook: regression", runbook("implmonperformanceregression"))


def build() -> Dashboard:
    """The Performance dashboard."""
    code = Row(
        "Code: benchmarks",
        [
            stat(
                "Regressions detected",
                [Target("sum(implmon_performance_regression_detected)")],
                unit="short",
                thresholds=thresholds("green", (1, "red")),
                description="Benchmarks slower than baseline + tolerance over the configured "
                "number of consecutive runs.",
                links=[REGRESSION_RUNBOOK],
                height=8,
            ),
            bargauge(
                "Regression ratio",
                [Target("implmon_performance_regression_ratio", "{{benchmark}}")],
                unit="percentunit",
                thresholds=REGRESSION_THRESHOLDS,
                description="Each benchmark's stable statistic over its baseline: 100% is the "
                "baseline's speed, 125% a quarter slower.",
                width=8,
                min=0,
                max=2,
                links=[REGRESSION_RUNBOOK],
            ),
            timeseries(
                "Benchmark median",
                [
                    Target(
                        'implmon_performance_benchmark_seconds{stat="median"}',
                        "{{benchmark}}",
                    )
                ],
                unit="s",
                thresholds=thresholds("green", (1, "orange")),
                description="Median time of each benchmark's latest run.",
                min=0,
                show_thresholds=False,
            ),
            timeseries(
                "Benchmark noise",
                [
                    Target(
                        'implmon_performance_benchmark_seconds{stat="stddev"} / ignoring (stat) '
                        'implmon_performance_benchmark_seconds{stat="mean"}',
                        "{{benchmark}}",
                    )
                ],
                unit="percentunit",
                thresholds=thresholds("green", (0.05, "orange"), (0.15, "red")),
                description="Coefficient of variation (stddev / mean): a noisy benchmark makes "
                "its regression ratio unreliable.",
                min=0,
            ),
            bargauge(
                "Rounds",
                [Target("implmon_performance_benchmark_rounds", "{{benchmark}}")],
                unit="short",
                thresholds=thresholds("orange", (5, "green")),
                description="Rounds each benchmark measured: few rounds give a rough median.",
                width=12,
                min=0,
            ),
        ],
    )

    system = Row(
        "System: monitor loop",
        [
            timeseries(
                "Stage duration",
                [Target("implmon_stage_duration_seconds", "{{stage}}")],
                unit="s",
                thresholds=thresholds("green", (1, "orange"), (5, "red")),
                description="How long each stage of the last monitor cycle took (collect, "
                "process, analyze, alert, report).",
                stack=True,
                min=0,
            ),
            timeseries(
                "Cycle time over interval",
                [
                    Target(
                        "sum(implmon_stage_duration_seconds) / "
                        "scalar(max(implmon_monitor_interval_seconds))",
                        "cycle / interval",
                    )
                ],
                unit="percentunit",
                thresholds=thresholds("green", (0.5, "orange"), (0.8, "red")),
                description="The whole cycle as a share of the configured interval; near 100% "
                "the loop falls behind.",
                min=0,
            ),
        ],
    )

    integration = Row(
        "Integration: probe latency between components",
        [
            timeseries(
                "Probe latency (max over interval)",
                [
                    Target(
                        "max_over_time(implmon_component_probe_duration_seconds"
                        f"{{{COMPONENT_SELECTOR}}}[$__rate_interval])",
                        "{{component}}",
                    )
                ],
                unit="s",
                thresholds=thresholds("green", (0.5, "orange"), (2, "red")),
                description="The slowest health check of each component within each step: "
                "the latency the monitor sees calling into the component.",
                width=16,
                min=0,
            ),
            bargauge(
                "Probe latency by type",
                [
                    Target(
                        "avg by (type) (implmon_component_probe_duration_seconds"
                        f"{{{COMPONENT_SELECTOR}}})",
                        "{{type}}",
                    )
                ],
                unit="s",
                thresholds=thresholds("green", (0.5, "orange"), (2, "red")),
                description="Average latency of the health checks of each component type.",
                width=8,
                min=0,
            ),
        ],
    )

    resource = Row(
        "Resource",
        [
            timeseries(
                "CPU busy and memory in use",
                [
                    Target("implmon_host_cpu_usage_ratio", "cpu"),
                    Target(
                        "1 - implmon_host_memory_available_bytes / implmon_host_memory_total_bytes",
                        "memory",
                    ),
                ],
                unit="percentunit",
                thresholds=thresholds("green", (0.8, "orange"), (0.95, "red")),
                description="Host resources during the measurements; the System dashboard has "
                "the detail.",
                width=24,
                min=0,
                max=1,
                links=[Link("System", dashboard_url(UID_SYSTEM))],
            ),
        ],
    )

    return Dashboard(
        uid=UID_PERFORMANCE,
        title="implmon / Performance",
        description="Benchmarks and regressions, monitor loop latency, probe latency and "
        "host resources (performance monitoring).",
        rows=[code, system, integration, resource],
        variables=[DATASOURCE, ENVIRONMENT, COMPONENT_TYPE, COMPONENT],
        links=[Link("Overview", dashboard_url(UID_OVERVIEW))],
    )
