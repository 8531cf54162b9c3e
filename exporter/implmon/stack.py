"""Start the real stack on this machine: demo agents, exporter, Prometheus, Alertmanager.

One place for what ``make demo``, the integration tests and the benchmarks all do: pick free
loopback ports, write configs that use the repository's own ``rules/`` and ``alerting/`` files,
start each binary in its own process group, wait until it answers, and stop it leaving nothing
behind. :func:`start_stack` does all of it; the ``start_*`` functions are its steps, for
callers that need only part of the stack.

>>> cfg = prometheus_config("127.0.0.1:9464", alertmanager="127.0.0.1:9093", scrape_interval="5s")
>>> "job_name: implmon" in cfg
True
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from implmon.demo import DEMO_COMPONENTS, demo_config

__all__ = [
    "REPO",
    "Process",
    "Stack",
    "alertmanager_config",
    "free_port",
    "free_port_block",
    "prometheus_config",
    "start_agents",
    "start_alertmanager",
    "start_exporter",
    "start_prometheus",
    "start_stack",
    "wait_http",
]

#: The source checkout (the stack runs from a checkout: rules/ and alerting/ live there).
REPO = Path(__file__).resolve().parents[2]
#: The webhook URL alerting/alertmanager.yml's default receiver points at; replaced on start.
DEFAULT_WEBHOOK = "http://127.0.0.1:9095/alerts"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def free_port_block(count: int) -> int:
    """The first of ``count`` consecutive free ports (the demo agents need one each)."""
    for _ in range(100):
        base = free_port()
        if base + count > 65535:
            continue
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no block of {count} free ports on 127.0.0.1")


def wait_http(url: str, timeout: float = 30.0, proc: Process | None = None) -> None:
    """Wait until ``url`` answers 200; fail early (with its log) if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.1)
    tail = proc.tail() if proc else ""
    raise TimeoutError(f"{url} did not answer 200 within {timeout:g}s ({last})\n{tail}")


class Process:
    """A child process in its own process group, logging to a file; stop() ends the group."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.popen = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the group, SIGKILL it if still there after ``timeout``."""
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(5)
        # Children that outlived the leader (there should be none) go too.
        self.signal(signal.SIGKILL)
        self._log.close()
        return self.popen.returncode

    def __enter__(self) -> Process:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError(f"none of {names} is installed (make test installs them)")


def implmon_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "implmon.cli", *args]


def start_agents(workdir: Path, base_port: int, flap_period: float = 20.0) -> Process:
    proc = Process(
        "demo agents",
        implmon_argv(
            "demo", "agents", "--base-port", str(base_port), "--flap-period", str(flap_period)
        ),
        workdir / "agents.log",
    )
    wait_http(f"http://127.0.0.1:{base_port}/health", proc=proc)
    return proc


def start_exporter(
    workdir: Path,
    config_text: str,
    port: int,
    env: dict[str, str] | None = None,
    ready: bool = True,
) -> Process:
    config = workdir / "implmon.yaml"
    config.write_text(config_text)
    proc = Process(
        "exporter",
        implmon_argv("run", "--config", str(config), "--web.listen-address", f"127.0.0.1:{port}"),
        workdir / "exporter.log",
        env=env,
    )
    wait_http(
        f"http://127.0.0.1:{port}/-/ready" if ready else f"http://127.0.0.1:{port}/-/healthy",
        proc=proc,
    )
    return proc


def prometheus_config(
    exporter: str,
    *,
    alertmanager: str | None = None,
    scrape_interval: str = "15s",
    evaluation_interval: str | None = None,
    rules_dir: Path | None = None,
) -> str:
    """A Prometheus config scraping the exporter (job ``implmon``) and itself, loading
    ``rules/*.yml`` and sending alerts to ``alertmanager``."""
    rules = rules_dir or REPO / "rules"
    alerting = (
        f"alerting:\n  alertmanagers:\n    - static_configs:\n"
        f"        - targets: ['{alertmanager}']\n"
        if alertmanager
        else ""
    )
    return f"""global:
  scrape_interval: {scrape_interval}
  evaluation_interval: {evaluation_interval or scrape_interval}
  external_labels:
    environment: demo
rule_files:
  - {rules}/*.yml
{alerting}scrape_configs:
  - job_name: implmon
    static_configs:
      - targets: ['{exporter}']
  - job_name: prometheus
    static_configs:
      - targets: ['PROMETHEUS_SELF']
"""


