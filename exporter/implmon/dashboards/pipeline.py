"""Pipeline & DORA: builds, deployments, validations and incidents, and the four keys.

The DORA row follows the definitions in :mod:`implmon.dora` over the selected time range:
deployment frequency (successful deployments), lead time for changes (median of
``implmon_deployment_lead_time_seconds``), change failure rate (failed over all deployments) and
time to restore (median of ``implmon_deployment_time_to_restore_seconds``). The figures come
from the durable event store, so they survive exporter restarts.
"""

from __future__ import annotations

from implmon.dashboards.common import (
    DATASOURCE,
    DEPLOYMENT_ANNOTATION,
    ENVIRONMENT,
    UID_OVERVIEW,
    UID_PIPELINE,
    UID_QUALITY,
    Dashboard,
    Link,
    Row,
    Target,
    Variable,
    bargauge,
    dashboard_url,
    runbook,
    stat,
    thresholds,
    timeseries,
)

ENV = 'environment=~"$environment"'
BUILD = 'build_type=~"$build_type"'
BUILD_TYPE = Variable("build_type", "Build type", "label_values(implmon_builds_total, build_type)")
DEPLOY_RUNBOOK = Link("Runbook: deployment failed", runbook("implmonproductiondeploymentfailed"))
BUILD_RUNBOOK = Link("Runbook: build failed", runbook("implmonbuildsfailing"))


def _quantile(q: float, histogram: str, selector: str, by: str, window: str) -> str:
    """``histogram_quantile`` of ``histogram`` over ``window``, summed by ``le`` and ``by``."""
    return (
        f"histogram_quantile({q}, sum by (le, {by}) "
        f"(increase({histogram}_bucket{{{selector}}}[{window}])))"
    )


