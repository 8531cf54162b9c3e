"""docker-compose.yml and the files it mounts.

No Docker engine runs here, so the stack is checked with what can run: Debian's
``docker-compose config`` validates the file against the Compose schema, ``promtool`` checks the
Prometheus config, ``implmon check config`` the exporter's, and the rest is read from the file:
pinned images, healthchecks and ``service_healthy`` dependencies, loopback ports, named volumes,
and every mounted host path present in the repository (the same rules/, alerting/ and
dashboards/ the other tests exercise).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from implmon.demo import DEMO_COMPONENTS, demo_config

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
# The collector's image is built FROM scratch: no shell or HTTP client to run a healthcheck.
NO_HEALTHCHECK = {"otel-collector"}
STATEFUL = {"exporter", "prometheus", "alertmanager", "grafana"}


def with_defaults(text: str) -> str:
    """Substitute ``${VAR:-default}`` as Compose does with the variable unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(with_defaults(COMPOSE.read_text(encoding="utf-8")))
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def test_compose_file_is_valid_for_docker_compose() -> None:
    binary = shutil.which("docker-compose")
    assert binary, "Debian's docker-compose validates the file; `make system-deps` installs it"
    done = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    rendered = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "--services"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    assert set(rendered.stdout.split()) == {
        "agents", "exporter", "prometheus", "alertmanager", "webhook-logger", "grafana",
        "node-exporter", "otel-collector",
    }  # fmt: skip


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, service in services(compose).items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned"
        if "build" in service:
            assert image == f"implmon:{version}", name
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^FROM\s+(\S+)", dockerfile, re.M)
    assert base and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base.group(1)), base


def test_healthchecks_and_dependencies(compose: dict[str, Any]) -> None:
    all_services = services(compose)
    for name, service in all_services.items():
        if name in NO_HEALTHCHECK:
            assert "healthcheck" not in service, name
            continue
        check = service["healthcheck"]
        assert check["test"][0] == "CMD" and check["retries"] >= 3, name
        for dependency, condition in service.get("depends_on", {}).items():
            expected = "service_started" if dependency in NO_HEALTHCHECK else "service_healthy"
            assert condition == {"condition": expected}, (name, dependency)
    assert set(all_services["grafana"]["depends_on"]) == {"prometheus", "alertmanager"}
    assert set(all_services["prometheus"]["depends_on"]) >= {"exporter", "alertmanager"}
    assert set(all_services["exporter"]["depends_on"]) >= {"agents", "otel-collector"}


def test_ports_are_bound_to_loopback(compose: dict[str, Any]) -> None:
    published = 0
    for name, service in services(compose).items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"
            published += 1
    assert published >= 6
    assert "${IMPLMON_BIND:-127.0.0.1}:9464:9464" in COMPOSE.read_text(encoding="utf-8")


