"""``implmon report``: the exporter's report as JSON, Markdown (for a CI comment) or HTML.

By default it fetches ``GET /api/v1/report`` from a running exporter and renders it locally, so
every format shows the same data the status page shows::

    implmon report --format markdown --period weekly > comment.md
    implmon report --url http://user:secret@exporter:9464 --format html -o status.html

Offline, ``--store FILE`` reads the exporter's event store (the SQLite file; reading is safe
while the exporter runs) and reports the builds and deployments of the period without an
exporter. There is no monitor cycle offline, so component, quality and performance sections
are empty and the status is ``unknown``.

Exit codes: 0 rendered; 1 the exporter or store could not be read; 2 usage; 3 the report's
status is at or above ``--fail-on`` (so a CI step can fail on a degraded system).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import ValidationError

from implmon import envvars
from implmon.report import (
    SCHEMA_VERSION,
    Period,
    Report,
    StoreEvents,
    build_report,
    render_html,
    render_json,
    render_markdown,
)

__all__ = ["DEFAULT_URL", "add_parser", "fetch_report", "offline_report"]

DEFAULT_URL = "http://127.0.0.1:9464"

_RANK = {"ok": 0, "unknown": 0, "degraded": 1, "critical": 2}
EXIT_STATUS = 3


class ReportError(RuntimeError):
    """The report could not be obtained; the message says from where and why."""


async def fetch_report(url: str, period: Period, *, timeout: float = 10.0) -> Report:
    """Fetch and validate the JSON report of the exporter at ``url`` (its base URL).

    Credentials in the URL (``http://user:pass@host:9464``) are sent as basic auth, for an
    exporter behind a ``--web.config.file`` with ``basic_auth_users``.
    """
    endpoint = url.rstrip("/") + "/api/v1/report"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(endpoint, params={"period": period.value}) as resp,
        ):
            body = await resp.text()
            if resp.status != 200:
                raise ReportError(f"{endpoint}: HTTP {resp.status}: {body[:500].strip()}")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        # ValueError: aiohttp's InvalidURL is one, as is a port out of range.
        raise ReportError(f"{endpoint}: {type(exc).__name__}: {exc or 'timed out'}") from None
    return _parse(body, endpoint)


def _parse(body: str, where: str) -> Report:
    try:
        report = Report.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"]) or "body"
        raise ReportError(f"{where}: not an implmon report: {loc}: {first['msg']}") from None
    if report.schema_version != SCHEMA_VERSION:
        raise ReportError(
            f"{where}: report schema version {report.schema_version}, this implmon reads "
            f"{SCHEMA_VERSION}: use the implmon release that matches the exporter"
        )
    return report


def offline_report(store_path: Path, period: Period, *, now: float | None = None) -> Report:
    """A report of the period's builds and deployments, read from the event store file."""
    # Imported here: the store pulls in the pipeline aggregates, which the online path needs not.
    import sqlite3

    from implmon.store import EventStore

    if not store_path.is_file():
        raise ReportError(f"{store_path}: no such event store file")
    now = time.time() if now is None else now
    try:
        # Reading needs no writer thread: events() opens its own read-only connection.
        events = StoreEvents(EventStore(store_path))(now - period.seconds)
    except sqlite3.Error as exc:
        raise ReportError(f"{store_path}: cannot read the event store: {exc}") from None
    return build_report(None, events, period=period, now=now, events_available=True)


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return render_json(report) + "\n"
    if fmt == "markdown":
        return render_markdown(report)
    # A file has no server to refresh from: no meta refresh.
    return render_html(report, refresh_seconds=None)


def _run(args: argparse.Namespace) -> int:
    period = Period(args.period)
    try:
        if args.store is not None:
            report = offline_report(args.store, period)
        else:
            report = asyncio.run(fetch_report(args.url, period, timeout=args.timeout))
    except ReportError as exc:
        print(f"implmon report: {exc}", file=sys.stderr)
        return 1
    text = render(report, args.format)
    if args.output is None or str(args.output) == "-":
        sys.stdout.write(text)
    else:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"implmon report: --output {args.output}: {exc.strerror}", file=sys.stderr)
            return 1
    if args.fail_on != "never" and _RANK[report.status] >= _RANK[args.fail_on]:
        print(f"implmon report: status is {report.status}", file=sys.stderr)
        return EXIT_STATUS
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``implmon report`` on the ``implmon`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="print the exporter's report (JSON, Markdown for CI comments, or HTML)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--url",
        # The same variable the ``implmon event`` commands read.
        default=os.environ.get(envvars.IMPLMON_URL, DEFAULT_URL),
        help=f"exporter base URL (default ${envvars.IMPLMON_URL}, then {DEFAULT_URL})",
    )
    source.add_argument(
        "--store",
        type=Path,
        default=None,
        metavar="FILE",
        help="read builds and deployments from this event store file instead (offline)",
    )
    parser.add_argument(
        "--format", choices=["json", "markdown", "html"], default="markdown", help="(markdown)"
    )
    parser.add_argument(
        "--period",
        choices=[p.value for p in Period],
        default=Period.DAILY.value,
        help="review window: " + ", ".join(f"{p.value} = {p.review}" for p in Period),
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=None, help="write to FILE instead of stdout"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the exporter (10)"
    )
    parser.add_argument(
        "--fail-on",
        choices=["never", "degraded", "critical"],
        default="never",
        help=f"exit {EXIT_STATUS} when the status is this bad or worse (never)",
    )
    parser.set_defaults(func=_run)
    return parser