def build() -> Dashboard:
    """The Pipeline & DORA dashboard."""
    deployments = f"implmon_deployments_total{{{ENV}}}"
    dora = Row(
        "DORA four keys (selected range)",
        [
            stat(
                "Deployment frequency",
                [
                    Target(
                        "sum by (environment) (increase(implmon_deployments_total"
                        f'{{{ENV}, outcome="success"}}[$__range]))',
                        "{{environment}}",
                    )
                ],
                unit="short",
                thresholds=thresholds("orange", (1, "green")),
                description="Successful deployments per environment in the selected range.",
                width=6,
                height=6,
                decimals=0,
            ),
            stat(
                "Lead time for changes (median)",
                [
                    Target(
                        _quantile(
                            0.5,
                            "implmon_deployment_lead_time_seconds",
                            ENV,
                            "environment",
                            "$__range",
                        ),
                        "{{environment}}",
                    )
                ],
                unit="s",
                thresholds=thresholds("green", (86400, "orange"), (604800, "red")),
                description="Median time from a change (commit) to its successful deployment. "
                "Elite teams stay under a day.",
                width=6,
                height=6,
            ),
            stat(
                "Change failure rate",
                [
                    Target(
                        "sum by (environment) (increase(implmon_deployments_total"
                        f'{{{ENV}, outcome="failure"}}[$__range])) / sum by (environment) '
                        f"(increase({deployments}[$__range]))",
                        "{{environment}}",
                    )
                ],
                unit="percentunit",
                thresholds=thresholds("green", (0.15, "orange"), (0.3, "red")),
                description="Failed deployments over all deployments per environment; empty "
                "(no data) where nothing was deployed.",
                width=6,
                height=6,
                links=[DEPLOY_RUNBOOK],
                decimals=0,
            ),
            stat(
                "Time to restore (median)",
                [
                    Target(
                        _quantile(
                            0.5,
                            "implmon_deployment_time_to_restore_seconds",
                            ENV,
                            "environment",
                            "$__range",
                        ),
                        "{{environment}}",
                    )
                ],
                unit="s",
                thresholds=thresholds("green", (3600, "orange"), (86400, "red")),
                description="Median time from an environment's first failed deployment or "
                "opened incident to its next successful deployment or the incident's "
                "resolution.",
                width=6,
                height=6,
            ),
        ],
    )

    # The same keys over a fixed week, from rules/dora.yml: comparable across time ranges and
    # cheap to show on a wall screen, whatever range the dashboard is zoomed to.
    recorded = Row(
        "DORA four keys, last 7 days (recording rules)",
        [
            stat(
                "Deployments per day (7d)",
                [
                    Target(
                        f"implmon:deployment_frequency:per_day7d{{{ENV}}}",
                        "{{environment}}",
                    )
                ],
                unit="short",
                thresholds=thresholds("orange", (1, "green")),
                description="Successful deployments per day, averaged over the last 7 days "
                "(implmon:deployment_frequency:per_day7d). Daily or more is elite.",
                width=6,
                height=6,
                decimals=2,
            ),
            stat(
                "Lead time (7d median / mean)",
                [
                    Target(f"implmon:lead_time_seconds:p50_7d{{{ENV}}}", "p50 {{environment}}"),
                    Target(f"implmon:lead_time_seconds:mean7d{{{ENV}}}", "mean {{environment}}"),
                ],
                unit="s",
                thresholds=thresholds("green", (86400, "orange"), (604800, "red")),
                description="Change to successful deployment over the last 7 days: the median "
                "(interpolated in buckets) and the exact mean.",
                width=6,
                height=6,
            ),
            stat(
                "Change failure rate (7d)",
                [Target(f"implmon:change_failure_ratio:7d{{{ENV}}}", "{{environment}}")],
                unit="percentunit",
                thresholds=thresholds("green", (0.15, "orange"), (0.3, "red")),
                description="Failed over all deployments in the last 7 days "
                "(implmon:change_failure_ratio:7d); absent where nothing was deployed.",
                width=6,
                height=6,
                links=[DEPLOY_RUNBOOK],
                decimals=0,
            ),
            stat(
                "Time to restore (7d median / mean)",
                [
                    Target(
                        f"implmon:time_to_restore_seconds:p50_7d{{{ENV}}}", "p50 {{environment}}"
                    ),
                    Target(
                        f"implmon:time_to_restore_seconds:mean7d{{{ENV}}}", "mean {{environment}}"
                    ),
                ],
                unit="s",
                thresholds=thresholds("green", (3600, "orange"), (86400, "red")),
                description="First failure (deployment or incident) to the next success over "
                "the last 7 days: median and mean.",
                width=6,
                height=6,
            ),
        ],
    )

    environments = Row(
        "Environments",
        [
            stat(
                "Failed now",
                [Target(f"implmon_environment_failed{{{ENV}}}", "{{environment}}")],
                unit="bool",
                thresholds=thresholds("green", (1, "red")),
                description="1 while the environment's last deployment failed or an incident "
                "is open and nothing has restored it yet.",
                mappings=[
                    {
                        "options": {
                            "0": {"color": "green", "index": 0, "text": "ok"},
                            "1": {"color": "red", "index": 1, "text": "failed"},
                        },
                        "type": "value",
                    }
                ],
                width=12,
                links=[DEPLOY_RUNBOOK],
            ),
            stat(
                "Since last successful deployment",
                [
                    Target(
                        f"time() - implmon_deployment_last_success_timestamp_seconds{{{ENV}}}",
                        "{{environment}}",
                    )
                ],
                unit="s",
                thresholds=thresholds("green", (604800, "orange"), (2592000, "red")),
                description="Age of each environment's latest successful deployment.",
                width=12,
            ),
        ],
    )

    deploys = Row(
        "Deployments",
        [
            timeseries(
                "Deployments by outcome",
                [
                    Target(
                        "sum by (environment, outcome) (increase("
                        f"{deployments}[$__rate_interval]))",
                        "{{environment}} {{outcome}}",
                    )
                ],
                unit="short",
                thresholds=thresholds("green", (1, "green")),
                description="Deployments finished per step, by environment and outcome.",
                stack=True,
                show_thresholds=False,
                draw="bars",
                min=0,
            ),
            timeseries(
                "Deployment duration (p50, p95)",
                [
                    Target(
                        _quantile(
                            0.5,
                            "implmon_deployment_duration_seconds",
                            ENV,
                            "environment",
                            "$__rate_interval",
                        ),
                        "p50 {{environment}}",
                    ),
                    Target(
                        _quantile(
                            0.95,
                            "implmon_deployment_duration_seconds",
                            ENV,
                            "environment",
                            "$__rate_interval",
                        ),
                        "p95 {{environment}}",
                        exemplars=True,
                    ),
                ],
                unit="s",
                thresholds=thresholds("green", (600, "orange"), (1800, "red")),
                description="How long deployments take; gaps mean no deployment finished. The dots "
                "are exemplars: a run's trace id, to find its trace in the collector's backend.",
                min=0,
            ),
            timeseries(
                "Incidents",
                [
                    Target(
                        "sum by (environment) (increase(implmon_incidents_total"
                        f"{{{ENV}}}[$__rate_interval]))",
                        "{{environment}}",
                    )
                ],
                unit="short",
                thresholds=thresholds("green", (1, "red")),
                description="Incidents opened against each environment per step.",
                width=24,
                draw="bars",
                min=0,
            ),
        ],
    )

    builds = Row(
        "Builds",
        [
            timeseries(
                "Builds by outcome",
                [
                    Target(
                        "sum by (build_type, outcome) (increase(implmon_builds_total"
                        f"{{{BUILD}}}[$__rate_interval]))",
                        "{{build_type}} {{outcome}}",
                    )
                ],
                unit="short",
                thresholds=thresholds("green", (1, "green")),
                description="Builds finished per step, by build type and outcome.",
                stack=True,
                show_thresholds=False,
                draw="bars",
                min=0,
                links=[BUILD_RUNBOOK],
            ),
            timeseries(
                "Build duration (p50, p95)",
                [
                    Target(
                        _quantile(
                            0.5,
                            "implmon_build_duration_seconds",
                            BUILD,
                            "build_type",
                            "$__rate_interval",
                        ),
                        "p50 {{build_type}}",
                    ),
                    Target(
                        _quantile(
                            0.95,
                            "implmon_build_duration_seconds",
                            BUILD,
                            "build_type",
                            "$__rate_interval",
                        ),
                        "p95 {{build_type}}",
                        exemplars=True,
                    ),
                ],
                unit="s",
                thresholds=thresholds("green", (600, "orange"), (1800, "red")),
                description="How long builds take; gaps mean no build finished. The dots are "
                "exemplars: a run's trace id.",
                min=0,
            ),
            bargauge(
                "Since last successful build",
                [
                    Target(
                        f"time() - implmon_build_last_success_timestamp_seconds{{{BUILD}}}",
                        "{{build_type}}",
                    )
                ],
                unit="s",
                thresholds=thresholds("green", (86400, "orange"), (604800, "red")),
                description="Age of the latest successful build of each build type.",
                width=24,
                height=6,
                min=0,
            ),
        ],
    )

    validations = Row(
        "Validations",
        [
            timeseries(
                "Validations by outcome",
                [
                    Target(
                        "sum by (validation_type, outcome) (increase(implmon_validations_total"
                        "[$__rate_interval]))",
                        "{{validation_type}} {{outcome}}",
                    )
                ],
                unit="short",
                thresholds=thresholds("green", (1, "green")),
                description="Validations (component, system, quality, performance) finished "
                "per step, by outcome.",
                stack=True,
                show_thresholds=False,
                draw="bars",
                min=0,
                links=[Link("Quality", dashboard_url(UID_QUALITY))],
            ),
            timeseries(
                "Validation duration (p95)",
                [
                    Target(
                        _quantile(
                            0.95,
                            "implmon_validation_duration_seconds",
                            "",
                            "validation_type",
                            "$__rate_interval",
                        ),
                        "{{validation_type}}",
                        exemplars=True,
                    )
                ],
                unit="s",
                thresholds=thresholds("green", (300, "orange"), (900, "red")),
                description="How long validations take, by validation type.",
                min=0,
            ),
        ],
    )

    return Dashboard(
        uid=UID_PIPELINE,
        title="implmon / Pipeline & DORA",
        description="Builds, deployments, validations and incidents, with the DORA four keys.",
        rows=[dora, recorded, environments, deploys, builds, validations],
        variables=[DATASOURCE, ENVIRONMENT, BUILD_TYPE],
        annotations=[DEPLOYMENT_ANNOTATION],
        links=[Link("Overview", dashboard_url(UID_OVERVIEW))],
        time_from="now-7d",
    )