def mounts(compose: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(service, source, target) of every volume entry."""
    result = []
    for name, service in services(compose).items():
        for volume in service.get("volumes", []):
            source, target = str(volume).split(":")[:2]
            result.append((name, source, target))
    return result


def test_every_mounted_host_path_exists(compose: dict[str, Any]) -> None:
    binds = [(s, src, dst) for s, src, dst in mounts(compose) if src.startswith(("./", "/"))]
    assert {src for _, src, _ in binds} >= {
        "./rules", "./alerting", "./dashboards", "./dashboards/provisioning",
        "./deploy/prometheus.yml", "./deploy/implmon.yaml", "./deploy/otel-collector.yaml",
    }  # fmt: skip
    for service, source, _ in binds:
        path = ROOT / source if source.startswith("./") else Path(source)
        assert path.exists(), f"{service} mounts {source}, which does not exist"
    assert list((ROOT / "rules").glob("*.yml")), "rules/ has no rule files to load"
    assert (ROOT / "alerting" / "alertmanager.yml").is_file()


def test_state_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    named = {(s, src) for s, src, _ in mounts(compose) if not src.startswith(("./", "/"))}
    assert {src for _, src in named} == declared
    assert {s for s, _ in named} == STATEFUL


def test_prometheus_config_matches_the_stack(compose: dict[str, Any]) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus package"
    done = subprocess.run(
        [promtool, "check", "config", str(ROOT / "deploy" / "prometheus.yml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    prometheus = services(compose)["prometheus"]
    assert "--enable-feature=exemplar-storage" in prometheus["command"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text(encoding="utf-8"))
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert targets["implmon"] == ["exporter:9464"]
    assert targets["prometheus"] == ["localhost:9090"]
    assert targets["node"] == ["node-exporter:9100"]
    mounted = {dst: src for s, src, dst in mounts(compose) if s == "prometheus"}
    assert mounted["/etc/prometheus/rules"] == "./rules"
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    alertmanagers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == ["alertmanager:9093"]


def test_exporter_config_is_the_demo_config_the_tests_run(compose: dict[str, Any]) -> None:
    path = ROOT / "deploy" / "implmon.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "implmon.cli", "check", "config", str(path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    expected = demo_config(
        "agents", 18001, interval="5s", store_path="/var/lib/implmon/implmon.db",
        alertmanager_url="http://alertmanager:9093", environment="compose",
    )  # fmt: skip
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == yaml.safe_load(expected)
    agents = services(compose)["agents"]["command"]
    assert agents[agents.index("--base-port") + 1] == "18001"
    assert len(DEMO_COMPONENTS) == 5
    exporter = services(compose)["exporter"]
    assert "./deploy/implmon.yaml:/etc/implmon/implmon.yaml:ro" in exporter["volumes"]
    assert exporter["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"


def test_otel_collector_receives_otlp_http_and_exports_traces() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "otel-collector.yaml").read_text("utf-8"))
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    pipelines = config["service"]["pipelines"]
    for pipeline in pipelines.values():
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline[kind]) <= set(config[kind]), (kind, pipeline)
    assert pipelines["traces"]["receivers"] == ["otlp"]


def test_grafana_provisioning_points_at_the_stack(compose: dict[str, Any]) -> None:
    grafana = services(compose)["grafana"]
    mounted = {src: dst for service, src, dst in mounts(compose) if service == "grafana"}
    provisioning = ROOT / "dashboards" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "implmon.yml").read_text())
    urls = {d["type"]: d["url"] for d in datasources["datasources"]}
    assert urls == {
        "prometheus": "http://prometheus:9090",
        "alertmanager": "http://alertmanager:9093",
    }
    assert [d["isDefault"] for d in datasources["datasources"] if d["type"] == "prometheus"] == [
        True
    ]
    providers = yaml.safe_load((provisioning / "dashboards" / "implmon.yml").read_text())
    path = providers["providers"][0]["options"]["path"]
    assert mounted["./dashboards"] == path
    assert mounted["./dashboards/provisioning"] == "/etc/grafana/provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(path + "/")
    assert (ROOT / "dashboards" / home[len(path) + 1 :]).is_file()


def test_dockerfile_copies_existing_files_and_runs_the_mounted_config() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for line in re.findall(r"^COPY\s+(.+)$", dockerfile, re.M):
        for source in line.split()[:-1]:
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
    assert '"--config", "/etc/implmon/implmon.yaml"' in dockerfile
    assert re.search(r"^USER\s+implmon$", dockerfile, re.M)


def test_webhook_logger_receives_the_default_receivers(compose: dict[str, Any]) -> None:
    """alerting/alertmanager.yml sends to 127.0.0.1:9095 inside the alertmanager container:
    the logger shares that container's network and listens there."""
    logger = services(compose)["webhook-logger"]
    assert logger["network_mode"] == "service:alertmanager"
    command = logger["command"]
    assert command[:2] == ["demo", "webhook"]
    assert command[command.index("--listen") + 1] == "127.0.0.1:9095"
    text = (ROOT / "alerting" / "alertmanager.yml").read_text(encoding="utf-8")
    urls = re.findall(r"url:\s*'?\"?(http://[^\s'\"]+)", text)
    assert urls and all(u.startswith("http://127.0.0.1:9095/") for u in urls), urls
