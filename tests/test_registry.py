"""The ComponentRegistry and the ``implmon.components`` entry points: unknown kinds say what is
known, and a third-party plugin installed as a real distribution (a package plus its
``*.dist-info`` with ``entry_points.txt``, found by importlib.metadata on sys.path) is created
by the factory and runs in a monitor cycle exactly as a built-in does; a broken one is
reported, not fatal."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from implmon.component import Collector, Role
from implmon.config import ConfigError, load_config
from implmon.factory import ComponentCreationError, ComponentFactory
from implmon.metrics import CATALOGUE
from implmon.monitor import ImplementationMonitor, Pipeline
from implmon.registry import ENTRY_POINT_GROUP, ComponentRegistry, UnknownKindError
from implmon.runtime import Runtime

IMPLMON = Path(sys.executable).parent / "implmon"
BUILT_IN_COLLECTORS = {"http_probe", "system"}

PLUGIN = '''
"""A third-party collector: queue depths, with a metric family of its own."""
from implmon.component import Collector, ComponentSettings
from implmon.metrics import MetricSpec, MetricType, Sample


class QueueDepthSettings(ComponentSettings):
    queues: dict[str, int]


class QueueDepthCollector(Collector):
    kind = "queue_depth"
    Settings = QueueDepthSettings
    metrics = (
        MetricSpec(
            "implmon_plugin_queue_depth",
            MetricType.GAUGE,
            "Messages waiting in each queue, as of the last monitor cycle.",
            ("queue",),
        ),
    )

    async def collect(self):
        return [
            Sample("implmon_plugin_queue_depth", {"queue": name}, float(depth))
            for name, depth in sorted(self.settings.queues.items())
        ]


class Redefines(QueueDepthCollector):
    kind = "redefines"
    # Same name as a catalogue family, other help and labels: must be refused.
    metrics = (
        MetricSpec("implmon_component_up", MetricType.GAUGE, "Something else.", ("x",)),
    )


class NotAComponent:
    pass
'''

BROKEN = """
import implmon_test_dependency_that_is_not_installed  # noqa: F401
"""


def _distribution(site: Path, name: str, entry_points: dict[str, str]) -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}\n")


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Two installed distributions on sys.path: a working plugin and a broken one."""
    site = tmp_path / "site-packages"
    (site / "implmon_test_plugin").mkdir(parents=True)
    (site / "implmon_test_plugin" / "__init__.py").write_text(PLUGIN)
    (site / "implmon_test_broken.py").write_text(BROKEN)
    _distribution(
        site,
        "implmon_test_plugin",
        {
            "queue_depth": "implmon_test_plugin:QueueDepthCollector",
            "redefines": "implmon_test_plugin:Redefines",
            "not_a_component": "implmon_test_plugin:NotAComponent",
        },
    )
    _distribution(site, "implmon_test_broken", {"broken": "implmon_test_broken:Collector"})
    monkeypatch.syspath_prepend(str(site))
    yield site
    for module in ("implmon_test_plugin", "implmon_test_broken"):
        sys.modules.pop(module, None)
    # The catalogue is process-wide: leave it as other tests expect it.
    CATALOGUE.pop("implmon_plugin_queue_depth", None)


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "implmon.yaml"
    path.write_text(textwrap.dedent(body))
    return path


# --- built-ins and unknown kinds -------------------------------------------------------------


def test_built_ins_come_from_entry_points() -> None:
    registry = ComponentRegistry.from_entry_points()
    assert set(registry.kinds(Role.COLLECTOR)) >= BUILT_IN_COLLECTORS
    assert "health" in registry.kinds(Role.ANALYZER)
    assert "filter" in registry.kinds(Role.PROCESSOR)
    assert "prometheus" in registry.kinds(Role.REPORTER)
    for name, kind in registry.kinds().items():
        assert kind.kind == name, "a kind's class name attribute matches its entry point"
    assert registry.broken == {}


def test_unknown_kind_lists_the_known_ones() -> None:
    registry = ComponentRegistry.from_entry_points()
    for role in Role:
        known = ", ".join(sorted(registry.kinds(role)))
        with pytest.raises(UnknownKindError) as info:
            registry.get("nope", role)
        assert str(info.value) == f"unknown {role.value} kind 'nope'; known: {known}"


