"""Collector ``http_probe``: health endpoints of the monitored system's components.

Each target is one component: its health URL is fetched (many at once, up to ``concurrency``),
and the component passes when the status code is acceptable and, for a JSON body in the IETF
health-check format (``{"status": "pass" | "warn" | "fail", "version": ...}``), the status is
not ``fail``. ``warn`` still counts as a success but is reported as such.

.. code-block:: yaml

    collectors:
      - kind: http_probe
        name: agents
        concurrency: 16
        targets:
          - url: http://127.0.0.1:8001/health
            component: collector-a
            type: collector
            version: 1.2.0
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, field_validator

from implmon.component import Collector, ComponentSettings
from implmon.config import HttpURL, Secret, read_secret
from implmon.durations import Duration
from implmon.metrics import Sample

__all__ = ["HttpProbeCollector"]

_LABEL_VALUE = r"^[a-zA-Z0-9_.:-]+$"
# IETF draft-inadarei-api-health-check: pass/warn/fail; "ok"/"up"/"down" seen in the wild.
_STATUS = {
    "pass": "pass",
    "ok": "pass",
    "up": "pass",
    "warn": "warn",
    "fail": "fail",
    "error": "fail",
    "down": "fail",
}
_MAX_BODY = 64 * 1024


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: HttpURL
    component: str = Field(pattern=_LABEL_VALUE)
    type: str = Field(default="collector", pattern=r"^[a-z_]+$")
    version: str = ""
    headers: dict[str, str] = {}


class HttpProbeSettings(ComponentSettings):
    targets: list[Target] = Field(min_length=1)
    concurrency: int = Field(default=16, gt=0)
    probe_timeout: Duration = 5.0
    valid_status_codes: list[int] = []
    tls_insecure_skip_verify: bool = False
    bearer_token: Secret | None = None

    @field_validator("targets")
    @classmethod
    def _unique_components(cls, targets: list[Target]) -> list[Target]:
        # Two targets with one component would expose the same series twice in one scrape.
        seen: dict[str, int] = {}
        for i, target in enumerate(targets):
            if target.component in seen:
                raise ValueError(
                    f"duplicate component {target.component!r} "
                    f"(targets[{seen[target.component]}] and targets[{i}])"
                )
            seen[target.component] = i
        return targets


class HttpProbeCollector(Collector):
    """Probes every target's health endpoint; one set of component series per target."""

    kind = "http_probe"
    Settings = HttpProbeSettings

    def __init__(self, settings: HttpProbeSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.settings: HttpProbeSettings = settings
        self._session: aiohttp.ClientSession | None = None
        self._probes: Counter[tuple[str, str]] = Counter()
        # Last version each component reported, so a failed probe keeps its info series.
        self._versions: dict[str, str] = {}

    async def start(self) -> None:
        ssl_ctx: ssl.SSLContext | bool = True
        if self.settings.tls_insecure_skip_verify:
            ssl_ctx = False
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.settings.concurrency, ssl=ssl_ctx),
            timeout=aiohttp.ClientTimeout(total=self.settings.probe_timeout),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def collect(self) -> Sequence[Sample]:
        if self._session is None:
            await self.start()
        limit = asyncio.Semaphore(self.settings.concurrency)
        token = read_secret(self.settings.bearer_token)
        results = await asyncio.gather(
            *(self._probe(t, limit, token) for t in self.settings.targets)
        )
        return [s for samples in results for s in samples]

    def _timeout(self) -> aiohttp.ClientTimeout:
        # One hanging target must show as down, not push the whole run past its deadline
        # (which would mark every target's values stale).
        seconds = self.settings.probe_timeout
        if self.deadline is not None:
            seconds = min(seconds, self.deadline * 0.9)
        return aiohttp.ClientTimeout(total=seconds)

    async def _probe(
        self, target: Target, limit: asyncio.Semaphore, token: str | None
    ) -> list[Sample]:
        assert self._session is not None
        headers = dict(target.headers)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        status_code, health, version = 0, "fail", target.version
        async with limit:
            start = time.perf_counter()
            try:
                async with self._session.get(
                    target.url, headers=headers, allow_redirects=True, timeout=self._timeout()
                ) as resp:
                    status_code = resp.status
                    body = await _read_body(resp, _MAX_BODY)
                    ok = (
                        status_code in self.settings.valid_status_codes
                        if self.settings.valid_status_codes
                        else 200 <= status_code < 300
                    )
                    health, reported_version = _health_of(body, ok)
                    version = version or reported_version
            except (aiohttp.ClientError, TimeoutError, ValueError):
                health = "fail"
            duration = time.perf_counter() - start
        success = health != "fail"
        version = self._versions[target.component] = version or self._versions.get(
            target.component, ""
        )
        self._probes[(target.component, "success" if success else "failure")] += 1
        labels = {"component": target.component, "type": target.type}
        samples = [
            Sample("implmon_component_probe_success", labels, float(success)),
            Sample("implmon_component_probe_duration_seconds", labels, duration),
            Sample("implmon_component_probe_http_status_code", labels, float(status_code)),
            Sample("implmon_component_info", {**labels, "version": version}, 1.0),
        ]
        samples += [
            Sample("implmon_component_health_status", {**labels, "status": s}, float(s == health))
            for s in ("pass", "warn", "fail")
        ]
        samples += [
            Sample(
                "implmon_component_probes_total",
                {**labels, "result": r},
                float(self._probes[(target.component, r)]),
            )
            for r in ("success", "failure")
        ]
        return samples


async def _read_body(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body up to ``limit`` bytes. ``content.read(n)`` returns only what has arrived so far,
    so a body sent in several chunks must be read until EOF (or the limit)."""
    parts: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await resp.content.read(limit - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def _health_of(body: bytes, status_ok: bool) -> tuple[str, str]:
    """(pass|warn|fail, version) from a health response; a non-JSON body counts by status."""
    if not status_ok:
        return "fail", _version_of(body)
    try:
        doc = json.loads(body)
    except ValueError:
        return "pass", ""
    if not isinstance(doc, dict):
        return "pass", ""
    status = doc.get("status")
    # An unrecognised status is neither a clear pass nor a clear fail.
    health = _STATUS.get(str(status).lower(), "warn") if status is not None else "pass"
    version = doc.get("version") or doc.get("releaseId") or ""
    return health, str(version)


def _version_of(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    return str(doc.get("version", "")) if isinstance(doc, dict) else ""
