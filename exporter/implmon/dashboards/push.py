"""Upload the dashboards to a running Grafana over its HTTP API (``implmon dashboards push``).

Uses ``grafana-client``: the folder is looked up by its uid and created when missing, then every
dashboard is saved into it with ``overwrite`` (so a push replaces what an earlier push or a hand
edit left) and a version message that shows up in Grafana's version history.

Credentials come from the environment, never from flags (they would land in shell history):
``GRAFANA_TOKEN`` (a service-account token, sent as a bearer token) or ``GRAFANA_USER`` and
``GRAFANA_PASSWORD`` (basic auth). The URL comes from ``--grafana-url`` or ``GRAFANA_URL``.

>>> credential_from_env({"GRAFANA_TOKEN": "glsa_x"})
'glsa_x'
>>> credential_from_env({"GRAFANA_USER": "admin", "GRAFANA_PASSWORD": "secret"})
('admin', 'secret')
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from implmon.dashboards.common import Dashboard
from implmon.envvars import GRAFANA_PASSWORD, GRAFANA_TOKEN, GRAFANA_URL, GRAFANA_USER

if TYPE_CHECKING:
    # grafana-client comes with the `exporter` extra; imported when a push runs, so that
    # `implmon --help` works on a bare install.
    from grafana_client.api import GrafanaApi

__all__ = [
    "DEFAULT_FOLDER_TITLE",
    "DEFAULT_FOLDER_UID",
    "GRAFANA_PASSWORD",
    "GRAFANA_TOKEN",
    "GRAFANA_URL",
    "GRAFANA_USER",
    "PushError",
    "PushResult",
    "credential_from_env",
    "push",
]

DEFAULT_FOLDER_TITLE = "implmon"
DEFAULT_FOLDER_UID = "implmon"

log = logging.getLogger("implmon.dashboards")


class PushError(Exception):
    """A push that could not complete: what failed and Grafana's answer."""


@dataclass(frozen=True, slots=True)
class PushResult:
    """One dashboard saved: its uid, the version Grafana gave it and its URL there."""

    uid: str
    version: int
    url: str


def credential_from_env(env: Mapping[str, str]) -> str | tuple[str, str] | None:
    """The token, or (user, password), from the environment; None for anonymous access."""
    token = env.get(GRAFANA_TOKEN, "")
    if token:
        return token
    user, password = env.get(GRAFANA_USER, ""), env.get(GRAFANA_PASSWORD, "")
    if user or password:
        if not (user and password):
            raise PushError(f"{GRAFANA_USER} and {GRAFANA_PASSWORD} must be set together")
        return (user, password)
    return None


def _ensure_folder(api: GrafanaApi, uid: str, title: str) -> None:
    from grafana_client.client import GrafanaClientError

    try:
        api.folder.get_folder(uid)  # type: ignore[no-untyped-call]
        return
    except GrafanaClientError as err:
        if err.status_code != 404:
            raise PushError(f"folder {uid}: {err.message}") from err
    log.info("creating Grafana folder %s (%s)", title, uid)
    try:
        api.folder.create_folder(title, uid=uid)  # type: ignore[no-untyped-call]
    except GrafanaClientError as err:
        raise PushError(f"folder {uid}: cannot create: {err.message}") from err


def push(
    url: str,
    dashboards: Sequence[Dashboard],
    *,
    credential: str | tuple[str, str] | None,
    folder_uid: str = DEFAULT_FOLDER_UID,
    folder_title: str = DEFAULT_FOLDER_TITLE,
    message: str = "implmon dashboards push",
    overwrite: bool = True,
    timeout: float = 10.0,
) -> list[PushResult]:
    """Save ``dashboards`` into the folder ``folder_uid`` of the Grafana at ``url``.

    Raises :class:`PushError` at the first dashboard Grafana refuses (with ``overwrite`` off,
    one that already exists), naming it.
    """
    try:
        from grafana_client.api import GrafanaApi
        from grafana_client.client import GrafanaClientError
    except ImportError as err:
        raise PushError("grafana-client is not installed: pip install 'implmon[exporter]'") from err

    api = GrafanaApi.from_url(url, credential=credential, timeout=timeout)
    _ensure_folder(api, folder_uid, folder_title)
    results: list[PushResult] = []
    for dashboard in dashboards:
        model = dashboard.to_json()
        # A null id makes Grafana match by uid: a new dashboard, or (overwrite) the same one.
        model["id"] = None
        body: dict[str, Any] = {
            "dashboard": model,
            "folderUid": folder_uid,
            "message": message,
            "overwrite": overwrite,
        }
        try:
            answer = api.dashboard.update_dashboard(body)
        except GrafanaClientError as err:
            raise PushError(f"dashboard {dashboard.uid}: {err.message}") from err
        result = PushResult(
            uid=str(answer.get("uid", dashboard.uid)),
            version=int(answer.get("version", 0)),
            url=str(answer.get("url", "")),
        )
        log.info("pushed dashboard %s version %d", result.uid, result.version)
        results.append(result)
    return results