def test_kind_of_another_role_says_which() -> None:
    registry = ComponentRegistry.from_entry_points()
    known = ", ".join(registry.kinds(Role.ANALYZER))
    with pytest.raises(UnknownKindError) as info:
        registry.get("http_probe", Role.ANALYZER)
    assert str(info.value) == (
        f"kind 'http_probe' is a collector, not an analyzer; known analyzers: {known}"
    )


def test_empty_registry_says_none_is_known() -> None:
    with pytest.raises(UnknownKindError, match=r"known: none$"):
        ComponentRegistry().get("system", Role.COLLECTOR)


async def test_factory_refuses_unknown_kind_and_counts_it() -> None:
    factory = ComponentFactory(ComponentRegistry.from_entry_points())
    with pytest.raises(ComponentCreationError) as info:
        await factory.create_component({"kind": "nope", "name": "x"}, Role.COLLECTOR)
    assert str(info.value).startswith("collector 'x' (nope): unknown collector kind 'nope'")
    samples = {(s.labels["type"], s.labels["outcome"]): s.value for s in factory.samples()}
    assert samples == {("collector", "failure"): 1.0}


# --- a third-party plugin through a real entry point -----------------------------------------


def test_plugin_is_discovered_beside_the_built_ins(plugin_site: Path) -> None:
    registry = ComponentRegistry.from_entry_points()
    collectors = registry.kinds(Role.COLLECTOR)
    assert {"queue_depth", "redefines"} | BUILT_IN_COLLECTORS <= set(collectors)
    assert collectors["queue_depth"].__module__ == "implmon_test_plugin"
    assert issubclass(collectors["queue_depth"], Collector)


def test_broken_entry_points_are_reported_not_fatal(plugin_site: Path) -> None:
    registry = ComponentRegistry.from_entry_points()
    assert registry.broken == {
        "broken": "ModuleNotFoundError: No module named "
        "'implmon_test_dependency_that_is_not_installed'",
        "not_a_component": "not a subclass of implmon.component.Component",
    }
    with pytest.raises(UnknownKindError) as info:
        registry.get("broken", Role.COLLECTOR)
    assert str(info.value) == f"kind 'broken' failed to load ({registry.broken['broken']})"
    # Every working kind is still there.
    assert "queue_depth" in registry.kinds(Role.COLLECTOR)


def test_unknown_kind_lists_the_plugin(plugin_site: Path) -> None:
    registry = ComponentRegistry.from_entry_points()
    with pytest.raises(UnknownKindError) as info:
        registry.get("nope", Role.COLLECTOR)
    known = str(info.value).split("known: ")[1].split(", ")
    assert known == sorted(registry.kinds(Role.COLLECTOR))
    assert "queue_depth" in known


