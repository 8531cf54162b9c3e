"""The report model, its three renderers and its two routes, from real snapshots and events."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import socket
import subprocess
import sys
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import Stack
from implmon import cli_report
from implmon.component import Finding, MonitoringType, Severity, Snapshot
from implmon.demo import DEMO_COMPONENTS
from implmon.events import Event, parse_event
from implmon.metrics import CATALOGUE, Sample
from implmon.report import (
    MARKDOWN_MARKER,
    MARKDOWN_ROWS,
    RECENT_LIMIT,
    Period,
    Report,
    StoreEvents,
    build_report,
    render_html,
    render_json,
    render_markdown,
    setup_routes,
)
from implmon.store import EventStore

NOW = 1_800_000_000.0
HOSTILE = '<script>alert("x")</script>|&'

# The components of a small agent framework: (name, type, version, up).
COMPONENTS = [
    ("ingest", "collector", "1.4.2", True),
    ("scorer", "analyzer", "0.9.0", True),
    ("enricher", "processor", "2.0.1", False),
    ("notifier", "reporter", "1.1.0", True),
]


def sample(metric: str, value: float, **labels: str) -> Sample:
    spec = CATALOGUE[metric]
    assert set(labels) == set(spec.labels), f"{metric}: labels {sorted(labels)}"
    return Sample(metric, labels, value)


def make_snapshot(
    components: Sequence[tuple[str, str, str, bool]] = COMPONENTS,
    findings: Sequence[Finding] = (),
    *,
    gates: Sequence[tuple[str, str, bool]] = (("default", "production", True),),
    benchmarks: Sequence[tuple[str, float, float]] = (("parse", 0.002, 1.01),),
    collectors: dict[str, tuple[bool, float, float, str]] | None = None,
    at: float = NOW,
) -> Snapshot:
    """A snapshot as the monitor would produce it at ``at`` for these components (one sample
    per component family), gates, benchmarks (name, median, ratio) and collectors."""
    samples: list[Sample] = []
    for name, type_, version, up in components:
        samples += [
            sample("implmon_component_info", 1, component=name, type=type_, version=version),
            sample("implmon_component_up", float(up), component=name, type=type_),
            sample("implmon_component_probe_success", float(up), component=name, type=type_),
            sample(
                "implmon_component_health_status",
                1,
                component=name,
                type=type_,
                status="pass" if up else "fail",
            ),
            sample("implmon_component_probe_duration_seconds", 0.012, component=name, type=type_),
            sample(
                "implmon_component_probe_http_status_code",
                200 if up else 503,
                component=name,
                type=type_,
            ),
            sample(
                "implmon_component_consecutive_failures",
                0 if up else 3,
                component=name,
                type=type_,
            ),
        ]
    up_count = sum(1 for c in components if c[3])
    ratio = up_count / len(components) if components else math.nan
    samples.append(sample("implmon_system_health_ratio", ratio))
    for gate, build_type, passed in gates:
        samples.append(
            sample("implmon_quality_gate_passed", float(passed), gate=gate, build_type=build_type)
        )
    for bench, median, ratio_ in benchmarks:
        samples.append(
            sample("implmon_performance_benchmark_seconds", median, benchmark=bench, stat="median")
        )
        samples.append(sample("implmon_performance_regression_ratio", ratio_, benchmark=bench))
    samples += [
        sample("implmon_quality_tests", 41, suite="unit", result="passed"),
        sample("implmon_quality_tests", 2, suite="unit", result="failed"),
        sample("implmon_quality_coverage_ratio", 0.873, component="ingest", kind="line"),
    ]
    if collectors is None:
        collectors = {
            "http_probe": (True, 0.05, at - 1, ""),
            "system": (True, 0.01, at - 1, ""),
        }
    return Snapshot(
        timestamp=at - 1, samples=samples, findings=list(findings), collectors=collectors
    )


def finding(severity: Severity, name: str = "ComponentDown", **labels: str) -> Finding:
    return Finding(
        alertname=name,
        severity=severity,
        monitoring_type=MonitoringType.COMPONENT,
        summary=f"{name} for {labels}",
        description="details",
        labels=labels,
        runbook="https://runbooks.example/implmon#" + name.lower(),
    )


def run_event(kind: str, id_: str, target: str, outcome: str, at: float) -> tuple[float, Event]:
    field = "build_type" if kind == "build" else "environment"
    event = parse_event(
        {"kind": kind, "id": id_, field: target, "outcome": outcome, "duration_seconds": 12.5}
    )
    return at, event


# --- the model ------------------------------------------------------------------------------


def test_components_come_from_the_component_families_down_first() -> None:
    report = build_report(make_snapshot(), now=NOW)

    down = [c[0] for c in COMPONENTS if not c[3]]
    assert [c.name for c in report.components[: len(down)]] == down  # what is broken first
    by_name = {c.name: c for c in report.components}
    assert set(by_name) == {c[0] for c in COMPONENTS}
    for name, type_, version, up in COMPONENTS:
        c = by_name[name]
        assert (c.type, c.version) == (type_, version)
        assert c.state == ("up" if up else "down")
        assert c.health == ("pass" if up else "fail")
        assert c.probe_success is up
        assert c.http_status == (200 if up else 503)
        assert c.consecutive_failures == (0 if up else 3)
    up_count = sum(1 for c in COMPONENTS if c[3])
    assert report.system_health_ratio == pytest.approx(up_count / len(COMPONENTS))
    assert report.last_cycle_timestamp == NOW - 1


def test_status_reflects_the_worst_problem() -> None:
    healthy = [(n, t, v, True) for n, t, v, _ in COMPONENTS]
    assert build_report(make_snapshot(healthy), now=NOW).status == "ok"
    assert build_report(make_snapshot(), now=NOW).status == "degraded"  # one component down
    failed_gate = make_snapshot(healthy, gates=[("default", "production", False)])
    assert build_report(failed_gate, now=NOW).status == "degraded"
    failing_collector = make_snapshot(healthy, collectors={"junit": (False, 1.0, 0.0, "boom")})
    report = build_report(failing_collector, now=NOW)
    assert report.status == "degraded"
    assert report.collectors[0].last_success_timestamp is None  # 0 means never, not 1970
    warning = make_snapshot(healthy, [finding(Severity.WARNING)])
    assert build_report(warning, now=NOW).status == "degraded"
    critical = make_snapshot(healthy, [finding(Severity.WARNING), finding(Severity.CRITICAL)])
    assert build_report(critical, now=NOW).status == "critical"
    assert build_report(None, now=NOW).status == "unknown"


def test_findings_are_ordered_by_severity_and_keep_their_runbook() -> None:
    findings = [
        finding(Severity.INFO, "Note"),
        finding(Severity.CRITICAL, "ComponentDown", component="enricher"),
        finding(Severity.WARNING, "Slow"),
    ]
    report = build_report(make_snapshot(findings=findings), now=NOW)

    assert [f.severity for f in report.findings] == ["critical", "warning", "info"]
    top = report.findings[0]
    assert top.labels == {"component": "enricher"}
    assert top.runbook == findings[1].runbook
    assert top.monitoring_type == "component"


def test_benchmarks_regress_by_finding_or_by_tolerance_worst_first() -> None:
    benches = [("fast", 0.001, 1.02), ("slow", 0.004, 1.31), ("flagged", 0.002, 1.05)]
    flag = Finding(
        "PerformanceRegression",
        Severity.WARNING,
        MonitoringType.PERFORMANCE,
        "flagged is slower",
        "",
        {"benchmark": "flagged"},
    )
    report = build_report(make_snapshot(benchmarks=benches, findings=[flag]), now=NOW)

    by_name = {b.benchmark: b for b in report.benchmarks}
    assert not by_name["fast"].regressed
    assert by_name["slow"].regressed  # 1.31 exceeds the default tolerance
    assert by_name["flagged"].regressed  # the analyzer said so, within the default tolerance
    assert [b.benchmark for b in report.benchmarks] == ["slow", "flagged", "fast"]
    assert by_name["slow"].median_seconds == pytest.approx(0.004)
    strict = build_report(make_snapshot(benchmarks=benches), now=NOW, regression_tolerance=0.01)
    assert all(b.regressed for b in strict.benchmarks)


def test_the_regression_analyzers_verdict_wins_over_the_tolerance() -> None:
    # "noisy" is over the tolerance once, which the analyzer does not yet call a regression;
    # "steady" is within it but the analyzer saw it over in its last N runs.
    snapshot = make_snapshot(benchmarks=[("noisy", 0.002, 1.5), ("steady", 0.002, 1.08)])
    snapshot.samples += [
        sample("implmon_performance_regression_detected", 0, benchmark="noisy"),
        sample("implmon_performance_regression_detected", 1, benchmark="steady"),
    ]
    report = build_report(snapshot, now=NOW)

    assert {b.benchmark: b.regressed for b in report.benchmarks} == {
        "noisy": False,
        "steady": True,
    }


def test_non_finite_values_become_null_in_strict_json() -> None:
    report = build_report(make_snapshot(components=[]), now=NOW)

    assert report.system_health_ratio is None

    # json.loads rejects nothing; parse_constant makes NaN/Infinity an error, as JSON says.
    def reject(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    assert json.loads(render_json(report), parse_constant=reject)["system_health_ratio"] is None


@pytest.mark.parametrize("period", list(Period))
def test_period_window_selects_runs_and_counts_them(period: Period) -> None:
    inside, outside = NOW - period.seconds + 60, NOW - period.seconds - 60
    events = [
        run_event("build", "b-in-ok", "production", "success", inside),
        run_event("build", "b-in-fail", "production", "failure", inside + 1),
        run_event("build", "b-out", "production", "success", outside),
        run_event("deployment", "d-in", "staging", "success", NOW - 5),
        (NOW - 5, parse_event({"kind": "incident", "id": "i1", "environment": "production"})),
    ]
    report = build_report(make_snapshot(), events, period=period, now=NOW)

    assert report.window_end - report.window_start == period.seconds
    assert report.review == period.review
    assert [b.id for b in report.builds] == ["b-in-fail", "b-in-ok"]  # newest first
    assert [d.id for d in report.deployments] == ["d-in"]
    counts = {(c.kind, c.target, c.outcome): c.count for c in report.pipeline_counts}
    assert counts == {
        ("build", "production", "success"): 1,
        ("build", "production", "failure"): 1,
        ("deployment", "staging", "success"): 1,
    }
    assert report.events_available


def test_event_time_wins_over_received_time_and_lists_are_capped() -> None:
    stamped = parse_event(
        {
            "kind": "deployment",
            "id": "late",
            "environment": "production",
            "outcome": "success",
            "timestamp": "2020-01-01T00:00:00Z",
        }
    )
    many = [
        run_event("build", f"b{i}", "testing", "success", NOW - 100 + i)
        for i in range(RECENT_LIMIT + 5)
    ]
    report = build_report(None, [(NOW - 1, stamped), *many], period=Period.DAILY, now=NOW)

    assert report.deployments == []  # it happened in 2020 although it was received just now
    assert len(report.builds) == RECENT_LIMIT
    assert sum(c.count for c in report.pipeline_counts) == RECENT_LIMIT + 5


def test_json_round_trips_to_an_equal_report() -> None:
    events = [run_event("deployment", "d1", "production", "failure", NOW - 10)]
    snapshot = make_snapshot(findings=[finding(Severity.CRITICAL, component="enricher")])
    report = build_report(snapshot, events, period=Period.WEEKLY, now=NOW)

    assert Report.model_validate_json(render_json(report)) == report


# --- Markdown -------------------------------------------------------------------------------


def test_markdown_puts_status_and_problems_first_and_escapes_cells() -> None:
    hostile = Finding("ComponentDown", Severity.CRITICAL, MonitoringType.COMPONENT, HOSTILE, "", {})
    events = [
        run_event("deployment", "d-bad", "production", "failure", NOW - 10),
        run_event("deployment", "d-ok", "production", "success", NOW - 20),
    ]
    report = build_report(make_snapshot(findings=[hostile]), events, now=NOW)
    text = render_markdown(report)
    lines = text.splitlines()

    assert lines[0] == MARKDOWN_MARKER
    assert lines[1] == f"## implmon: {Period.DAILY.review}: CRITICAL"
    assert "<script>" not in text
    assert "&lt;script&gt;" in text
    row = next(line for line in lines if "&lt;script&gt;" in line)
    # The summary's pipe is escaped, so the row keeps the table's five columns.
    assert len(re.split(r"(?<!\\)\|", row)) - 2 == 5
    assert any("enricher" in line and "down" in line for line in lines)  # the down component
    details = lines[lines.index("<details><summary>All components</summary>") :]
    assert all(any(f"| {c[0]} |" in line for line in details) for c in COMPONENTS)
    assert any("d-bad" in line for line in lines)  # the failed deployment
    assert not any("d-ok" in line for line in lines)  # successes are only counted
    assert any(line.startswith("| deployment | production | 2 | 1 | 50.0%") for line in lines)


def test_markdown_caps_long_tables() -> None:
    findings = [finding(Severity.WARNING, f"Alert{i:02}") for i in range(MARKDOWN_ROWS + 3)]
    text = render_markdown(build_report(make_snapshot(findings=findings), now=NOW))

    assert "Alert00" in text
    assert f"Alert{MARKDOWN_ROWS + 2:02}" not in text
    assert "… and 3 more" in text


# --- HTML -----------------------------------------------------------------------------------


class _Page(HTMLParser):
    """Collects the text of each element with an id, the anchors and the script tags."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, list[str]] = {}
        self.open_ids: list[tuple[str, str]] = []
        self.hrefs: list[str] = []
        self.scripts = 0
        self.meta: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "a" and attributes.get("href"):
            self.hrefs.append(str(attributes["href"]))
        if tag == "meta":
            self.meta.append(attributes)
        if "id" in attributes:
            self.open_ids.append((tag, str(attributes["id"])))
            self.ids[str(attributes["id"])] = []

    def handle_endtag(self, tag: str) -> None:
        if self.open_ids and self.open_ids[-1][0] == tag:
            self.open_ids.pop()

    def handle_data(self, data: str) -> None:
        for _, id_ in self.open_ids:
            self.ids[id_].append(data)

    def text(self, id_: str) -> str:
        return " ".join(" ".join(self.ids[id_]).split())


def parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def test_html_shows_every_section_and_escapes_everything() -> None:
    hostile = Finding(
        "ComponentDown",
        Severity.CRITICAL,
        MonitoringType.COMPONENT,
        HOSTILE,
        HOSTILE,
        {"component": HOSTILE},
        runbook='javascript:alert("x")',
    )
    components = [*COMPONENTS, (HOSTILE, "collector", HOSTILE, False)]
    events = [run_event("build", "b1", "production", "failure", NOW - 30)]
    report = build_report(make_snapshot(components, [hostile]), events, now=NOW)
    page = parse(render_html(report, refresh_seconds=15))

    assert page.scripts == 0
    assert not any(h.startswith("javascript:") for h in page.hrefs)
    assert {"http-equiv": "refresh", "content": "15"} in page.meta
    components_text = page.text("components-table")
    for name, type_, _, _ in COMPONENTS:
        assert name in components_text and type_ in components_text
    assert HOSTILE in components_text  # shown as text, not markup
    findings_text = page.text("findings-table")
    assert "critical" in findings_text and "component" in findings_text
    assert "passed" in page.text("gates-table")
    assert "parse" in page.text("benchmarks-table")
    assert "b1" in page.text("builds-table")
    assert "No deployments in this window." in page.text("deployments-table")
    assert "http_probe" in page.text("collectors-table")
    assert "unit" in page.text("tests-table")


