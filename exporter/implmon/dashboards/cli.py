"""``implmon dashboards generate|push``: the dashboards' command-line interface.

The main CLI wires this in with two lines::

    from implmon.dashboards.cli import add_parser as add_dashboards_parser
    add_dashboards_parser(subparsers)   # sets args.func to the handler

Handlers return the process exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from implmon.dashboards import build_all
from implmon.dashboards.generate import DEFAULT_OUTPUT, check, write
from implmon.dashboards.push import (
    DEFAULT_FOLDER_TITLE,
    DEFAULT_FOLDER_UID,
    GRAFANA_URL,
    PushError,
    credential_from_env,
    push,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``dashboards`` command to an argparse ``subparsers`` object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dashboards",
        help="generate the Grafana dashboards or push them to a Grafana",
        description="Generate implmon's Grafana dashboards as JSON, or upload them to Grafana.",
    )
    commands = parser.add_subparsers(dest="dashboards_command", required=True)

    gen = commands.add_parser("generate", help="write dashboards/*.json from the code")
    gen.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="folder (default: %(default)s)"
    )
    gen.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the files differ from what the code generates",
    )
    gen.set_defaults(func=run)

    up = commands.add_parser(
        "push",
        help="upload the dashboards to Grafana",
        description="Upload the dashboards over Grafana's HTTP API. Credentials come from the "
        "environment: GRAFANA_TOKEN, or GRAFANA_USER and GRAFANA_PASSWORD.",
    )
    up.add_argument(
        "--grafana-url",
        default=os.environ.get(GRAFANA_URL, "http://localhost:3000"),
        help="Grafana base URL (default: $GRAFANA_URL or %(default)s)",
    )
    up.add_argument("--folder", default=DEFAULT_FOLDER_TITLE, help="folder title")
    up.add_argument("--folder-uid", default=DEFAULT_FOLDER_UID, help="folder uid")
    up.add_argument(
        "--message", default="implmon dashboards push", help="version message in Grafana"
    )
    up.add_argument(
        "--no-overwrite",
        dest="overwrite",
        action="store_false",
        help="fail instead of replacing a dashboard that already exists",
    )
    up.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``implmon dashboards <command>``; returns the exit code."""
    if args.dashboards_command == "generate":
        if args.check:
            problems = check(args.output)
            for problem in problems:
                print(problem, file=sys.stderr)
            return 1 if problems else 0
        for path in write(args.output):
            print(f"wrote {path}")
        return 0
    try:
        results = push(
            args.grafana_url,
            build_all(),
            credential=credential_from_env(os.environ),
            folder_uid=args.folder_uid,
            folder_title=args.folder,
            message=args.message,
            overwrite=args.overwrite,
        )
    except PushError as err:
        print(f"implmon dashboards push: {err}", file=sys.stderr)
        return 1
    for result in results:
        print(f"pushed {result.uid} version {result.version} {result.url}")
    return 0
