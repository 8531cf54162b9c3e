"""System: the assembled system's health and the host it runs on (system monitoring).

Health ratio and components by state answer "is the system as a whole healthy"; the host panels
(CPU, load per CPU, memory, filesystems) answer "is it starved of resources".
"""

from __future__ import annotations

from implmon.dashboards.common import (
    COMPONENT,
    COMPONENT_TYPE,
    DATASOURCE,
    ENVIRONMENT,
    UID_COMPONENTS,
    UID_OVERVIEW,
    UID_SYSTEM,
    Dashboard,
    Link,
    Row,
    Target,
    bargauge,
    dashboard_url,
    gauge,
    runbook,
    stat,
    thresholds,
    timeseries,
)

HEALTH_THRESHOLDS = thresholds("red", (0.75, "orange"), (1, "green"))
USAGE_THRESHOLDS = thresholds("green", (0.8, "orange"), (0.95, "red"))


def build() -> Dashboard:
    """The System dashboard."""
    health = Row(
        "System health",
        [
            gauge(
                "Health",
                [Target("implmon_system_health_ratio")],
                unit="percentunit",
                thresholds=HEALTH_THRESHOLDS,
                description="Share of monitored components that are up.",
                links=[Link("Runbook: system degraded", runbook("implmonsystemdegraded"))],
            ),
            stat(
                "Components",
                [Target('sum(implmon_system_components{type=~"$type"})')],
                unit="short",
                thresholds=thresholds("red", (1, "green")),
                description="Monitored components of the selected types, any state.",
                links=[Link("Components", dashboard_url(UID_COMPONENTS))],
                height=6,
            ),
            stat(
                "Down",
                [Target('sum(implmon_system_components{type=~"$type", state="down"})')],
                unit="short",
                thresholds=thresholds("green", (1, "red")),
                description="Monitored components of the selected types that are down.",
                links=[Link("Components", dashboard_url(UID_COMPONENTS))],
                height=6,
            ),
            timeseries(
                "Health over time",
                [Target("implmon_system_health_ratio", "health")],
                unit="percentunit",
                thresholds=HEALTH_THRESHOLDS,
                description="Share of components up; dips line up with the deployment "
                "annotations when a deployment broke something.",
                min=0,
                max=1,
                height=6,
            ),
            timeseries(
                "Components by type and state",
                [
                    Target(
                        'sum by (type, state) (implmon_system_components{type=~"$type"})',
                        "{{type}} {{state}}",
                    )
                ],
                unit="short",
                thresholds=thresholds("green", (1000, "orange")),
                description="How many components of each type are up or down.",
                width=24,
                stack=True,
                show_thresholds=False,
                min=0,
            ),
        ],
    )

    host = Row(
        "Host resources",
        [
            timeseries(
                "CPU busy",
                [Target("implmon_host_cpu_usage_ratio", "cpu")],
                unit="percentunit",
                thresholds=USAGE_THRESHOLDS,
                description="Busy fraction of all CPUs of the exporter's host.",
                width=8,
                min=0,
                max=1,
            ),
            timeseries(
                "Load per CPU",
                [
                    Target("implmon_host_load1 / implmon_host_cpus", "1m"),
                    Target("implmon_host_load5 / implmon_host_cpus", "5m"),
                    Target("implmon_host_load15 / implmon_host_cpus", "15m"),
                ],
                unit="short",
                thresholds=thresholds("green", (1, "orange"), (2, "red")),
                description="Load average divided by the number of CPUs: above 1 means work "
                "is queueing for a CPU.",
                width=8,
                min=0,
            ),
            timeseries(
                "Memory in use",
                [
                    Target(
                        "1 - implmon_host_memory_available_bytes / implmon_host_memory_total_bytes",
                        "used",
                    )
                ],
                unit="percentunit",
                thresholds=USAGE_THRESHOLDS,
                description="Share of memory not available to new processes without swapping.",
                width=8,
                min=0,
                max=1,
            ),
            bargauge(
                "Filesystem in use",
                [
                    Target(
                        "1 - implmon_host_filesystem_free_bytes"
                        " / implmon_host_filesystem_size_bytes",
                        "{{mountpoint}}",
                    )
                ],
                unit="percentunit",
                thresholds=USAGE_THRESHOLDS,
                description="Share of each filesystem used (free space counted as unprivileged "
                "users see it).",
                width=12,
                min=0,
                max=1,
                links=[Link("Runbook: disk filling", runbook("implmonhostfilesystemspacelow"))],
            ),
            stat(
                "Memory total",
                [Target("implmon_host_memory_total_bytes")],
                unit="bytes",
                thresholds=thresholds("text", (0, "text")),
                description="Memory of the host.",
                width=6,
                height=8,
            ),
            stat(
                "CPUs",
                [Target("implmon_host_cpus")],
                unit="short",
                thresholds=thresholds("text", (0, "text")),
                description="Logical CPUs of the host.",
                width=6,
                height=8,
            ),
        ],
    )

    return Dashboard(
        uid=UID_SYSTEM,
        title="implmon / System",
        description="The assembled system's health and its host's resources (system monitoring).",
        rows=[health, host],
        variables=[DATASOURCE, ENVIRONMENT, COMPONENT_TYPE, COMPONENT],
        links=[
            Link("Overview", dashboard_url(UID_OVERVIEW)),
            Link("Components", dashboard_url(UID_COMPONENTS)),
        ],
    )
