"""The HTML status page in a real browser: headless Chromium loads it, we read the DOM it built
and keep screenshots in ``test-artifacts/``.

The first test looks at the real exporter monitoring the demo agent framework (the shared
``demo_stack``); the second serves the routes in-process over a snapshot with every section
filled and a real event store, since the demo has no quality, benchmark or pipeline data."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from aiohttp import web
from conftest import Stack
from implmon.component import Finding, MonitoringType, Severity
from implmon.demo import DEMO_COMPONENTS
from implmon.events import parse_event
from implmon.report import StoreEvents, setup_routes
from implmon.store import EventStore
from test_report import COMPONENTS, make_snapshot

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")


async def chromium(*args: str, url: str, timeout: float = 60.0) -> bytes:
    """Run headless Chromium on ``url`` and return its stdout. Flags: no sandbox (we run as
    root in CI containers), no network chatter, a fresh profile each time."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="implmon-chromium-") as profile:
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            *args,
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    assert proc.returncode == 0, f"chromium {args} {url}: exit {proc.returncode}: {err[-2000:]!r}"
    return out


class _Rows(HTMLParser):
    """The text of each row of the table with the given id."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.depth = 0  # >0 while inside the table
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.depth = 1
        elif self.depth and tag == "table":
            self.depth += 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag in ("td", "th") and self.rows:
            self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag == "table":
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data.strip()


def table(dom: str, table_id: str) -> list[list[str]]:
    parser = _Rows(table_id)
    parser.feed(dom)
    return parser.rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def status_url(tmp_path: Path) -> AsyncIterator[str]:
    """An aiohttp server with the report routes over a snapshot and a real event store."""
    flapping = next(name for name, _, _, up in COMPONENTS if not up)
    snapshot = make_snapshot(
        findings=[
            Finding(
                "ComponentDown",
                Severity.CRITICAL,
                MonitoringType.COMPONENT,
                f"{flapping} is down",
                "3 health checks failed in a row",
                {"component": flapping},
                "https://example.org/runbooks#componentdown",
            )
        ],
        benchmarks=[("parse", 0.002, 1.01), ("score", 0.031, 1.34)],
        at=time.time(),
    )
    async with EventStore(tmp_path / "events.db") as store:
        for event in [
            {"kind": "build", "id": "build-101", "build_type": "production",
             "outcome": "success", "duration_seconds": 84.0, "version": "1.4.2"},
            {"kind": "deployment", "id": "deploy-77", "environment": "staging",
             "outcome": "failure", "duration_seconds": 31.5, "version": "1.4.2"},
        ]:  # fmt: skip
            assert (await store.append(parse_event(event))).accepted
        app = web.Application()
        setup_routes(app, lambda: snapshot, events=StoreEvents(store))
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            await runner.cleanup()


async def load(url: str, screenshot: str) -> str:
    """Load the page once: its DOM after rendering, and a screenshot of that same load in
    ``test-artifacts/<screenshot>``."""
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / screenshot
    shot.unlink(missing_ok=True)
    dom = await chromium("--dump-dom", f"--screenshot={shot}", "--window-size=1280,1200", url=url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000  # a blank page compresses to far less
    return dom.decode()


async def test_status_page_of_the_demo_exporter(demo_stack: Stack) -> None:
    url = demo_stack.exporter_url + "/"
    flapping = next(c for c in DEMO_COMPONENTS if c.flapping)
    # The flapping component alternates every few seconds: load the page until Chromium shows
    # it down, so the findings are on the page too.
    deadline = time.monotonic() + 30
    while True:
        dom = await load(url, "status-page.png")
        rows = table(dom, "components-table")
        states = {row[0]: row[3] for row in rows[1:]}
        if states.get(flapping.name) == "down" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)

    assert rows[0][:4] == ["Component", "Type", "Version", "State"]
    shown = {(row[0], row[1], row[2]) for row in rows[1:]}
    assert shown == {(c.name, c.type, c.version) for c in DEMO_COMPONENTS}
    assert states[flapping.name] == "down", f"{flapping.name} never shown down: {states}"
    assert all(states[c.name] == "up" for c in DEMO_COMPONENTS if not c.flapping)
    findings = table(dom, "findings-table")[1:]
    assert any(f[0] == "critical" and flapping.name in f[4] for f in findings), findings
    collectors = {row[0]: row[1] for row in table(dom, "collectors-table")[1:]}
    assert collectors and set(collectors.values()) == {"ok"}
    assert '<meta http-equiv="refresh"' in dom


async def test_every_section_renders_in_chromium(status_url: str) -> None:
    dom = await load(status_url, "status-page-all-sections.png")

    components = table(dom, "components-table")
    header, rows = components[0], components[1:]
    assert header[:4] == ["Component", "Type", "Version", "State"]
    shown = {(row[0], row[1], row[3]) for row in rows}
    assert shown == {(n, t, "up" if up else "down") for n, t, _, up in COMPONENTS}
    findings = table(dom, "findings-table")[1:]
    assert [(f[0], f[1], f[2]) for f in findings] == [("critical", "component", "ComponentDown")]
    benchmarks = {row[0]: row[3] for row in table(dom, "benchmarks-table")[1:]}
    assert benchmarks == {"score": "failed", "parse": "ok"}
    assert [r[1] for r in table(dom, "builds-table")[1:]] == ["build-101"]
    assert [(r[1], r[3]) for r in table(dom, "deployments-table")[1:]] == [("deploy-77", "failure")]
