"""The ingest API against bad input: each case answered as documented, nothing stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from implmon import ingest
from implmon.ingest import EVENTS_PATH, INGEST, OPENAPI_PATH

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GOOD: dict[str, Any] = {
    "kind": "deployment",
    "id": "pipeline-1234",
    "environment": "production",
    "outcome": "success",
    "duration_seconds": 42.5,
    "version": "1.4.2",
    "commit_time": "2026-11-24T10:00:00Z",
}

MakeClient = Callable[..., Any]


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[MakeClient]:
    clients: list[TestClient[web.Request, web.Application]] = []

    async def make(**kwargs: Any) -> TestClient[web.Request, web.Application]:
        app = web.Application()
        kwargs.setdefault("store_path", tmp_path / f"events{len(clients)}.db")
        kwargs.setdefault("max_body_bytes", 4096)
        ingest.setup_routes(app, **kwargs)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def stored(client: TestClient[web.Request, web.Application]) -> list[str]:
    return [e.id for _, _, e in client.app[INGEST].store.events()]


def deployments(client: TestClient[web.Request, web.Application]) -> float:
    counters = client.app[INGEST].store.aggregates.counters["implmon_deployments_total"]
    return sum(counters.values())


async def test_good_event_is_stored(make_client: MakeClient) -> None:
    client = await make_client(token_value=TOKEN)
    resp = await client.post(EVENTS_PATH, json=GOOD, headers=AUTH)
    assert resp.status == 201
    assert await resp.json() == {"status": "stored", "id": "pipeline-1234", "seq": 1}
    assert stored(client) == ["pipeline-1234"]
    assert deployments(client) == 1


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"duration_seconds": "42.5"}, {"duration_seconds": "Input should be a valid number"}),
        ({"outcome": 1}, {"outcome": "Input should be 'success', 'failure' or 'cancelled'"}),
        ({"commit_time": "yesterday"}, {"commit_time": "Input should be a valid datetime, "
                                                       "input is too short"}),
        ({"commit_time": "2026-11-24T10:00:00"}, {"commit_time": "Input should have timezone "
                                                                 "info"}),
        ({"duration_seconds": -1}, {"duration_seconds": "Input should be greater than or equal "
                                                        "to 0"}),
        ({"environment": None, "outcome": None}, {"environment": "Field required",
                                                  "outcome": "Field required"}),
        ({"kind": "release"}, {"kind": "must be one of build, deployment, validation, "
                                        "incident"}),
        ({"kind": None}, {"kind": "Field required"}),
        ({"id": "has space"}, {"id": "String should match pattern "
                                     "'^[A-Za-z0-9._:/@+#=-]+$'"}),
        ({"colour": "blue"}, {"colour": "Extra inputs are not permitted"}),
        ({"trace_id": "XYZ"}, {"trace_id": "String should match pattern '^[0-9a-f]{32}$'"}),
    ],
)
async def test_schema_violations_name_each_field(
    make_client: MakeClient, change: dict[str, Any], errors: dict[str, str]
) -> None:
    client = await make_client(token_value=TOKEN)
    body = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    resp = await client.post(EVENTS_PATH, json=body, headers=AUTH)
    assert resp.status == 400
    assert await resp.json() == {"error": "invalid event", "errors": errors}
    assert stored(client) == []
    assert deployments(client) == 0


@pytest.mark.parametrize(
    ("raw", "errors"),
    [
        (b"{not json", {"body": "Invalid JSON: key must be a string at line 1 column 2"}),
        (b"[1, 2]", {"body": "Input should be an object"}),
        (b"", {"body": "Invalid JSON: EOF while parsing a value at line 1 column 0"}),
    ],
)
async def test_not_an_event(make_client: MakeClient, raw: bytes, errors: dict[str, str]) -> None:
    client = await make_client(token_value=TOKEN)
    resp = await client.post(EVENTS_PATH, data=raw, headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["errors"] == errors
    assert stored(client) == []


async def test_oversize_body(make_client: MakeClient) -> None:
    client = await make_client(token_value=TOKEN, max_body_bytes=1024)
    big = {**GOOD, "version": "x" * 100, "padding": " " * 2000}
    resp = await client.post(EVENTS_PATH, data=json.dumps(big).encode(), headers=AUTH)
    assert resp.status == 413
    assert "1024 bytes" in (await resp.json())["error"]

    # Chunked (no Content-Length): the limit holds while reading.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 200

    resp = await client.post(EVENTS_PATH, data=chunks(), headers=AUTH)
    assert resp.status == 413
    assert stored(client) == []


async def test_token_problems(make_client: MakeClient) -> None:
    client = await make_client(token_value=TOKEN)
    resp = await client.post(EVENTS_PATH, json=GOOD)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="implmon"'
    resp = await client.post(EVENTS_PATH, json=GOOD, headers={"Authorization": f"Basic {TOKEN}"})
    assert resp.status == 401
    resp = await client.post(EVENTS_PATH, json=GOOD, headers={"Authorization": "Bearer nope"})
    assert resp.status == 403
    assert await resp.json() == {"error": "invalid token"}
    assert stored(client) == []


async def test_token_from_file_and_env(
    make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    client = await make_client(token_file=token_file)
    resp = await client.post(EVENTS_PATH, json=GOOD, headers={"Authorization": "Bearer from-file"})
    assert resp.status == 201
    monkeypatch.setenv("IMPLMON_INGEST_TOKEN", "from-env")
    client = await make_client()
    resp = await client.post(EVENTS_PATH, json=GOOD, headers={"Authorization": "Bearer x"})
    assert resp.status == 403
    resp = await client.post(EVENTS_PATH, json=GOOD, headers={"Authorization": "Bearer from-env"})
    assert resp.status == 201


async def test_no_token_needed_only_when_loopback_only(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMPLMON_INGEST_TOKEN", raising=False)
    public = await make_client(listen_host="0.0.0.0")
    resp = await public.post(EVENTS_PATH, json=GOOD)
    assert resp.status == 403
    assert "loopback-only" in (await resp.json())["error"]
    assert stored(public) == []
    local = await make_client(listen_host="127.0.0.1")
    resp = await local.post(EVENTS_PATH, json=GOOD)
    assert resp.status == 201


async def test_duplicate_id_is_idempotent_and_conflict_is_409(make_client: MakeClient) -> None:
    client = await make_client(token_value=TOKEN)
    first = await client.post(EVENTS_PATH, json=GOOD, headers=AUTH)
    assert first.status == 201
    again = await client.post(EVENTS_PATH, json=GOOD, headers=AUTH)
    assert again.status == 200
    body = await again.json()
    assert body["status"] == "duplicate" and body["seq"] == 1
    assert body["event"]["duration_seconds"] == 42.5
    other = await client.post(EVENTS_PATH, json={**GOOD, "outcome": "failure"}, headers=AUTH)
    assert other.status == 409
    body = await other.json()
    assert body["status"] == "conflict"
    assert body["event"]["outcome"] == "success"
    assert stored(client) == ["pipeline-1234"]
    counters = client.app[INGEST].store.aggregates.counters["implmon_deployments_total"]
    assert counters[("production", "success")] == 1
    assert counters[("production", "failure")] == 0
    codes = {s.labels["code"]: s.value for s in client.app[INGEST].samples()}
    assert codes == {"200": 1, "201": 1, "409": 1}


async def test_openapi_document(make_client: MakeClient) -> None:
    client = await make_client(token_value=TOKEN)
    resp = await client.get(OPENAPI_PATH)
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    post = doc["paths"][EVENTS_PATH]["post"]
    assert set(post["responses"]) == {"200", "201", "400", "401", "403", "409", "413", "503"}
    schemas = doc["components"]["schemas"]
    kinds = {ref["$ref"].rsplit("/", 1)[1] for ref in schemas["Event"]["oneOf"]}
    assert kinds == {"BuildEvent", "DeploymentEvent", "ValidationEvent", "IncidentEvent"}
    # Every $ref in the document resolves.
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        assert ref.rsplit("/", 1)[1] in schemas, ref
    assert "commit_time" in schemas["DeploymentEvent"]["properties"]


async def test_http_recorder_delivers_sdk_events(make_client: MakeClient) -> None:
    """A deploy tool on a CI runner: the SDK's deployer records into the exporter over HTTP."""
    from implmon.deployer import SystemDeployer
    from implmon.pipeline import HttpRecorder

    client = await make_client(token_value=TOKEN)
    url = str(client.make_url("/"))
    async with HttpRecorder(url, TOKEN, retries=2, backoff=0.01) as recorder:
        deployer = SystemDeployer(recorder=recorder)
        dep = await deployer.deploy_system(None, "production", version="7.0",
                                           deployment_id="runner-1")
        ((_, _, sent),) = client.app[INGEST].store.events()
        await recorder.record(sent)  # a retry after a lost answer
        assert recorder.failures == 0
    assert dep.id == "runner-1" and sent.id == "runner-1" and sent.version == "7.0"
    assert stored(client) == ["runner-1"]  # the re-send was a duplicate
    assert client.app[INGEST].store.aggregates.counters["implmon_deployments_total"][
        ("production", "success")] == 1

    async with HttpRecorder(url, "wrong-token", retries=3, backoff=0.01) as bad:
        await SystemDeployer(recorder=bad).deploy_system(None, "staging")
        assert bad.failures == 1  # 403 is not retried, and never raised
    assert stored(client) == ["runner-1"]


