"""Components: each pipeline component's health checks (component monitoring).

Answers "which component, since when, and how does its health endpoint answer": the up/down
lanes show flapping, the probe panels show latency, HTTP status and failure ratio, and the
factory row shows components created by type and outcome.
"""

from __future__ import annotations

from implmon.dashboards.common import (
    COMPONENT,
    COMPONENT_SELECTOR,
    COMPONENT_TYPE,
    DATASOURCE,
    ENVIRONMENT,
    UID_COMPONENTS,
    UID_OVERVIEW,
    UID_SYSTEM,
    UP_DOWN,
    UP_THRESHOLDS,
    Dashboard,
    Link,
    Row,
    Target,
    bargauge,
    component_errors,
    dashboard_url,
    runbook,
    stat,
    state_timeline,
    table,
    thresholds,
    timeseries,
    value_text,
)

SEL = COMPONENT_SELECTOR
DOWN_RUNBOOK = Link("Runbook: component down", runbook("implmoncomponentdown"))


def build() -> Dashboard:
    """The Components dashboard."""
    status = Row(
        "Status",
        [
            stat(
                "Up",
                [Target(f"sum(implmon_component_up{{{SEL}}})")],
                unit="short",
                thresholds=thresholds("red", (1, "green")),
                description="Components that are up.",
            ),
            stat(
                "Down",
                [Target(f"count(implmon_component_up{{{SEL}}} == 0) or vector(0)")],
                unit="short",
                thresholds=thresholds("green", (1, "red")),
                description="Components that failed their last consecutive health checks.",
                links=[DOWN_RUNBOOK],
            ),
            stat(
                "Probe success",
                [Target(f"avg(implmon_component_probe_success{{{SEL}}})")],
                unit="percentunit",
                thresholds=thresholds("red", (0.9, "orange"), (1, "green")),
                description="Share of components whose last health check passed or warned.",
                decimals=0,
            ),
            stat(
                "Slowest probe",
                [Target(f"max(implmon_component_probe_duration_seconds{{{SEL}}})")],
                unit="s",
                thresholds=thresholds("green", (0.5, "orange"), (2, "red")),
                description="The longest health check of the last cycle.",
                links=[Link("Runbook: slow probe", runbook("implmoncomponentdegraded"))],
            ),
            table(
                "Components",
                [Target(f"implmon_component_info{{{SEL}}}")],
                unit="none",
                thresholds=thresholds("text", (1, "text")),
                description="Every monitored component with its type and reported version.",
                hide=("Time", "Value", "__name__", "job", "instance"),
                width=8,
                height=8,
            ),
            state_timeline(
                "Up / down",
                [Target(f"implmon_component_up{{{SEL}}}", "{{component}}")],
                unit="bool",
                thresholds=UP_THRESHOLDS,
                description="One lane per component: green while up, red while down. A striped "
                "lane is a flapping component.",
                mappings=[UP_DOWN],
                width=16,
                links=[DOWN_RUNBOOK],
            ),
            state_timeline(
                "Reported health status",
                [
                    Target(
                        f"max by (component, status) (implmon_component_health_status{{{SEL}}})"
                        " == 1",
                        "{{component}} {{status}}",
                    )
                ],
                unit="none",
                thresholds=thresholds("green", (1, "green")),
                description="The status each component's health endpoint reports (pass, warn, "
                "fail); only the current status of each component has a lane segment.",
                mappings=[value_text({"1": ("reported", "green")})],
                width=24,
            ),
        ],
    )

    probes = Row(
        "Health checks",
        [
            timeseries(
                "Probe duration",
                [
                    Target(
                        f"implmon_component_probe_duration_seconds{{{SEL}}}",
                        "{{component}}",
                    )
                ],
                unit="s",
                thresholds=thresholds("green", (0.5, "orange"), (2, "red")),
                description="How long each component's health endpoint took to answer.",
                min=0,
            ),
            timeseries(
                "Probe failure ratio",
                [
                    Target(
                        "sum by (component) (rate(implmon_component_probes_total"
                        f'{{{SEL}, result="failure"}}[$__rate_interval])) / '
                        "sum by (component) (rate(implmon_component_probes_total"
                        f"{{{SEL}}}[$__rate_interval]))",
                        "{{component}}",
                    )
                ],
                unit="percentunit",
                thresholds=thresholds("green", (0.05, "orange"), (0.25, "red")),
                description="Share of health checks that failed, per component.",
                min=0,
                max=1,
                links=[DOWN_RUNBOOK],
            ),
            timeseries(
                "Consecutive failures",
                [
                    Target(
                        f"implmon_component_consecutive_failures{{{SEL}}}",
                        "{{component}}",
                    )
                ],
                unit="short",
                thresholds=thresholds("green", (1, "orange"), (3, "red")),
                description="Health checks failed in a row; the component is marked down "
                "after the configured number.",
                min=0,
                draw="bars",
            ),
            bargauge(
                "Last HTTP status",
                [
                    Target(
                        f"implmon_component_probe_http_status_code{{{SEL}}}",
                        "{{component}}",
                    )
                ],
                unit="none",
                thresholds=thresholds("red", (200, "green"), (300, "orange"), (500, "red")),
                description="HTTP status of each component's last health check; 0 means no "
                "answer (connection refused or timed out).",
                width=12,
                min=0,
                max=599,
            ),
        ],
    )

    factory = Row(
        "Factory",
        [
            bargauge(
                "Components created",
                [
                    Target(
                        "sum by (type, outcome) (increase(implmon_components_created_total"
                        '{type=~"$type"}[$__range]))',
                        "{{type}} {{outcome}}",
                    )
                ],
                unit="short",
                thresholds=thresholds("green", (1, "green")),
                description="Components the factory created in the range, by type and outcome.",
                width=12,
                min=0,
            ),
            component_errors(
                "Errors raised by the exporter's own pipeline components "
                "(analyzers, processors, reporters), per second; 0 for every pipeline "
                "component that raised none."
            ),
        ],
    )

    return Dashboard(
        uid=UID_COMPONENTS,
        title="implmon / Components",
        description="Health checks of every pipeline component (component monitoring).",
        rows=[status, probes, factory],
        variables=[DATASOURCE, ENVIRONMENT, COMPONENT_TYPE, COMPONENT],
        links=[
            Link("Overview", dashboard_url(UID_OVERVIEW)),
            Link("System", dashboard_url(UID_SYSTEM)),
        ],
    )