def test_html_before_the_first_cycle_and_without_a_store() -> None:
    page = parse(render_html(build_report(None, now=NOW), refresh_seconds=None))

    assert "No monitor cycle has completed yet." in page.text("no-cycle")
    assert "No event store is connected." in page.text("pipeline-unavailable")
    assert "No components are monitored yet." in page.text("components-table")
    assert not any(m.get("http-equiv") == "refresh" for m in page.meta)


# --- routes ---------------------------------------------------------------------------------


async def _client(app: web.Application) -> TestClient[web.Request, web.Application]:
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_routes_serve_the_latest_snapshot_and_the_store_events(tmp_path: Path) -> None:
    current: list[Snapshot | None] = [None]
    async with EventStore(tmp_path / "events.db") as store:
        # The store stamps them with the time it receives them: now, inside every window.
        for _, event in [
            run_event("build", "b1", "staging", "success", 0),
            run_event("deployment", "d1", "production", "failure", 0),
        ]:
            assert (await store.append(event)).accepted
        app = web.Application()
        setup_routes(app, lambda: current[0], events=StoreEvents(store))
        client = await _client(app)
        try:
            before = await client.get("/api/v1/report")
            assert before.status == 200
            assert (await before.json())["status"] == "unknown"

            current[0] = make_snapshot()
            resp = await client.get("/api/v1/report", params={"period": "weekly"})
            assert resp.status == 200
            assert resp.content_type == "application/json"
            body = Report.model_validate(await resp.json())
            assert body.period is Period.WEEKLY
            assert {c.name for c in body.components} == {c[0] for c in COMPONENTS}
            assert [b.id for b in body.builds] == ["b1"]
            assert [d.outcome for d in body.deployments] == ["failure"]

            # Events appended after the first read are picked up incrementally.
            _, later = run_event("build", "b2", "testing", "success", 0)
            assert (await store.append(later)).accepted
            body = Report.model_validate(await (await client.get("/api/v1/report")).json())
            assert [b.id for b in body.builds] == ["b2", "b1"]

            page = await client.get("/", params={"period": "monthly"})
            assert page.status == 200
            assert page.content_type == "text/html"
            parsed = parse(await page.text())
            assert "b2" in parsed.text("builds-table")
            assert Period.MONTHLY.review in await page.text()
        finally:
            await client.close()