async def test_http_recorder_retries_unavailable_exporter(tmp_path: Path) -> None:
    from implmon.events import parse_event
    from implmon.pipeline import HttpRecorder

    answers = [503, 503, 201]
    seen: list[bytes] = []

    async def flaky(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.json_response({}, status=answers[len(seen) - 1])

    app = web.Application()
    app.router.add_post(EVENTS_PATH, flaky)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        async with HttpRecorder(str(client.make_url("/")), retries=3, backoff=0.01) as rec:
            await rec.record(parse_event({"kind": "build", "id": "b-9", "build_type": "testing",
                                          "outcome": "success"}))
    finally:
        await client.close()
    assert rec.failures == 0
    assert len(seen) == 3 and len(set(seen)) == 1  # the same event, id and all, each time


async def test_traceparent_header_fills_the_trace(make_client: MakeClient) -> None:
    client = await make_client(token_value=TOKEN)
    header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    resp = await client.post(EVENTS_PATH, json=GOOD, headers={**AUTH, "traceparent": header})
    assert resp.status == 201
    # A retry carrying the same header is the same event.
    again = await client.post(EVENTS_PATH, json=GOOD, headers={**AUTH, "traceparent": header})
    assert again.status == 200
    # A malformed header is ignored, a trace id in the body wins.
    resp = await client.post(EVENTS_PATH, json={**GOOD, "id": "other",
                                                "trace_id": "ab" * 16},
                             headers={**AUTH, "traceparent": header})
    assert resp.status == 201
    bad = await client.post(EVENTS_PATH, json={**GOOD, "id": "third"},
                            headers={**AUTH, "traceparent": "00-zz-00-01"})
    assert bad.status == 201
    events = {e.id: e for _, _, e in client.app[INGEST].store.events()}
    assert events["pipeline-1234"].trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert events["pipeline-1234"].span_id == "00f067aa0ba902b7"
    assert events["other"].trace_id == "ab" * 16
    assert events["third"].trace_id is None
    hist = client.app[INGEST].store.aggregates.histograms["implmon_deployment_duration_seconds"]
    exemplars = hist[("production",)].value().exemplars
    assert {ex[0]["trace_id"] for ex in exemplars.values()} <= {
        "4bf92f3577b34da6a3ce929d0e0e4736", "ab" * 16}
