"""Overview: the four monitoring types, the pipeline at a glance and the alerts firing now.

The landing dashboard. Each stat links to the dashboard that explains it, so the path from
"something is red" to "which component, since when" is one click.
"""

from __future__ import annotations

from implmon.dashboards.common import (
    ALERTS_ANNOTATION,
    COMPONENT,
    COMPONENT_TYPE,
    DATASOURCE,
    DEPLOYMENT_ANNOTATION,
    ENVIRONMENT,
    PASS_FAIL,
    RUNBOOKS_URL,
    UID_COMPONENTS,
    UID_EXPORTER,
    UID_OVERVIEW,
    UID_PERFORMANCE,
    UID_PIPELINE,
    UID_QUALITY,
    UID_SYSTEM,
    Dashboard,
    Link,
    Row,
    Target,
    dashboard_url,
    runbook,
    stat,
    table,
    thresholds,
    timeseries,
)

ENV = 'environment=~"$environment"'


def build() -> Dashboard:
    """The Overview dashboard."""
    components = Link("Components", dashboard_url(UID_COMPONENTS))
    deploy_runbook = Link("Runbook: deployments", runbook("implmonproductiondeploymentfailed"))
    gate_runbook = Link("Runbook: quality gate", runbook("implmonqualitygatefailed"))
    down_runbook = Link("Runbook: component down", runbook("implmoncomponentdown"))
    system = Link("System", dashboard_url(UID_SYSTEM))
    quality = Link("Quality", dashboard_url(UID_QUALITY))
    performance = Link("Performance", dashboard_url(UID_PERFORMANCE))
    pipeline = Link("Pipeline & DORA", dashboard_url(UID_PIPELINE))

    monitoring = Row(
        "Monitoring types",
        [
            stat(
                "Component: up",
                [Target('sum(implmon_component_up{type=~"$type", component=~"$component"})')],
                unit="short",
                thresholds=thresholds("red", (1, "green")),
                description="Monitored components that are up (passed their recent health "
                "checks). Red when none is.",
                links=[components, down_runbook],
            ),
            stat(
                "Component: down",
                [
                    Target(
                        'count(implmon_component_up{type=~"$type", component=~"$component"} == 0)'
                        " or vector(0)"
                    )
                ],
                unit="short",
                thresholds=thresholds("green", (1, "red")),
                description="Components that failed their last consecutive health checks.",
                links=[components, down_runbook],
            ),
            stat(
                "System: health",
                [Target("implmon_system_health_ratio")],
                unit="percentunit",
                thresholds=thresholds("red", (0.75, "orange"), (1, "green")),
                description="Share of monitored components that are up (system monitoring).",
                links=[system, Link("Runbook: system degraded", runbook("implmonsystemdegraded"))],
                decimals=0,
            ),
            stat(
                "System: host CPU",
                [Target("implmon_host_cpu_usage_ratio")],
                unit="percentunit",
                thresholds=thresholds("green", (0.8, "orange"), (0.95, "red")),
                description="Busy fraction of the exporter host's CPUs over the last cycle.",
                links=[system],
                decimals=0,
            ),
            stat(
                "Quality: gate",
                [Target("min(implmon_quality_gate_passed)")],
                unit="bool",
                thresholds=thresholds("red", (1, "green")),
                description="Passed only when every quality gate of every build type passed.",
                mappings=[PASS_FAIL],
                links=[quality, gate_runbook],
            ),
            stat(
                "Performance: worst regression",
                [Target("max(implmon_performance_regression_ratio)")],
                unit="percentunit",
                thresholds=thresholds("green", (1.1, "orange"), (1.25, "red")),
                description="The slowest benchmark relative to its baseline: 100% is as fast "
                "as the baseline, 125% is a quarter slower.",
                links=[
                    performance,
                    Link("Runbook: regression", runbook("implmonperformanceregression")),
                ],
                decimals=0,
            ),
        ],
    )

    deployments = f"sum(increase(implmon_deployments_total{{{ENV}}}[$__range]))"
    pipeline_row = Row(
        "Pipeline at a glance",
        [
            stat(
                "Deployments",
                [Target(deployments)],
                unit="short",
                thresholds=thresholds("blue", (1, "green")),
                description="Deployments that finished in the selected time range, any outcome.",
                links=[pipeline],
                decimals=0,
            ),
            stat(
                "Deployment failure rate",
                [
                    Target(
                        "sum(increase(implmon_deployments_total"
                        f'{{{ENV}, outcome="failure"}}[$__range])) / {deployments}'
                    )
                ],
                unit="percentunit",
                thresholds=thresholds("green", (0.15, "orange"), (0.3, "red")),
                description="Change failure rate: failed deployments over all deployments in the "
                "range (DORA). Empty when nothing was deployed.",
                links=[pipeline, deploy_runbook],
                decimals=0,
            ),
            stat(
                "Builds",
                [Target("sum(increase(implmon_builds_total[$__range]))")],
                unit="short",
                thresholds=thresholds("blue", (1, "green")),
                description="Builds that finished in the selected time range, any outcome.",
                links=[pipeline],
                decimals=0,
            ),
            stat(
                "Build failure rate",
                [
                    Target(
                        'sum(increase(implmon_builds_total{outcome="failure"}[$__range])) / '
                        "sum(increase(implmon_builds_total[$__range]))"
                    )
                ],
                unit="percentunit",
                thresholds=thresholds("green", (0.1, "orange"), (0.25, "red")),
                description="Failed builds over all builds in the selected time range.",
                links=[pipeline, Link("Runbook: builds", runbook("implmonbuildsfailing"))],
                decimals=0,
            ),
            stat(
                "Failed environments",
                [Target(f"sum(implmon_environment_failed{{{ENV}}})")],
                unit="short",
                thresholds=thresholds("green", (1, "red")),
                description="Environments whose last deployment failed or that have an open "
                "incident; they count towards time to restore until the next success.",
                links=[pipeline],
            ),
            stat(
                "Active findings",
                [Target("sum(implmon_findings)")],
                unit="short",
                thresholds=thresholds("green", (1, "orange"), (5, "red")),
                description="Analyzer findings active in the last cycle, all monitoring types.",
                links=[components],
            ),
        ],
    )

    alerts = Row(
        "Alerts",
        [
            table(
                "Firing alerts",
                [Target('ALERTS{alertstate="firing"}')],
                unit="none",
                thresholds=thresholds("text", (1, "red")),
                description="Prometheus alerts firing now (the ALERTS series of the rules in "
                "rules/). Each alert's runbook_url annotation is in Alertmanager.",
                hide=("Time", "Value", "__name__", "alertstate"),
                width=14,
                links=[Link("Runbooks", RUNBOOKS_URL)],
            ),
            timeseries(
                "Findings by monitoring type",
                [
                    Target(
                        "sum by (monitoring_type) (implmon_findings)",
                        "{{monitoring_type}}",
                    )
                ],
                unit="short",
                thresholds=thresholds("green", (1, "orange"), (5, "red")),
                description="Active analyzer findings over time, by the monitoring type "
                "(component, system, quality, performance) that raised them.",
                width=10,
                stack=True,
                min=0,
            ),
        ],
    )

    return Dashboard(
        uid=UID_OVERVIEW,
        title="implmon / Overview",
        description="The four monitoring types, the delivery pipeline and active alerts.",
        rows=[monitoring, pipeline_row, alerts],
        variables=[DATASOURCE, ENVIRONMENT, COMPONENT_TYPE, COMPONENT],
        annotations=[DEPLOYMENT_ANNOTATION, ALERTS_ANNOTATION],
        links=[
            components,
            system,
            quality,
            performance,
            pipeline,
            Link("Exporter", dashboard_url(UID_EXPORTER)),
        ],
    )