async def test_an_unreadable_store_degrades_the_page_not_the_route(tmp_path: Path) -> None:
    missing = tmp_path / "never-created.db"  # SQLite cannot open it read-only
    app = web.Application()
    setup_routes(app, make_snapshot, events=StoreEvents(EventStore(missing)))
    client = await _client(app)
    try:
        resp = await client.get("/api/v1/report")
        assert resp.status == 200
        report = Report.model_validate(await resp.json())
        assert not report.events_available
        assert report.events_error.startswith("event store unreadable: OperationalError: ")
        assert {c.name for c in report.components} == {c[0] for c in COMPONENTS}
        page = parse(await (await client.get("/")).text())
        assert page.text("pipeline-unavailable") == report.events_error
        assert report.events_error in render_markdown(report)
    finally:
        await client.close()


async def test_bad_period_is_a_400_that_names_the_parameter() -> None:
    app = web.Application()
    setup_routes(app, make_snapshot)
    client = await _client(app)
    try:
        for path in ("/api/v1/report", "/"):
            resp = await client.get(path, params={"period": "hourly"})
            assert resp.status == 400
            error = (await resp.json())["error"]
            assert error.startswith("query parameter period: must be one of daily, weekly")
            assert "'hourly'" in error
    finally:
        await client.close()


