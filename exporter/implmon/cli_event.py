"""``implmon event build|deployment|validation|incident ...``: send one event from a CI job.

.. code-block:: sh

    implmon event deployment --url "$IMPLMON_URL" --environment production --outcome success \\
        --duration 42.5 --id "$CI_PIPELINE_ID" --version 1.4.2 \\
        --commit-time 2026-11-24T10:00:00Z

The token comes from ``--token-file`` or ``$IMPLMON_TOKEN``. Connection errors, 429 and 5xx
answers are retried with exponential backoff and jitter; the event id makes the retries safe.

Exit codes: 0 accepted (stored, or already stored with the same content); 1 rejected by the
exporter (bad field, bad token, id reused by a different event, body too large); 2 usage error
(the event is invalid before sending); 3 not delivered after all retries.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from implmon import envvars
from implmon.events import (
    BuildType,
    Environment,
    EventError,
    IncidentStatus,
    Outcome,
    ValidationOutcome,
    ValidationType,
    dump_event,
    parse_event,
)
from implmon.ingest import EVENTS_PATH

__all__ = ["EXIT_ACCEPTED", "EXIT_REJECTED", "EXIT_UNDELIVERED", "EXIT_USAGE", "add_parser"]

EXIT_ACCEPTED = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_UNDELIVERED = 3
DEFAULT_URL = "http://127.0.0.1:9464"
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})


def _values(enum: Any) -> list[str]:
    return [m.value for m in enum]


def add_parser(subparsers: Any) -> None:
    """Register ``event`` and its four kinds on the top-level subparsers."""
    event = subparsers.add_parser(
        "event",
        help="send a pipeline event to an exporter",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    kinds = event.add_subparsers(dest="kind", required=True, metavar="KIND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=os.environ.get(envvars.IMPLMON_URL, DEFAULT_URL),
        help=f"exporter base URL (default ${envvars.IMPLMON_URL} or {DEFAULT_URL})",
    )
    common.add_argument(
        "--token-file",
        type=Path,
        help=f"file holding the bearer token (default ${envvars.IMPLMON_TOKEN})",
    )
    common.add_argument(
        "--id",
        dest="event_id",
        help="event id, e.g. $CI_PIPELINE_ID (makes retries idempotent; default: a random one)",
    )
    common.add_argument("--timestamp", help="when it ended, RFC 3339 (default: now)")
    common.add_argument("--trace-id", help="W3C trace id (default: from $TRACEPARENT)")
    common.add_argument("--retries", type=int, default=5, help="retries after the first try")
    common.add_argument("--timeout", type=float, default=10.0, help="seconds per attempt")
    common.add_argument("--quiet", action="store_true", help="print nothing on success")

    build = kinds.add_parser("build", parents=[common], help="a finished build")
    build.add_argument("--build-type", required=True, choices=_values(BuildType))
    build.add_argument("--outcome", required=True, choices=_values(Outcome))
    build.add_argument("--duration", type=float, help="seconds")
    build.add_argument("--version")

    dep = kinds.add_parser("deployment", parents=[common], help="a finished deployment")
    dep.add_argument("--environment", required=True, choices=_values(Environment))
    dep.add_argument("--outcome", required=True, choices=_values(Outcome))
    dep.add_argument("--duration", type=float, help="seconds")
    dep.add_argument("--version")
    dep.add_argument("--commit-time", help="time of the deployed change, RFC 3339 (lead time)")

    val = kinds.add_parser("validation", parents=[common], help="a finished validation")
    val.add_argument("--validation-type", required=True, choices=_values(ValidationType))
    val.add_argument("--outcome", required=True, choices=_values(ValidationOutcome))
    val.add_argument("--duration", type=float, help="seconds")
    val.add_argument("--subject", help="what was validated")

    inc = kinds.add_parser("incident", parents=[common], help="an incident opened or resolved")
    inc.add_argument("--environment", required=True, choices=_values(Environment))
    inc.add_argument("--status", default="opened", choices=_values(IncidentStatus))

    for parser in (build, dep, val, inc):
        parser.set_defaults(func=run)


_FIELDS = {
    "build_type": "build_type",
    "outcome": "outcome",
    "duration": "duration_seconds",
    "version": "version",
    "environment": "environment",
    "commit_time": "commit_time",
    "validation_type": "validation_type",
    "subject": "subject",
    "status": "status",
    "timestamp": "timestamp",
    "trace_id": "trace_id",
}


def event_body(args: argparse.Namespace) -> dict[str, Any]:
    """The event as the API takes it, from the parsed arguments."""
    body: dict[str, Any] = {"kind": args.kind, "id": args.event_id or os.urandom(16).hex()}
    for arg, field in _FIELDS.items():
        value = getattr(args, arg, None)
        if value is not None:
            body[field] = value
    if "trace_id" not in body:
        # traceparent: version-traceid-spanid-flags
        parts = os.environ.get(envvars.TRACEPARENT, "").split("-")
        if len(parts) == 4 and len(parts[1]) == 32:
            body["trace_id"] = parts[1].lower()
    return body


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file is not None:
        return str(args.token_file.read_text(encoding="utf-8").strip())
    return os.environ.get(envvars.IMPLMON_TOKEN) or None


def send(
    url: str,
    body: bytes,
    token: str | None,
    *,
    retries: int,
    timeout: float,
    sleep: Any = time.sleep,
) -> tuple[int, dict[str, Any] | str]:
    """POST with retries; returns (status, answer). Status 0: never got an HTTP answer."""
    headers = {"Content-Type": "application/json", "User-Agent": "implmon-event"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    endpoint = url.rstrip("/") + EVENTS_PATH
    last: tuple[int, dict[str, Any] | str] = (0, "no attempt made")
    for attempt in range(retries + 1):
        if attempt:
            # Exponential backoff with full jitter, capped at 30 s.
            sleep(random.uniform(0, min(30.0, 0.5 * 2 ** (attempt - 1))))  # noqa: S311
        request = urllib.request.Request(  # noqa: S310 - run() allows http(s) URLs only
            endpoint, data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as err:
            last = (err.code, _decode(err.read()))
            if err.code not in RETRYABLE:
                return last
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            last = (0, f"{endpoint}: {reason}")
    return last


def _decode(raw: bytes) -> dict[str, Any] | str:
    try:
        answer = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")
    return answer if isinstance(answer, dict) else str(answer)


def run(args: argparse.Namespace) -> int:
    if not args.url.startswith(("http://", "https://")):
        print(
            f"implmon event: --url {args.url!r}: must be an http:// or https:// URL",
            file=sys.stderr,
        )
        return EXIT_USAGE
    body = event_body(args)
    try:
        event = parse_event(body)
    except EventError as err:
        for field, why in err.errors.items():
            print(f"implmon event {args.kind}: {field}: {why}", file=sys.stderr)
        return EXIT_USAGE
    try:
        token = _token(args)
    except OSError as exc:
        print(f"implmon event: --token-file {args.token_file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    status, answer = send(
        args.url, dump_event(event).encode(), token, retries=args.retries, timeout=args.timeout
    )
    if status in (200, 201):
        if not args.quiet:
            what = answer.get("status", "stored") if isinstance(answer, dict) else "stored"
            print(f"{event.kind} event {event.id}: {what}")
        return EXIT_ACCEPTED
    detail = json.dumps(answer) if isinstance(answer, dict) else answer
    if status == 0 or status in RETRYABLE:
        print(
            f"implmon event: not delivered after {args.retries + 1} attempts: "
            f"{status or ''} {detail}".replace("  ", " "),
            file=sys.stderr,
        )
        return EXIT_UNDELIVERED
    print(f"implmon event: rejected with {status}: {detail}", file=sys.stderr)
    return EXIT_REJECTED
