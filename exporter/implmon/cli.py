"""The ``implmon`` command.

- ``implmon run --config FILE [--web.listen-address HOST:PORT] [--web.config.file FILE]``
- ``implmon check config FILE`` — prints every problem, exits 1 when there is one
- ``implmon demo agents`` — the simulated agent framework the demo and the tests monitor

Other modules add their own subcommands through an ``add_parser(subparsers)`` function listed
in :data:`SUBCOMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from implmon import __version__, envvars

__all__ = ["main"]

#: Modules that contribute subcommands: each has ``add_parser(subparsers)`` which registers a
#: parser whose ``func`` default takes the parsed args and returns an exit code.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "implmon.cli_report",
    "implmon.cli_event",
    "implmon.dashboards.cli",
)

DEFAULT_LISTEN = "127.0.0.1:9464"


class _LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        return (
            f"ts={ts}.{int(record.msecs):03d}Z level={record.levelname.lower()} "
            f"logger={record.name} msg={json.dumps(msg)}"
        )


class _JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "ts": record.created,
                "level": record.levelname.lower(),
                "logger": record.name,
                "msg": record.getMessage(),
            }
        )


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JSONFormatter() if fmt == "json" else _LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _cmd_run(args: argparse.Namespace) -> int:
    from implmon.config import ConfigError, load_config, load_model, parse_listen_address
    from implmon.runtime import Runtime
    from implmon.server import serve
    from implmon.webconfig import WebConfig

    if not args.config:
        print("implmon run: --config FILE (or $IMPLMON_CONFIG) is required", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
        web_config = (
            load_model(args.web_config_file, WebConfig) if args.web_config_file else WebConfig()
        )
    except ConfigError as err:
        print(f"implmon run: invalid configuration, not starting:\n{err}", file=sys.stderr)
        return 1
    listen = (
        args.web_listen_address
        or config.listen_address
        or os.environ.get(envvars.IMPLMON_LISTEN_ADDRESS)
        or DEFAULT_LISTEN
    )
    try:
        host, port = parse_listen_address(listen)
    except ValueError as exc:
        print(f"implmon run: --web.listen-address: {exc}", file=sys.stderr)
        return 2
    # The OpenTelemetry SDK, from the standard OTEL_* variables (spans over OTLP when set).
    from implmon.telemetry import configure_telemetry

    telemetry = configure_telemetry()
    from implmon.alerter import AlertSender

    runtime = Runtime(config, alert_sink=AlertSender.from_config(config, listen=(host, port)))
    try:
        asyncio.run(serve(runtime, host, port, web_config))
    except OSError as exc:
        print(f"implmon run: cannot listen on {listen}: {exc.strerror}", file=sys.stderr)
        return 1
    finally:
        telemetry.shutdown()
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    from implmon.config import ConfigError, load_config

    failed = 0
    for path in args.files:
        try:
            config = load_config(path)
        except ConfigError as err:
            print(err, file=sys.stderr)
            print(f"{path}: {len(err.problems)} problem(s)", file=sys.stderr)
            failed += 1
        else:
            count = sum(1 for _ in config.components())
            print(f"{path}: OK ({count} component(s), interval {config.interval:g}s)")
    return 1 if failed else 0


def _cmd_demo_agents(args: argparse.Namespace) -> int:
    from implmon.demo import run_agents

    asyncio.run(run_agents(args.host, args.base_port, flap_period=args.flap_period))
    return 0


def _cmd_demo_webhook(args: argparse.Namespace) -> int:
    from implmon.config import parse_listen_address
    from implmon.demo import run_webhook_printer

    host, port = parse_listen_address(args.listen)
    asyncio.run(run_webhook_printer(host, port))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="implmon", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"implmon {__version__}")
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default=os.environ.get(envvars.IMPLMON_LOG_LEVEL, "info"),
        choices=["debug", "info", "warning", "error"],
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        default=os.environ.get(envvars.IMPLMON_LOG_FORMAT, "logfmt"),
        choices=["logfmt", "json"],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the exporter")
    run.add_argument(
        "--config",
        default=os.environ.get(envvars.IMPLMON_CONFIG),
        help="config file (default $IMPLMON_CONFIG)",
    )
    run.add_argument(
        "--web.listen-address",
        dest="web_listen_address",
        default=None,
        help=f"host:port to serve on (default: config, then {DEFAULT_LISTEN})",
    )
    run.add_argument(
        "--web.config.file",
        dest="web_config_file",
        default=None,
        help="TLS and basic auth, in the exporter-toolkit format",
    )
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser("check", help="validate files")
    check_sub = check.add_subparsers(dest="what", required=True, metavar="WHAT")
    check_config = check_sub.add_parser("config", help="validate config files")
    check_config.add_argument("files", nargs="+", type=Path)
    check_config.set_defaults(func=_cmd_check_config)

    demo = sub.add_parser("demo", help="demo workloads")
    demo_sub = demo.add_subparsers(dest="what", required=True, metavar="WHAT")
    agents = demo_sub.add_parser("agents", help="run the simulated agent framework")
    agents.add_argument("--host", default="127.0.0.1")
    agents.add_argument(
        "--base-port",
        type=int,
        default=18001,
        help="first port; component i listens on base-port + i",
    )
    agents.add_argument(
        "--flap-period",
        type=float,
        default=20.0,
        help="seconds the flapping component spends in each state",
    )
    agents.set_defaults(func=_cmd_demo_agents)
    webhook = demo_sub.add_parser("webhook", help="print Alertmanager webhook notifications")
    webhook.add_argument("--listen", default="127.0.0.1:9095", help="host:port to listen on")
    webhook.set_defaults(func=_cmd_demo_webhook)

    for module in SUBCOMMAND_MODULES:
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