def start_prometheus(workdir: Path, config_text: str, port: int) -> Process:
    config = workdir / "prometheus.yml"
    config.write_text(config_text.replace("PROMETHEUS_SELF", f"127.0.0.1:{port}"))
    (workdir / "prometheus-data").mkdir(exist_ok=True)
    proc = Process(
        "prometheus",
        [
            _binary("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            f"--web.external-url=http://127.0.0.1:{port}/",
        ],
        workdir / "prometheus.log",
    )
    wait_http(f"http://127.0.0.1:{port}/-/ready", proc=proc)
    return proc


def alertmanager_config(webhook_url: str, source: Path | None = None) -> str:
    """alerting/alertmanager.yml with its default webhook pointed at ``webhook_url``, and its
    template paths made absolute (Alertmanager resolves them against its working dir)."""
    path = source or REPO / "alerting" / "alertmanager.yml"
    text = path.read_text().replace(DEFAULT_WEBHOOK, webhook_url)
    return re.sub(r"(?m)^(\s*-\s*['\"]?)(templates/)", rf"\g<1>{path.parent}/\g<2>", text)


def start_alertmanager(workdir: Path, config_text: str, port: int) -> Process:
    config = workdir / "alertmanager.yml"
    config.write_text(config_text)
    (workdir / "alertmanager-data").mkdir(exist_ok=True)
    proc = Process(
        "alertmanager",
        [
            _binary("prometheus-alertmanager", "alertmanager"),
            f"--config.file={config}",
            f"--storage.path={workdir / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            f"--web.external-url=http://127.0.0.1:{port}/",
        ],
        workdir / "alertmanager.log",
    )
    wait_http(f"http://127.0.0.1:{port}/-/ready", proc=proc)
    return proc


@contextlib.contextmanager
def stopping(processes: list[Process]) -> Iterator[list[Process]]:
    """Stop every process in ``processes`` (last started first) on the way out."""
    try:
        yield processes
    finally:
        for proc in reversed(processes):
            proc.stop()


@dataclass
class Stack:
    """The running stack :func:`start_stack` yields: where its files are, its ports, and its
    processes (a caller may stop one and put a restarted one in its place; the one in the list
    at the end is stopped).

    >>> stack = Stack(Path("/tmp/demo"), 18001, 9464, 9090, 9093)
    >>> stack.prometheus_url, stack.alertmanager_url
    ('http://127.0.0.1:9090', 'http://127.0.0.1:9093')
    """

    workdir: Path
    agents_port: int
    exporter_port: int
    prometheus_port: int
    alertmanager_port: int
    processes: list[Process] = field(default_factory=list)

    @property
    def exporter_url(self) -> str:
        return f"http://127.0.0.1:{self.exporter_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"

    def fault(self, component: str, status: str) -> None:
        """Force a demo component's health (``fail``, ``warn``, ``pass``) or return it to
        ``auto``."""
        index = [c.name for c in DEMO_COMPONENTS].index(component)
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.agents_port + index}/-/fault",
            data=json.dumps({"status": status}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            if response.status != 200:
                raise RuntimeError(f"{component}: fault {status!r} answered {response.status}")


@contextlib.contextmanager
def start_stack(
    workdir: Path,
    *,
    alertmanager_yml: str | None,
    interval: str = "5s",
    scrape_interval: str | None = None,
    flap_period: float = 20.0,
    failure_threshold: int = 2,
    rules_dir: Path | None = None,
    extend_exporter_config: Callable[[str], str] | None = None,
    exporter_env: dict[str, str] | None = None,
    agents_port: int | None = None,
    exporter_port: int | None = None,
    prometheus_port: int | None = None,
    alertmanager_port: int | None = None,
) -> Iterator[Stack]:
    """Start the demo agents, Alertmanager, the exporter monitoring the agents and alerting
    to Alertmanager, and Prometheus scraping the exporter with ``rules_dir`` (default
    ``rules/``) loaded; yield once all answer; stop them all (also if one fails to start).

    ``alertmanager_yml`` is Alertmanager's config, usually :func:`alertmanager_config` of the
    caller's webhook receiver; None starts no Alertmanager (and nothing alerts to one: the
    stack's ``alertmanager_port`` is then 0). ``interval`` is the exporter's cycle and, unless
    ``scrape_interval`` is given, Prometheus's scrape and evaluation interval.
    ``extend_exporter_config`` edits the exporter's config (:func:`implmon.demo.demo_config`
    text) before it starts. A port left out is a free one.

    Usage (it starts the real binaries, so not a doctest)::

        with start_stack(workdir, alertmanager_yml=alertmanager_config(hook_url)) as stack:
            stack.fault("log-collector", "fail")
    """
    stack = Stack(
        workdir,
        agents_port if agents_port is not None else free_port_block(len(DEMO_COMPONENTS)),
        exporter_port if exporter_port is not None else free_port(),
        prometheus_port if prometheus_port is not None else free_port(),
        0 if alertmanager_yml is None else alertmanager_port or free_port(),
    )
    alertmanager = alertmanager_yml is not None
    exporter_yml = demo_config(
        "127.0.0.1",
        stack.agents_port,
        interval=interval,
        store_path=workdir / "implmon.db",
        alertmanager_url=stack.alertmanager_url if alertmanager else None,
        failure_threshold=failure_threshold,
    )
    if extend_exporter_config is not None:
        exporter_yml = extend_exporter_config(exporter_yml)
    prometheus_yml = prometheus_config(
        f"127.0.0.1:{stack.exporter_port}",
        alertmanager=f"127.0.0.1:{stack.alertmanager_port}" if alertmanager else None,
        scrape_interval=scrape_interval or interval,
        rules_dir=rules_dir,
    )
    with stopping(stack.processes) as processes:
        processes.append(start_agents(workdir, stack.agents_port, flap_period))
        # Alertmanager before the exporter and Prometheus: their first alerts find it up.
        if alertmanager_yml is not None:
            processes.append(start_alertmanager(workdir, alertmanager_yml, stack.alertmanager_port))
        processes.append(
            start_exporter(workdir, exporter_yml, stack.exporter_port, env=exporter_env)
        )
        processes.append(start_prometheus(workdir, prometheus_yml, stack.prometheus_port))
        yield stack
