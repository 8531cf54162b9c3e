"""`make demo`: the exporter on a simulated agent framework, real Prometheus and Alertmanager.

Starts, on loopback:
- the demo agent framework (five components of the four types; ``event-processor`` flaps),
- the implmon exporter monitoring them (and the host),
- Prometheus scraping the exporter and loading rules/,
- Alertmanager with alerting/alertmanager.yml, its webhook pointed at a receiver in this
  script that prints every notification it gets.

Prints the URLs, runs until Ctrl-C, then stops everything it started. Preferred ports are the
usual ones (9464, 9090, 9093); a port already in use is replaced by a free one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from implmon.demo import format_notification
from implmon.stack import REPO, alertmanager_config, free_port, free_port_block, start_stack


def port_or_free(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


class WebhookPrinter(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()
        try:
            message = json.loads(body)
        except ValueError:
            return
        for line in format_notification(message):
            print(line, flush=True)

    def log_message(self, format: str, *args: object) -> None:
        return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO / "demo-data")
    parser.add_argument("--interval", default="5s", help="exporter cycle interval")
    parser.add_argument("--flap-period", type=float, default=30.0)
    parser.add_argument("--exit-after", type=float, default=0,
                        help="stop after this many seconds (0: run until Ctrl-C)")
    args = parser.parse_args()

    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    agents_port = 18001 if _free_range(18001, 5) else free_port_block(5)
    exporter_port = port_or_free(9464)
    prom_port = port_or_free(9090)
    am_port = port_or_free(9093)
    hook_port = free_port()

    webhook = ThreadingHTTPServer(("127.0.0.1", hook_port), WebhookPrinter)
    threading.Thread(target=webhook.serve_forever, daemon=True).start()

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    print("starting the demo agent framework, exporter, Prometheus and Alertmanager...")
    with start_stack(
        args.workdir,
        alertmanager_yml=alertmanager_config(f"http://127.0.0.1:{hook_port}/alerts"),
        interval=args.interval,
        scrape_interval="5s",
        flap_period=args.flap_period,
        agents_port=agents_port,
        exporter_port=exporter_port,
        prometheus_port=prom_port,
        alertmanager_port=am_port,
    ) as stack:
        print(f"""
implmon demo is up (logs in {args.workdir}):
  status page      http://127.0.0.1:{exporter_port}/
  metrics          http://127.0.0.1:{exporter_port}/metrics
  readiness        http://127.0.0.1:{exporter_port}/-/ready
  Prometheus       http://127.0.0.1:{prom_port}/  (alerts: /alerts, targets: /targets)
  Alertmanager     http://127.0.0.1:{am_port}/
  demo components  http://127.0.0.1:{agents_port}/health ... :{agents_port + 4}/health
  inject a fault   curl -XPOST -d '{{"status":"fail"}}' http://127.0.0.1:{agents_port}/-/fault
Notifications Alertmanager sends are printed below. Ctrl-C stops everything.
""", flush=True)
        deadline = time.monotonic() + args.exit_after if args.exit_after else None
        while not stop.is_set():
            if deadline is not None and time.monotonic() > deadline:
                break
            for proc in stack.processes:
                if proc.popen.poll() is not None:
                    print(f"{proc.name} exited unexpectedly:\n{proc.tail()}", file=sys.stderr)
                    stop.set()
            stop.wait(1.0)
        print("stopping...", flush=True)
    webhook.shutdown()
    return 0


def _free_range(first: int, count: int) -> bool:
    for port in range(first, first + count):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


if __name__ == "__main__":
    sys.exit(main())
