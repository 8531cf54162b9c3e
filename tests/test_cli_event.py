"""`implmon event ...` as a CI job runs it: a subprocess against a live ingest API."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from implmon import ingest
from implmon.ingest import INGEST
from implmon.stack import free_port

TOKEN = "ci-token"


async def implmon_event(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "implmon.cli", "event", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("IMPLMON_")},
             **(env or {})},
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TestServer]:
    app = web.Application()
    ingest.setup_routes(app, store_path=tmp_path / "e.db", token_value=TOKEN)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    yield srv
    await srv.close()


DEPLOY = ["deployment", "--environment", "production", "--outcome", "success",
          "--duration", "42.5", "--id", "pipeline-99", "--version", "1.4.2",
          "--commit-time", "2026-11-24T10:00:00Z"]


async def test_accepted_then_duplicate(server: TestServer, tmp_path: Path) -> None:
    url = str(server.make_url("/"))
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    code, out, err = await implmon_event(*DEPLOY, "--url", url,
                                         env={"IMPLMON_TOKEN": TOKEN, "TRACEPARENT": traceparent})
    assert (code, out.strip()) == (0, "deployment event pipeline-99: stored"), err
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    # The CI job re-run: same id, same event (its trace context included) -> a duplicate.
    code, out, _ = await implmon_event(*DEPLOY, "--url", url, "--token-file", str(token_file),
                                       env={"TRACEPARENT": traceparent})
    assert (code, out.strip()) == (0, "deployment event pipeline-99: duplicate")
    # The same id for a different event is refused.
    code, _, err = await implmon_event(*DEPLOY[:4], "failure", *DEPLOY[5:], "--url", url,
                                       "--token-file", str(token_file))
    assert code == 1 and "rejected with 409" in err
    ((_, _, event),) = server.app[INGEST].store.events()
    assert event.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert event.commit_time is not None and event.commit_time.hour == 10


async def test_rejections_exit_1(server: TestServer) -> None:
    url = str(server.make_url("/"))
    code, _, err = await implmon_event(*DEPLOY, "--url", url, env={"IMPLMON_TOKEN": "wrong"})
    assert code == 1
    assert "rejected with 403" in err and "invalid token" in err
    code, _, err = await implmon_event(*DEPLOY, "--url", url)
    assert code == 1 and "rejected with 401" in err
    assert server.app[INGEST].store.events() == []


async def test_invalid_event_is_a_usage_error(server: TestServer) -> None:
    code, _, err = await implmon_event(
        "deployment", "--environment", "production", "--outcome", "success",
        "--duration", "-3", "--commit-time", "noon", "--url", str(server.make_url("/")),
        env={"IMPLMON_TOKEN": TOKEN})
    assert code == 2
    assert "duration_seconds: Input should be greater than or equal to 0" in err
    assert "commit_time:" in err


async def test_undelivered_after_retries_exits_3() -> None:
    port = free_port()  # nothing listens there
    code, _, err = await implmon_event(*DEPLOY, "--url", f"http://127.0.0.1:{port}",
                                       "--retries", "1", env={"IMPLMON_TOKEN": TOKEN})
    assert code == 3
    assert "not delivered after 2 attempts" in err and "Connection refused" in err


async def test_retries_503_with_the_same_id(tmp_path: Path) -> None:
    seen: list[str] = []

    async def flaky(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body["id"])
        if len(seen) < 3:
            return web.json_response({"error": "store unavailable"}, status=503)
        return web.json_response({"status": "stored", "id": body["id"], "seq": 1}, status=201)

    app = web.Application()
    app.router.add_post("/api/v1/events", flaky)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    try:
        code, out, err = await implmon_event(
            "build", "--build-type", "testing", "--outcome", "failure",
            "--url", str(srv.make_url("/")), "--retries", "3")
    finally:
        await srv.close()
    assert code == 0, err
    assert len(seen) == 3 and len(set(seen)) == 1  # a generated id, reused by every retry
    assert out.strip() == f"build event {seen[0]}: stored"
