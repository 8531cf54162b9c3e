"""The event ingest API, for CI systems that are not Python.

``POST /api/v1/events`` takes one JSON event (see :mod:`implmon.events`; the OpenAPI document is
served at ``GET /api/v1/openapi.json``) and answers only once the event is durably stored:

========  =============================================================================
status    meaning
========  =============================================================================
201       stored; body ``{"status": "stored", "id", "seq"}``
200       an event with this id and the same content was stored before: nothing new is
          recorded; body ``{"status": "duplicate", "id", "seq", "event": <original>}``
409       the id was used before by a *different* event; nothing recorded; body names the
          original
400       not JSON, or the event breaks the schema: ``{"error", "errors": {field: why}}``
          names each bad field (``duration_seconds``, ``commit_time``, ``kind``, ...)
401       no ``Authorization: Bearer <token>`` header (``WWW-Authenticate: Bearer``)
403       a token that does not match, or no token configured on a listener that is not
          loopback-only
413       body over ``ingest.max_body_bytes``
503       the store could not write; retry with the same id
========  =============================================================================

A ``traceparent`` header (W3C trace context) fills ``trace_id``/``span_id`` when the event
has none, so the run's trace becomes the exemplar of its duration.

Retries are safe: send the same id again and you get 200 (or 201 if the first attempt never
reached the store). The token comes from the config (``ingest: {token: ${VAR}}`` or
``ingest: {token_file: path}``, re-read every few seconds) or else from
``$IMPLMON_INGEST_TOKEN``; it is required whenever the listener is not loopback-only.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, MutableSequence
from pathlib import Path
from typing import Any

from aiohttp import web

from implmon import __version__, envvars
from implmon.component import SampleProvider
from implmon.config import Config
from implmon.events import EventError, dump_event, event_json_schema, parse_event
from implmon.metrics import Sample
from implmon.pipeline import StoreRecorder
from implmon.store import EventStore, StoreError, Synchronous

__all__ = [
    "EVENTS_PATH",
    "INGEST",
    "OPENAPI_PATH",
    "Ingest",
    "openapi_document",
    "setup_from_config",
    "setup_routes",
]

log = logging.getLogger(__name__)

EVENTS_PATH = "/api/v1/events"
OPENAPI_PATH = "/api/v1/openapi.json"
# W3C trace context header: version-traceid-parentid-flags (all-zero ids are invalid).
_TRACEPARENT = re.compile(
    r"^[0-9a-f]{2}-(?!0{32})([0-9a-f]{32})-(?!0{16})([0-9a-f]{16})-[0-9a-f]{2}$"
)
# A token file is read again at most this often (seconds), so a rotated token is picked up.
TOKEN_REFRESH_SECONDS = 5.0


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses; False for wildcards and anything else."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class TokenSource:
    """The expected bearer token, from a value or a file (re-read every few seconds)."""

    def __init__(self, value: str | None = None, file: Path | None = None) -> None:
        self.value = value
        self.file = file
        self._cached: str | None = None
        self._read_at = 0.0

    def get(self) -> str | None:
        if self.file is None:
            return self.value or None
        now = time.monotonic()
        if now - self._read_at > TOKEN_REFRESH_SECONDS:
            try:
                self._cached = self.file.read_text(encoding="utf-8").strip() or None
            except OSError as exc:
                log.error("ingest token file %s: %s", self.file, exc.strerror)
                self._cached = None
            self._read_at = now
        return self._cached


class Ingest:
    """The handlers' state: the store, the token rule, the body limit and request counts."""

    def __init__(
        self,
        recorder: StoreRecorder,
        *,
        token: TokenSource,
        max_body_bytes: int,
        listen_host: str | None = None,
    ) -> None:
        self.recorder = recorder
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.listen_host = listen_host
        self.requests: dict[str, float] = {}

    @property
    def store(self) -> EventStore:
        return self.recorder.store

    def samples(self) -> list[Sample]:
        return [
            Sample("implmon_ingest_requests_total", {"code": code}, n)
            for code, n in sorted(self.requests.items())
        ]

    def token_required(self, request: web.Request) -> bool:
        """Required unless the listener is loopback-only. When the listen host is unknown,
        required for any connection that did not arrive over loopback."""
        if self.listen_host is not None:
            return not is_loopback(self.listen_host)
        local = request.transport.get_extra_info("sockname") if request.transport else None
        peer = request.transport.get_extra_info("peername") if request.transport else None
        return not (local and peer and is_loopback(str(local[0])) and is_loopback(str(peer[0])))

    def _answer(self, status: int, body: dict[str, Any], **headers: str) -> web.Response:
        code = str(status)
        self.requests[code] = self.requests.get(code, 0.0) + 1.0
        return web.Response(
            status=status,
            body=json.dumps(body, separators=(",", ":")).encode(),
            content_type="application/json",
            headers=headers,
        )

    def _check_auth(self, request: web.Request) -> web.Response | None:
        expected = self.token.get()
        header = request.headers.get("Authorization", "")
        if expected is None:
            if self.token_required(request):
                return self._answer(
                    403,
                    {
                        "error": "ingest needs a token on a listener that is not loopback-only: "
                        f"set ingest.token in the config or ${envvars.IMPLMON_INGEST_TOKEN}"
                    },
                )
            return None
        scheme, _, given = header.partition(" ")
        if not header:
            return self._answer(
                401,
                {"error": "missing Authorization: Bearer <token>"},
                **{"WWW-Authenticate": 'Bearer realm="implmon"'},
            )
        if scheme.lower() != "bearer" or not given.strip():
            return self._answer(
                401,
                {"error": "Authorization must be 'Bearer <token>'"},
                **{"WWW-Authenticate": 'Bearer realm="implmon"'},
            )
        if not hmac.compare_digest(given.strip().encode(), expected.encode()):
            return self._answer(403, {"error": "invalid token"})
        return None

    async def _read_body(self, request: web.Request) -> bytes | None:
        """The body, or None when it is over the limit (checked before and while reading)."""
        limit = self.max_body_bytes
        if request.content_length is not None:
            if request.content_length > limit:
                return None
            if request.content_length == 0:
                return b""
            return await request.content.readexactly(request.content_length)
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await request.content.read(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def post_event(self, request: web.Request) -> web.Response:
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        body = await self._read_body(request)
        if body is None:
            return self._answer(
                413,
                {
                    "error": f"body over the limit of {self.max_body_bytes} bytes "
                    "(ingest.max_body_bytes)"
                },
            )
        try:
            event = parse_event(body)
        except EventError as err:
            return self._answer(400, {"error": "invalid event", "errors": err.errors})
        stored_body: str | None = body.decode()
        traceparent = _TRACEPARENT.match(request.headers.get("traceparent", ""))
        if event.trace_id is None and traceparent is not None:
            # A CI job traced with W3C trace context: its trace becomes the exemplar.
            event = event.model_copy(
                update={"trace_id": traceparent.group(1), "span_id": traceparent.group(2)}
            )
            stored_body = None  # serialise the event with its trace
        try:
            result = await self.recorder.append(event, stored_body)
        except StoreError as exc:
            log.error("ingest of %s event %s failed: %s", event.kind, event.id, exc)
            return self._answer(
                503,
                {"error": "event store unavailable; retry with the same id"},
                **{"Retry-After": "1"},
            )
        if result.result == "stored":
            self.requests["201"] = self.requests.get("201", 0.0) + 1.0
            # The common answer, without a JSON encoder (ids are restricted to safe characters).
            return web.Response(
                status=201,
                body=f'{{"status":"stored","id":"{event.id}","seq":{result.seq}}}'.encode(),
                content_type="application/json",
            )
        original = json.loads(dump_event(result.event))
        if result.result == "duplicate":
            return self._answer(
                200, {"status": "duplicate", "id": event.id, "seq": result.seq, "event": original}
            )
        return self._answer(
            409,
            {
                "status": "conflict",
                "id": event.id,
                "seq": result.seq,
                "event": original,
                "error": f"id {event.id!r} was already used by a different event",
            },
        )

    async def get_openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document())


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 description of the ingest API."""
    schema = event_json_schema()
    defs = schema.pop("$defs", {})
    defs["Event"] = schema
    error = {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "errors": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Each bad field (dotted path) and why.",
            },
        },
        "required": ["error"],
    }
    defs["Error"] = error

    def answer(text: str, ref: str = "#/components/schemas/Error") -> dict[str, Any]:
        return {"description": text, "content": {"application/json": {"schema": {"$ref": ref}}}}

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "implmon event ingest",
            "version": __version__,
            "description": (__doc__ or "").strip().split("\n\n")[0],
        },
        "paths": {
            EVENTS_PATH: {
                "post": {
                    "summary": "Record a build, deployment, validation or incident event",
                    "operationId": "postEvent",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Event"}}
                        },
                    },
                    "responses": {
                        "201": {"description": "Stored durably."},
                        "200": {"description": "Duplicate of a stored event; nothing recorded."},
                        "400": answer("Not JSON, or fields break the schema."),
                        "401": answer("No bearer token."),
                        "403": answer("Wrong token, or none configured on a public listener."),
                        "409": {"description": "The id was used by a different event."},
                        "413": answer("Body over the configured limit."),
                        "503": answer("Store unavailable; retry with the same id."),
                    },
                }
            },
            OPENAPI_PATH: {
                "get": {
                    "summary": "This document",
                    "operationId": "getOpenAPI",
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
        },
        "components": {
            "schemas": defs,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


INGEST = web.AppKey("implmon_ingest", Ingest)


def setup_routes(
    app: web.Application,
    *,
    store_path: Path,
    retention_seconds: float | None = None,
    synchronous: Synchronous | str = Synchronous.NORMAL,
    token_value: str | None = None,
    token_file: Path | None = None,
    max_body_bytes: int = 1 << 20,
    listen_host: str | None = None,
    providers: MutableSequence[SampleProvider] | None = None,
) -> Ingest:
    """Add the ingest routes; the store opens with the app (``cleanup_ctx``) and closes with it.

    ``providers`` (the monitor's list) gets the store's and the API's figures. Without a token
    value or file, ``$IMPLMON_INGEST_TOKEN`` is used when set.
    """
    if token_value is None and token_file is None:
        token_value = os.environ.get(envvars.IMPLMON_INGEST_TOKEN) or None
    store = EventStore(store_path, synchronous=synchronous, retention_seconds=retention_seconds)
    ingest = Ingest(
        StoreRecorder(store),
        token=TokenSource(token_value, token_file),
        max_body_bytes=max_body_bytes,
        listen_host=listen_host,
    )
    app[INGEST] = ingest
    app.router.add_post(EVENTS_PATH, ingest.post_event)
    app.router.add_get(OPENAPI_PATH, ingest.get_openapi)

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        await store.start()
        yield
        await store.close()

    # The store must be open before the monitor's first cycle reads it: put it first.
    app.cleanup_ctx.insert(0, store_ctx)
    if providers is not None:
        providers.extend([store, ingest])
    if ingest.token.get() is None and listen_host is not None and not is_loopback(listen_host):
        log.warning(
            "ingest: no token configured and %s is not loopback-only: every %s "
            "request will get 403",
            listen_host,
            EVENTS_PATH,
        )
    return ingest


def setup_from_config(
    app: web.Application,
    config: Config,
    providers: MutableSequence[SampleProvider] | None = None,
    listen_host: str | None = None,
) -> Ingest:
    """:func:`setup_routes` with the exporter's config (``store_path``, ``retention``,
    ``store_synchronous``, ``ingest.token``, ``ingest.max_body_bytes``)."""
    token = config.ingest.token
    return setup_routes(
        app,
        store_path=config.store_path,
        retention_seconds=config.retention,
        synchronous=config.store_synchronous,
        token_value=token.value if token is not None else None,
        token_file=token.file if token is not None else None,
        max_body_bytes=config.ingest.max_body_bytes,
        listen_host=listen_host,
        providers=providers,
    )


def recorder(app: web.Application) -> StoreRecorder:
    """The app's store-backed recorder, for SDK objects running in the exporter process."""
    return app[INGEST].recorder