def test_plugin_settings_are_validated_by_the_config(plugin_site: Path, tmp_path: Path) -> None:
    registry = ComponentRegistry.from_entry_points()
    path = _config(
        tmp_path,
        """\
        collectors:
          - kind: queue_depth
            name: queues
            queues: {orders: 3}
            depth: 1
          - kind: broken
            name: b
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, registry)
    assert str(info.value).splitlines() == [
        f"{path}:5: collectors[0].depth: unknown key",
        f"{path}:6: collectors[1].kind: kind 'broken' failed to load ({registry.broken['broken']})",
    ]


async def test_plugin_runs_a_monitor_cycle(plugin_site: Path, tmp_path: Path) -> None:
    registry = ComponentRegistry.from_entry_points()
    config = load_config(
        _config(
            tmp_path,
            """\
            interval: 5s
            collectors:
              - kind: queue_depth
                name: queues
                queues: {orders: 3, invoices: 0}
            """,
        ),
        registry,
    )
    factory = ComponentFactory(registry, base_dir=config.base_dir)
    component = await factory.create_component(config.collectors[0], Role.COLLECTOR)
    assert type(component).__name__ == "QueueDepthCollector"
    assert "implmon_plugin_queue_depth" in CATALOGUE
    assert [(s.labels, s.value) for s in factory.samples()] == [
        ({"type": "collector", "outcome": "success"}, 1.0)
    ]

    assert isinstance(component, Collector)
    monitor = ImplementationMonitor(Pipeline(collectors=[component]), config.interval)
    snapshot = await monitor.run_cycle()
    depths = {
        s.labels["queue"]: s.value
        for s in snapshot.samples
        if s.metric == "implmon_plugin_queue_depth"
    }
    assert depths == {"orders": 3.0, "invoices": 0.0}
    assert snapshot.collectors["queues"][0] is True
    up = [
        s
        for s in snapshot.samples
        if s.metric == "implmon_pipeline_component_up" and s.labels["component"] == "queues"
    ]
    assert [(s.labels["kind"], s.value) for s in up] == [("queue_depth", 1.0)]


async def test_plugin_family_is_exposed_with_its_help(plugin_site: Path, tmp_path: Path) -> None:
    registry = ComponentRegistry.from_entry_points()
    config = load_config(
        _config(
            tmp_path,
            """\
            collectors:
              - kind: queue_depth
                name: queues
                queues: {orders: 7}
            """,
        ),
        registry,
    )
    runtime = Runtime(config, registry=registry)
    await runtime.start()
    try:
        await runtime.monitor.run_cycle()
        text = runtime.exposition.variant(False, False)[0].decode()
    finally:
        await runtime.close()
    spec = CATALOGUE["implmon_plugin_queue_depth"]
    assert f"# HELP implmon_plugin_queue_depth {spec.help}\n" in text
    assert "# TYPE implmon_plugin_queue_depth gauge\n" in text
    assert 'implmon_plugin_queue_depth{queue="orders"} 7.0\n' in text
    assert 'implmon_collector_success{collector="queues"} 1.0\n' in text


async def test_plugin_redefining_a_catalogue_metric_is_refused(plugin_site: Path) -> None:
    registry = ComponentRegistry.from_entry_points()
    factory = ComponentFactory(registry)
    before = CATALOGUE["implmon_component_up"]
    with pytest.raises(ComponentCreationError, match="redefines metric implmon_component_up"):
        await factory.create_component(
            {"kind": "redefines", "name": "r", "queues": {}}, Role.COLLECTOR
        )
    assert CATALOGUE["implmon_component_up"] == before


def test_check_config_finds_the_plugin_through_the_console_script(
    plugin_site: Path, tmp_path: Path
) -> None:
    path = _config(
        tmp_path,
        """\
        collectors:
          - kind: queue_depth
            name: queues
            queues: {orders: 1}
        """,
    )
    env = {**os.environ, "PYTHONPATH": str(plugin_site)}
    result = subprocess.run(
        [str(IMPLMON), "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{path}: OK (1 component(s), interval 15s)\n"
    # The broken plugins are logged, once each, and did not stop the check.
    warnings = [line for line in result.stderr.splitlines() if "level=warning" in line]
    assert len(warnings) == 2
    assert any("component kind broken " in line and "failed to load" in line for line in warnings)
    assert any("component kind not_a_component is not usable" in line for line in warnings)


def test_a_kind_claimed_by_two_distributions_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A plugin that also calls itself "system": which one won depended on sys.path order.
    site = tmp_path / "site-packages"
    site.mkdir()
    (site / "implmon_test_shadow.py").write_text(
        "from implmon.components.collectors.system import SystemCollector\n\n\n"
        "class Shadow(SystemCollector):\n    pass\n"
    )
    _distribution(site, "implmon_test_shadow", {"system": "implmon_test_shadow:Shadow"})
    monkeypatch.syspath_prepend(str(site))
    registry = ComponentRegistry.from_entry_points()
    sys.modules.pop("implmon_test_shadow", None)
    built_in = "implmon.components.collectors.system:SystemCollector"
    both = ", ".join(sorted([built_in, "implmon_test_shadow:Shadow"]))
    assert registry.broken == {"system": f"registered more than once: {both}"}
    assert "system" not in registry.kinds()
    with pytest.raises(UnknownKindError, match=r"kind 'system' failed to load \(registered more"):
        registry.get("system", Role.COLLECTOR)
    assert "http_probe" in registry.kinds(Role.COLLECTOR)
