"""Exporter: implmon watching itself.

Is Prometheus scraping it, does every collector succeed within its deadline (a failure is a
metric, never a failed scrape, so this is where failures show), does the monitor loop keep up
with its interval, did the last configuration reload take.
"""

from __future__ import annotations

from implmon.dashboards.common import (
    DATASOURCE,
    ENVIRONMENT,
    UID_EXPORTER,
    UID_OVERVIEW,
    UP_DOWN,
    UP_THRESHOLDS,
    Dashboard,
    Link,
    Row,
    Target,
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

JOB = 'job="implmon"'
COLLECTOR_RUNBOOK = Link("Runbook: collector failing", runbook("implmoncollectorfailing"))
OK_FAILED = value_text({"0": ("failed", "red"), "1": ("ok", "green")})


def build() -> Dashboard:
    """The Exporter self-monitoring dashboard."""
    scrape = Row(
        "Scrape",
        [
            stat(
                "Targets up",
                [Target(f"sum(up{{{JOB}}}) / count(up{{{JOB}}})")],
                unit="percentunit",
                thresholds=thresholds("red", (1, "green")),
                description="Share of the exporter targets Prometheus scraped successfully.",
                links=[Link("Runbook: exporter down", runbook("implmonexporterdown"))],
                decimals=0,
            ),
            stat(
                "Since last cycle",
                [Target("time() - max(implmon_monitor_last_cycle_timestamp_seconds)")],
                unit="s",
                thresholds=thresholds("green", (120, "orange"), (600, "red")),
                description="Age of the snapshot /metrics serves: grows when the monitor loop "
                "stalls.",
                links=[Link("Runbook: monitor stalled", runbook("implmonnocollectcycle"))],
            ),
            stat(
                "Config reload",
                [Target("min(implmon_config_last_reload_successful)")],
                unit="bool",
                thresholds=UP_THRESHOLDS,
                description="Whether the last configuration load or reload succeeded (a bad "
                "file keeps the old configuration running).",
                mappings=[OK_FAILED],
                links=[Link("Runbook: config reload", runbook("implmonconfigreloadfailed"))],
            ),
            stat(
                "Since last config load",
                [Target("time() - max(implmon_config_last_reload_success_timestamp_seconds)")],
                unit="s",
                thresholds=thresholds("blue", (86400 * 30, "blue")),
                description="Time since the configuration was last loaded successfully (start "
                "or reload).",
            ),
            stat(
                "Collectors failing",
                [Target("count(implmon_collector_success == 0) or vector(0)")],
                unit="short",
                thresholds=thresholds("green", (1, "red")),
                description="Collectors whose last run failed or missed its deadline.",
                links=[COLLECTOR_RUNBOOK],
            ),
            stat(
                "Pipeline components failing",
                [Target("count(implmon_pipeline_component_up == 0) or vector(0)")],
                unit="short",
                thresholds=thresholds("green", (1, "red")),
                description="The exporter's own pipeline components (collectors, processors, "
                "analyzers, reporters) that raised an error in the last cycle.",
            ),
            table(
                "Build",
                [Target("implmon_build_info")],
                unit="none",
                thresholds=thresholds("text", (1, "text")),
                description="implmon and Python versions of each exporter instance.",
                hide=("Time", "Value", "__name__"),
                width=4,
                height=4,
            ),
            timeseries(
                "Scrape duration",
                [Target(f"scrape_duration_seconds{{{JOB}}}", "{{instance}}")],
                unit="s",
                thresholds=thresholds("green", (1, "orange"), (5, "red")),
                description="How long Prometheus took to scrape /metrics.",
                min=0,
            ),
            timeseries(
                "Samples per scrape",
                [Target(f"scrape_samples_scraped{{{JOB}}}", "{{instance}}")],
                unit="short",
                thresholds=thresholds("green", (10000, "orange"), (50000, "red")),
                description="Series in each scrape: a sudden rise points at a label with "
                "unbounded values.",
                min=0,
            ),
        ],
    )

    collectors = Row(
        "Collectors",
        [
            state_timeline(
                "Collector success",
                [Target("implmon_collector_success", "{{collector}}")],
                unit="bool",
                thresholds=UP_THRESHOLDS,
                description="One lane per collector: red while its runs fail or miss their "
                "deadline (its last good values are then served as stale).",
                mappings=[OK_FAILED],
                links=[COLLECTOR_RUNBOOK],
            ),
            timeseries(
                "Collector duration",
                [Target("implmon_collector_duration_seconds", "{{collector}}")],
                unit="s",
                thresholds=thresholds("green", (1, "orange"), (5, "red")),
                description="Duration of each collector's last run.",
                min=0,
            ),
            timeseries(
                "Since last collector success",
                [
                    Target(
                        "time() - implmon_collector_last_success_timestamp_seconds",
                        "{{collector}}",
                    )
                ],
                unit="s",
                thresholds=thresholds("green", (120, "orange"), (600, "red")),
                description="Age of each collector's last successful run: its values are this old.",
                min=0,
            ),
            state_timeline(
                "Stale collectors",
                [Target("implmon_collector_stale", "{{collector}}")],
                unit="bool",
                thresholds=thresholds("green", (1, "orange")),
                description="Lanes turn orange while a collector's values are carried over "
                "from an earlier run.",
                mappings=[value_text({"0": ("fresh", "green"), "1": ("stale", "orange")})],
            ),
        ],
    )

    loop = Row(
        "Monitor loop",
        [
            timeseries(
                "Cycles by outcome",
                [
                    Target(
                        "sum by (outcome) (rate(implmon_monitor_cycles_total[$__rate_interval]))",
                        "{{outcome}}",
                    )
                ],
                unit="ops",
                thresholds=thresholds("green", (1000, "red")),
                description="Monitor cycles per second, by outcome.",
                stack=True,
                show_thresholds=False,
                min=0,
            ),
            timeseries(
                "Stage duration",
                [Target("implmon_stage_duration_seconds", "{{stage}}")],
                unit="s",
                thresholds=thresholds("green", (1, "orange"), (5, "red")),
                description="How long each stage of the last cycle took.",
                stack=True,
                min=0,
            ),
            component_errors(
                "Errors raised by analyzers, processors and reporters, per second; 0 "
                "for every pipeline component that raised none."
            ),
            state_timeline(
                "Pipeline components",
                [
                    Target(
                        "implmon_pipeline_component_up",
                        "{{role}} {{component}}",
                    )
                ],
                unit="bool",
                thresholds=UP_THRESHOLDS,
                description="One lane per pipeline component of the exporter: red while it "
                "raises errors.",
                mappings=[UP_DOWN],
                width=12,
            ),
        ],
    )

    delivery = Row(
        "Alert delivery to Alertmanager",
        [
            timeseries(
                "Alerts sent",
                [
                    Target(
                        "sum by (alertmanager) (rate(implmon_alerts_sent_total[$__rate_interval]))",
                        "{{alertmanager}}",
                    )
                ],
                unit="ops",
                thresholds=thresholds("green", (1000, "orange")),
                description="Findings per second that each Alertmanager accepted.",
                width=8,
                show_thresholds=False,
                min=0,
            ),
            timeseries(
                "Delivery errors and drops",
                [
                    Target(
                        "sum by (alertmanager) "
                        "(rate(implmon_alerts_send_errors_total[$__rate_interval]))",
                        "errors {{alertmanager}}",
                    ),
                    Target(
                        "sum by (alertmanager) "
                        "(rate(implmon_alerts_dropped_total[$__rate_interval]))",
                        "dropped {{alertmanager}}",
                    ),
                ],
                unit="ops",
                thresholds=thresholds("green", (0.001, "red")),
                description="Alerts in failed delivery attempts (each retry counts) and alerts "
                "dropped on a full queue, per second.",
                width=8,
                min=0,
                links=[
                    Link("Runbook: delivery failing", runbook("implmonalertdeliveryfailing")),
                    Link("Runbook: alerts dropped", runbook("implmonalertsdropped")),
                ],
            ),
            timeseries(
                "Queue fill",
                [
                    Target(
                        "implmon_alert_queue_length / implmon_alert_queue_capacity",
                        "{{alertmanager}}",
                    )
                ],
                unit="percentunit",
                thresholds=thresholds("green", (0.5, "orange"), (0.9, "red")),
                description="Notifications waiting as a share of each queue's capacity: at "
                "100% new alerts are dropped.",
                width=8,
                min=0,
                max=1,
            ),
            stat(
                "Alertmanagers",
                [Target("implmon_alertmanagers_discovered")],
                unit="short",
                thresholds=thresholds("red", (1, "green")),
                description="Alertmanagers the alert stage sends findings to; 0 means findings "
                "reach no one.",
                links=[Link("Runbook: delivery failing", runbook("implmonalertdeliveryfailing"))],
            ),
        ],
    )

    ingest = Row(
        "Event ingest and store",
        [
            timeseries(
                "Ingest requests by status",
                [
                    Target(
                        "sum by (code) (rate(implmon_ingest_requests_total[$__rate_interval]))",
                        "{{code}}",
                    )
                ],
                unit="reqps",
                thresholds=thresholds("green", (1000, "orange")),
                description="Requests to the event ingest API per second, by HTTP status.",
                width=8,
                show_thresholds=False,
                min=0,
            ),
            timeseries(
                "Events offered to the store",
                [
                    Target(
                        "sum by (kind, result) "
                        "(rate(implmon_store_events_total[$__rate_interval]))",
                        "{{kind}} {{result}}",
                    )
                ],
                unit="ops",
                thresholds=thresholds("green", (1000, "orange")),
                description="Events per second by kind and result (stored, duplicate, "
                "conflict); conflicts are retried deliveries that changed their content.",
                width=8,
                show_thresholds=False,
                min=0,
            ),
            timeseries(
                "Events per group commit (p95)",
                [
                    Target(
                        "histogram_quantile(0.95, sum by (le) "
                        "(rate(implmon_store_commit_events_bucket[$__rate_interval])))",
                        "p95",
                    )
                ],
                unit="short",
                thresholds=thresholds("green", (500, "orange")),
                description="How many events each durable commit carries; gaps mean no commit "
                "in the step.",
                width=8,
                min=0,
            ),
            timeseries(
                "Store commits",
                [Target("rate(implmon_store_commits_total[$__rate_interval])", "commits")],
                unit="ops",
                thresholds=thresholds("green", (100, "orange")),
                description="Durable group commits of the event store per second (each "
                "acknowledges every event it carries).",
                width=24,
                show_thresholds=False,
                min=0,
            ),
            stat(
                "Events stored",
                [Target("implmon_store_events")],
                unit="short",
                thresholds=thresholds("green", (1000000, "orange")),
                description="Events held in the store (retention removes old ones).",
                width=8,
            ),
            stat(
                "Store size",
                [Target("implmon_store_size_bytes")],
                unit="bytes",
                thresholds=thresholds("green", (1073741824, "orange")),
                description="Database file and write-ahead log of the event store.",
                width=8,
            ),
            stat(
                "Oldest event",
                [Target("time() - implmon_store_oldest_event_timestamp_seconds")],
                unit="s",
                thresholds=thresholds("green", (31536000, "orange")),
                description="Age of the oldest event kept: how far back DORA figures reach.",
                width=8,
            ),
        ],
    )

    return Dashboard(
        uid=UID_EXPORTER,
        title="implmon / Exporter",
        description="implmon's own health: scrapes, collectors, the monitor loop, configuration.",
        rows=[scrape, collectors, loop, delivery, ingest],
        variables=[DATASOURCE, ENVIRONMENT],
        links=[Link("Overview", dashboard_url(UID_OVERVIEW))],
    )
