"""``implmon dashboards push`` against a stand-in for Grafana.

Grafana cannot run here (no package in any registry these machines reach), so this test starts
a local aiohttp server that implements just the Grafana HTTP API endpoints grafana-client calls
for a push -- ``GET /api/folders/{uid}``, ``POST /api/folders``, ``POST /api/dashboards/db`` --
with Grafana's answers (404 for a missing folder, 412 for an existing dashboard without
``overwrite``, 401 for bad credentials, an incrementing version). It stands in for Grafana; the
client, the push code and the CLI handler under test are the real ones.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from implmon.dashboards import build_all
from implmon.dashboards.cli import add_parser
from implmon.dashboards.push import PushError, credential_from_env, push

TOKEN = "glsa_test_token"
USER, PASSWORD = "admin", "s3cret"


@dataclass
class FakeGrafana:
    """State of the stand-in: folders, saved dashboards and every request it received."""

    folders: dict[str, str] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, str, Any]] = field(default_factory=list)
    url: str = ""

    def authorized(self, request: web.Request) -> bool:
        basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return request.headers.get("Authorization") in {f"Bearer {TOKEN}", f"Basic {basic}"}

    @web.middleware
    async def record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append(
            (request.method, request.path, request.headers.get("Authorization", ""), body)
        )
        if not self.authorized(request):
            return web.json_response({"message": "Unauthorized"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def get_folder(self, request: web.Request) -> web.Response:
        uid = request.match_info["uid"]
        if uid not in self.folders:
            return web.json_response({"message": "folder not found", "status": "not-found"},
                                     status=404)  # fmt: skip
        return web.json_response({"uid": uid, "title": self.folders[uid], "id": 1})

    async def create_folder(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.folders[body["uid"]] = body["title"]
        return web.json_response({"uid": body["uid"], "title": body["title"], "id": 1})

    async def save_dashboard(self, request: web.Request) -> web.Response:
        body = await request.json()
        model = body["dashboard"]
        uid = model["uid"]
        if body.get("folderUid") not in self.folders:
            return web.json_response({"message": "folder not found"}, status=400)
        previous = self.dashboards.get(uid)
        if previous is not None and not body.get("overwrite"):
            return web.json_response(
                {"message": "A dashboard with the same uid already exists",
                 "status": "name-exists"}, status=412,
            )  # fmt: skip
        version = previous["version"] + 1 if previous else 1
        self.dashboards[uid] = {
            "model": model,
            "folderUid": body["folderUid"],
            "message": body.get("message"),
            "version": version,
        }
        return web.json_response(
            {"id": len(self.dashboards), "uid": uid, "status": "success", "version": version,
             "url": f"/d/{uid}/{model['title'].lower().replace(' ', '-')}"}
        )  # fmt: skip


@pytest.fixture
async def grafana() -> AsyncIterator[FakeGrafana]:
    fake = FakeGrafana()
    app = web.Application(middlewares=[fake.record])
    app.router.add_get("/api/folders/{uid}", fake.get_folder)
    app.router.add_post("/api/folders", fake.create_folder)
    app.router.add_post("/api/dashboards/db", fake.save_dashboard)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


async def test_first_push_creates_the_folder_and_saves_every_dashboard(
    grafana: FakeGrafana,
) -> None:
    boards = build_all()
    # grafana-client is synchronous: run it in a thread while this loop serves the stand-in.
    results = await asyncio.to_thread(
        push, grafana.url, boards, credential=TOKEN, message="release 0.1.0"
    )
    assert [r.uid for r in results] == [b.uid for b in boards]
    assert {r.version for r in results} == {1}
    assert results[0].url == "/d/implmon-overview/implmon-/-overview"
    assert grafana.folders == {"implmon": "implmon"}
    methods = [(method, path) for method, path, _, _ in grafana.requests]
    assert methods[:2] == [("GET", "/api/folders/implmon"), ("POST", "/api/folders")]
    assert methods[2:] == [("POST", "/api/dashboards/db")] * len(boards)
    assert {auth for _, _, auth, _ in grafana.requests} == {f"Bearer {TOKEN}"}
    for board in boards:
        saved = grafana.dashboards[board.uid]
        assert saved["folderUid"] == "implmon"
        assert saved["message"] == "release 0.1.0"
        expected = json.loads(json.dumps(board.to_json()))
        expected["id"] = None
        assert saved["model"] == expected
    bodies = [body for method, path, _, body in grafana.requests if path == "/api/dashboards/db"]
    assert all(body["overwrite"] is True for body in bodies)


async def test_second_push_overwrites_with_basic_auth(grafana: FakeGrafana) -> None:
    boards = build_all()[:2]
    await asyncio.to_thread(push, grafana.url, boards, credential=(USER, PASSWORD))
    grafana.requests.clear()
    results = await asyncio.to_thread(
        push, grafana.url, boards, credential=(USER, PASSWORD), message="second"
    )
    assert [r.version for r in results] == [2, 2]
    # The folder exists now: looked up, not created again.
    calls = [(method, path) for method, path, _, _ in grafana.requests]
    assert calls[0] == ("GET", "/api/folders/implmon")
    assert ("POST", "/api/folders") not in calls
    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert {auth for _, _, auth, _ in grafana.requests} == {basic}
    assert grafana.dashboards[boards[0].uid]["message"] == "second"


async def test_no_overwrite_refuses_an_existing_dashboard(grafana: FakeGrafana) -> None:
    boards = build_all()[:1]
    await asyncio.to_thread(push, grafana.url, boards, credential=TOKEN)
    with pytest.raises(PushError) as err:
        await asyncio.to_thread(push, grafana.url, boards, credential=TOKEN, overwrite=False)
    assert str(err.value).startswith("dashboard implmon-overview: ")
    assert grafana.dashboards["implmon-overview"]["version"] == 1


async def test_bad_credentials_fail_with_grafanas_answer(grafana: FakeGrafana) -> None:
    with pytest.raises(PushError) as err:
        await asyncio.to_thread(push, grafana.url, build_all(), credential="wrong")
    assert str(err.value).startswith("folder implmon: ")
    assert grafana.dashboards == {}


async def test_cli_reads_url_and_credentials_from_the_environment(
    grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GRAFANA_URL", grafana.url)
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    monkeypatch.setenv("GRAFANA_USER", USER)
    monkeypatch.setenv("GRAFANA_PASSWORD", PASSWORD)
    parser = argparse.ArgumentParser(prog="implmon")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["dashboards", "push", "--folder", "Observability", "--folder-uid", "obs",
         "--message", "from CI"]
    )  # fmt: skip
    code = await asyncio.to_thread(args.func, args)
    assert code == 0
    assert grafana.folders == {"obs": "Observability"}
    assert len(grafana.dashboards) == len(build_all())
    assert {d["message"] for d in grafana.dashboards.values()} == {"from CI"}
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "pushed implmon-overview version 1 /d/implmon-overview/implmon-/-overview"

    monkeypatch.setenv("GRAFANA_TOKEN", "wrong")
    code = await asyncio.to_thread(args.func, args)
    assert code == 1
    assert capsys.readouterr().err.startswith("implmon dashboards push: folder obs: ")


def test_credentials_from_environment() -> None:
    assert credential_from_env({}) is None
    assert credential_from_env({"GRAFANA_TOKEN": TOKEN, "GRAFANA_USER": USER}) == TOKEN
    assert credential_from_env({"GRAFANA_USER": USER, "GRAFANA_PASSWORD": PASSWORD}) == (
        USER,
        PASSWORD,
    )
    with pytest.raises(PushError, match="GRAFANA_USER and GRAFANA_PASSWORD must be set together"):
        credential_from_env({"GRAFANA_USER": USER})