# --- implmon report (the CLI) ---------------------------------------------------------------


def report_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="implmon")
    cli_report.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["report", *argv])


async def run_cli(*argv: str) -> int:
    """Run ``implmon report`` as the console script would; the CLI runs its own event loop,
    so it runs in a worker thread while the test's loop serves the exporter."""
    args = report_args(*argv)
    code: int = await asyncio.to_thread(args.func, args)
    return code


async def test_cli_renders_what_the_exporter_serves(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    snapshot = make_snapshot(findings=[finding(Severity.WARNING, "Slow")])
    app = web.Application()
    setup_routes(app, lambda: snapshot, clock=lambda: NOW)
    client = await _client(app)
    url = str(client.make_url("/"))
    try:
        for period in Period:
            expected = build_report(snapshot, period=period, now=NOW)
            assert await run_cli("--url", url, "--format", "markdown", "--period", period) == 0
            assert capsys.readouterr().out == render_markdown(expected)
        assert await run_cli("--url", url, "--format", "json") == 0
        fetched = Report.model_validate_json(capsys.readouterr().out)
        assert fetched == build_report(snapshot, now=NOW)

        out = tmp_path / "status.html"
        assert await run_cli("--url", url, "--format", "html", "-o", str(out)) == 0
        page = parse(out.read_text(encoding="utf-8"))
        assert not any(m.get("http-equiv") == "refresh" for m in page.meta)  # a static file
        assert all(c[0] in page.text("components-table") for c in COMPONENTS)

        # One component is down and a warning is active: degraded.
        assert await run_cli("--url", url, "--fail-on", "degraded") == cli_report.EXIT_STATUS
        assert "status is degraded" in capsys.readouterr().err
        assert await run_cli("--url", url, "--fail-on", "critical") == 0
    finally:
        await client.close()


async def test_cli_says_what_failed_and_where(capsys: pytest.CaptureFixture[str]) -> None:
    # Not an implmon exporter: something else answering on the port.
    async def not_a_report(_: web.Request) -> web.Response:
        return web.json_response({"hello": "world"})

    other = web.Application()
    other.router.add_get("/api/v1/report", not_a_report)
    client = await _client(other)
    url = str(client.make_url("/"))
    try:
        assert await run_cli("--url", url) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"implmon report: {url.rstrip('/')}/api/v1/report: not an implmon")
        assert "generated_at" in err

        missing = str(client.make_url("/nothing-here/"))
        assert await run_cli("--url", missing) == 1
        assert "HTTP 404" in capsys.readouterr().err
    finally:
        await client.close()

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert await run_cli("--url", f"http://127.0.0.1:{port}") == 1
    err = capsys.readouterr().err
    assert f"http://127.0.0.1:{port}/api/v1/report: ClientConnectorError" in err


