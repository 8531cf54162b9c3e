"""Quality: tests, coverage, static-analysis and security findings, and the gate (quality
monitoring).

Everything here comes from the reports the team's tools already write (JUnit, Cobertura, SARIF)
as the exporter's report collectors read them; the "Reports" row says how fresh they are, so a
green gate over a week-old report does not pass unnoticed.
"""

from __future__ import annotations

from implmon.dashboards.common import (
    DATASOURCE,
    ENVIRONMENT,
    PASS_FAIL,
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
    gauge,
    runbook,
    stat,
    table,
    thresholds,
    timeseries,
)

# Coverage reports name their own components (packages, modules), not the monitored ones.
COVERAGE_COMPONENT = Variable(
    "component", "Coverage component", "label_values(implmon_quality_coverage_ratio, component)"
)
COMP = 'component=~"$component"'
COVERAGE_THRESHOLDS = thresholds("red", (0.6, "orange"), (0.8, "green"))
GATE_RUNBOOK = Link("Runbook: quality gate", runbook("implmonqualitygatefailed"))
TESTS_RUNBOOK = Link("Runbook: tests failing", runbook("implmontestsfailing"))
SECURITY_RUNBOOK = Link("Runbook: security finding", runbook("implmoncriticalsecurityfinding"))


def build() -> Dashboard:
    """The Quality dashboard."""
    gate = Row(
        "Quality gate",
        [
            stat(
                "Gate",
                [Target("implmon_quality_gate_passed", "{{gate}} ({{build_type}})")],
                unit="bool",
                thresholds=thresholds("red", (1, "green")),
                description="Each quality gate by build type: passed or failed on the latest "
                "reports.",
                mappings=[PASS_FAIL],
                links=[GATE_RUNBOOK],
                width=8,
            ),
            stat(
                "Gate violations",
                [Target("sum(implmon_quality_gate_violations)")],
                unit="short",
                thresholds=thresholds("green", (1, "red")),
                description="Gate thresholds the latest reports violate, all gates and build "
                "types.",
                links=[GATE_RUNBOOK],
            ),
            stat(
                "Failed tests",
                [Target('sum(implmon_quality_tests{result=~"failed|error"})')],
                unit="short",
                thresholds=thresholds("green", (1, "red")),
                description="Failed and errored tests in the latest report of every suite.",
                links=[TESTS_RUNBOOK],
            ),
            stat(
                "Test pass ratio",
                [
                    Target(
                        'sum(implmon_quality_tests{result="passed"}) / '
                        'sum(implmon_quality_tests{result!="skipped"})'
                    )
                ],
                unit="percentunit",
                thresholds=thresholds("red", (0.95, "orange"), (1, "green")),
                description="Passed over executed (not skipped) tests, all suites.",
                decimals=1,
            ),
            gauge(
                "Line coverage",
                [Target(f'avg(implmon_quality_coverage_ratio{{{COMP}, kind="line"}})')],
                unit="percentunit",
                thresholds=COVERAGE_THRESHOLDS,
                description="Line coverage from the latest coverage report, averaged over the "
                "selected components.",
                height=4,
            ),
        ],
    )

    tests = Row(
        "Tests",
        [
            timeseries(
                "Tests by result",
                [Target("sum by (result) (implmon_quality_tests)", "{{result}}")],
                unit="short",
                thresholds=thresholds("green", (1, "red")),
                description="Tests in the latest report of every suite, by result.",
                stack=True,
                show_thresholds=False,
                min=0,
            ),
            bargauge(
                "Suite duration",
                [Target("implmon_quality_suite_duration_seconds", "{{suite}}")],
                unit="s",
                thresholds=thresholds("green", (300, "orange"), (900, "red")),
                description="How long each suite's latest run took; slow suites slow every build.",
                width=6,
                min=0,
            ),
            bargauge(
                "Tests added since the previous report",
                [Target("implmon_quality_tests_change", "{{suite}}")],
                unit="short",
                thresholds=thresholds("red", (0, "green")),
                description="Tests in each suite's latest report minus the report before it; "
                "red when tests disappeared.",
                links=[Link("Runbook: tests disappeared", runbook("implmontestcountdecreased"))],
                width=6,
            ),
            table(
                "Failing tests",
                [Target("implmon_quality_test_failed == 1")],
                unit="none",
                thresholds=thresholds("red", (1, "red")),
                description="Tests that failed or errored in the latest reports (only for "
                "collectors with per_test enabled; capped at max_tests).",
                hide=("Time", "Value", "__name__", "job", "instance"),
                width=12,
                links=[TESTS_RUNBOOK],
            ),
            table(
                "Slowest tests",
                [Target("topk(10, implmon_quality_test_duration_seconds)")],
                unit="s",
                thresholds=thresholds("green", (1, "orange"), (10, "red")),
                description="The ten slowest tests in the latest reports (per_test collectors).",
                hide=("Time", "__name__", "job", "instance"),
                width=12,
            ),
        ],
    )

    coverage = Row(
        "Coverage",
        [
            bargauge(
                "Coverage by component",
                [
                    Target(
                        f"implmon_quality_coverage_ratio{{{COMP}}}",
                        "{{component}} {{kind}}",
                    )
                ],
                unit="percentunit",
                thresholds=COVERAGE_THRESHOLDS,
                description="Line and branch coverage of each component from the latest "
                "coverage report.",
                width=12,
                min=0,
                max=1,
            ),
            timeseries(
                "Coverage change",
                [
                    Target(
                        f"implmon_quality_coverage_change_ratio{{{COMP}}}",
                        "{{component}} {{kind}}",
                    )
                ],
                unit="percentunit",
                thresholds=thresholds("red", (0, "green")),
                description="Coverage of the latest report minus the one before it: below "
                "zero means coverage dropped.",
                links=[Link("Runbook: coverage dropped", runbook("implmoncoveragedropped"))],
            ),
        ],
    )

    findings = Row(
        "Static analysis and security",
        [
            timeseries(
                "Findings by severity",
                [Target("sum by (severity) (implmon_quality_findings)", "{{severity}}")],
                unit="short",
                thresholds=thresholds("green", (1, "orange"), (10, "red")),
                description="Findings of every tool (linters, security scanners) in the "
                "latest SARIF reports, by severity.",
                stack=True,
                min=0,
                links=[SECURITY_RUNBOOK],
            ),
            bargauge(
                "Findings by tool and category",
                [
                    Target(
                        "sum by (tool, category) (implmon_quality_findings)",
                        "{{tool}} {{category}}",
                    )
                ],
                unit="short",
                thresholds=thresholds("green", (1, "orange"), (10, "red")),
                description="Which tool found what kind of problem (code, design, quality, "
                "security).",
                width=12,
                min=0,
            ),
            table(
                "Most frequent rules",
                [Target("topk(10, implmon_quality_rule_findings)")],
                unit="short",
                thresholds=thresholds("green", (1, "orange"), (10, "red")),
                description="The rules with the most findings in the latest reports.",
                hide=("Time", "__name__", "job", "instance"),
                width=24,
            ),
        ],
    )

    reports = Row(
        "Reports",
        [
            bargauge(
                "Report age",
                [Target("implmon_quality_report_age_seconds", "{{source}}")],
                unit="s",
                thresholds=thresholds("green", (86400, "orange"), (604800, "red")),
                description="Time since each report source last wrote a report: the figures "
                "above are as old as this.",
                links=[Link("Runbook: stale report", runbook("implmonqualityreportstale"))],
                width=8,
                min=0,
            ),
            bargauge(
                "Report files matched",
                [Target("implmon_quality_report_files", "{{source}}")],
                unit="short",
                thresholds=thresholds("red", (1, "green")),
                description="Files each source's path globs matched: 0 means the tool's report "
                "is not where the config looks.",
                links=[Link("Runbook: missing report", runbook("implmonqualityreportmissing"))],
                width=8,
                min=0,
            ),
            stat(
                "Stale sources",
                [Target("sum(implmon_quality_report_stale)")],
                unit="short",
                thresholds=thresholds("green", (1, "orange")),
                description="Sources whose report file is unreadable now, so their last good "
                "values are served.",
                width=4,
                height=8,
            ),
            timeseries(
                "Unusable report files",
                [
                    Target(
                        "sum by (source) (increase(implmon_quality_report_errors_total"
                        "[$__rate_interval]))",
                        "{{source}}",
                    )
                ],
                unit="short",
                thresholds=thresholds("green", (1, "red")),
                description="Report file versions that could not be used (malformed, empty, "
                "truncated, too big).",
                links=[
                    Link("Runbook: unreadable report", runbook("implmonqualityreportunreadable"))
                ],
                width=12,
                min=0,
                draw="bars",
            ),
        ],
    )

    return Dashboard(
        uid=UID_QUALITY,
        title="implmon / Quality",
        description="Tests, coverage, static-analysis and security findings, and the quality "
        "gate (quality monitoring).",
        rows=[gate, tests, coverage, findings, reports],
        variables=[DATASOURCE, ENVIRONMENT, COVERAGE_COMPONENT],
        links=[
            Link("Overview", dashboard_url(UID_OVERVIEW)),
            Link("Pipeline & DORA", dashboard_url(UID_PIPELINE)),
        ],
    )