async def test_cli_offline_reads_the_event_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "events.db"
    async with EventStore(path) as store:
        for _, event in [
            run_event("deployment", "d-ok", "production", "success", 0),
            run_event("deployment", "d-bad", "production", "failure", 0),
            run_event("build", "b-1", "testing", "success", 0),
        ]:
            assert (await store.append(event)).accepted

    assert await run_cli("--store", str(path), "--format", "json", "--period", "weekly") == 0
    report = Report.model_validate_json(capsys.readouterr().out)
    assert report.status == "unknown"
    assert report.events_available
    assert {d.id for d in report.deployments} == {"d-ok", "d-bad"}
    assert [b.id for b in report.builds] == ["b-1"]

    assert await run_cli("--store", str(tmp_path / "absent.db")) == 1
    assert "absent.db: no such event store file" in capsys.readouterr().err


def test_console_script_reports_the_demo_exporter(demo_stack: Stack) -> None:
    """The installed ``implmon`` script against the real exporter monitoring the demo."""
    script = str(Path(sys.executable).parent / "implmon")
    url = demo_stack.exporter_url
    result = subprocess.run(
        [script, "report", "--url", url, "--format", "json", "--period", "weekly"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = Report.model_validate_json(result.stdout)
    assert report.period is Period.WEEKLY
    assert {(c.name, c.type, c.version) for c in report.components} == {
        (c.name, c.type, c.version) for c in DEMO_COMPONENTS
    }
    assert report.last_cycle_timestamp is not None
    assert {c.name for c in report.collectors} >= {"agents"}
    assert report.events_available, report.events_error  # the exporter's store is wired in

    # The flapping component makes the status alternate; the exit code must agree with the
    # status the comment shows.
    result = subprocess.run(
        [script, "report", "--url", url, "--fail-on", "critical"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    heading = result.stdout.splitlines()[1]
    assert heading.startswith("## implmon: Daily code review: ")
    expected = cli_report.EXIT_STATUS if heading.endswith("CRITICAL") else 0
    assert result.returncode == expected, result.stderr
