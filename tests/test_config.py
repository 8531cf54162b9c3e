"""The config file: one bad fixture per error class with its exact messages (as
blackbox_exporter's config tests do), good fixtures read back value by value, and the
``implmon check config`` / ``implmon run`` commands on both, run as the real console script."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from implmon.component import Role
from implmon.components.analyzers.health import HealthAnalyzer
from implmon.components.collectors.http_probe import HttpProbeCollector
from implmon.components.collectors.system import SystemCollector
from implmon.components.processors.filter import FilterProcessor
from implmon.components.reporters.prometheus import PrometheusReporter
from implmon.config import Config, ConfigError, Problem, load_config, read_secret
from implmon.registry import ComponentRegistry
from implmon.stack import free_port

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "config"
GOOD = FIXTURES / "good"
BAD = FIXTURES / "bad"
IMPLMON = Path(sys.executable).parent / "implmon"

#: The environment every fixture is read with (IMPLMON_TEST_UNSET_TOKEN stays unset).
ENV = {
    "IMPLMON_TEST_AM_HOST": "alertmanager.test",
    "IMPLMON_TEST_INGEST_TOKEN": "s3cret-ingest",
    "IMPLMON_TEST_TOKEN": "s3cret",
}


def _known(role: Role) -> str:
    # The installed entry points decide the list; a new built-in must not break this table.
    return ", ".join(ComponentRegistry.from_entry_points().kinds(role))


def _re_error(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    raise AssertionError(f"{pattern!r} compiles")


KNOWN_COLLECTORS = _known(Role.COLLECTOR)

#: Bad fixture -> the exact lines of str(ConfigError), each after "<file>:".
EXPECTED: dict[str, list[str]] = {
    "invalid_yaml.yaml": [
        "5: invalid YAML: expected <block end>, but found '<block mapping start>'",
    ],
    "not_utf8.yaml": ["3: not UTF-8 text: byte 0xe9 is invalid here"],
    "not_a_mapping.yaml": ["1: must be a mapping of settings"],
    "unknown_top_level_key.yaml": ["2: scrape_interval: unknown key"],
    "duplicate_key.yaml": [
        "8: collectors[0].targets: duplicate key (first at line 5)",
        "11: interval: duplicate key (first at line 1)",
    ],
    "wrong_type.yaml": [
        "3: alerting.queue_capacity: Input should be a valid integer, "
        "unable to parse string as an integer",
    ],
    "invalid_duration.yaml": [
        "1: interval: '5 seconds' is not a duration like 15s, 1m or 500ms",
    ],
    "non_finite_duration.yaml": [
        "1: interval: nan is not a finite duration",
        "5: collectors[0].probe_timeout: inf is not a finite duration",
    ],
    "interval_not_positive.yaml": ["1: interval: must be > 0"],
    "section_not_a_list.yaml": ["2: collectors: must be a list of components"],
    "entry_not_a_mapping.yaml": ["4: collectors[1]: must be a mapping with kind and name"],
    "missing_kind.yaml": ["2: collectors[0].kind: required: a registered component kind"],
    "unknown_kind.yaml": [
        f"2: collectors[0].kind: unknown collector kind 'snmp'; known: {KNOWN_COLLECTORS}",
    ],
    "kind_of_another_role.yaml": [
        "2: collectors[0].kind: kind 'health' is an analyzer, not a collector; "
        f"known collectors: {KNOWN_COLLECTORS}",
    ],
    "unknown_component_key.yaml": ["4: collectors[0].mountpoint: unknown key"],
    "missing_component_field.yaml": ["2: collectors[0].targets: Field required"],
    "bad_target_url.yaml": [
        "7: collectors[0].targets[1].url: '127.0.0.1:8002/health' is not an http:// or "
        "https:// URL",
    ],
    "empty_targets.yaml": [
        "4: collectors[0].targets: List should have at least 1 item after validation, not 0",
    ],
    "duplicate_names.yaml": [
        "5: collectors[1].name: duplicate name 'host' (also collectors[0])",
        "9: analyzers[0].name: duplicate name 'host' (also collectors[0])",
    ],
    "duplicate_target_component.yaml": [
        "4: collectors[0].targets: duplicate component 'log-collector' (targets[0] and targets[1])",
    ],
    "unset_env_var.yaml": [
        "5: collectors[0].bearer_token.value: "
        "environment variable IMPLMON_TEST_UNSET_TOKEN is not set",
    ],
    "secret_value_and_file.yaml": [
        "4: collectors[0].bearer_token: give exactly one of value (e.g. ${TOKEN}) or file",
    ],
    "invalid_external_url.yaml": [
        "1: external_url: 'implmon.example.org' is not an http:// or https:// URL",
        "3: alerting.external_url: '/implmon' is not an http:// or https:// URL",
    ],
    "invalid_listen_address.yaml": ["2: listen_address: 'localhost' is not host:port"],
    "invalid_regex.yaml": [
        "5: processors[0].drop[0].metric: invalid regular expression "
        f"'implmon_host_filesystem_(.*': {_re_error('implmon_host_filesystem_(.*')}",
    ],
    "multiple_problems.yaml": [
        "1: interval: must be > 0",
        "2: retention: 'forever' is not a duration like 15s, 1m or 500ms",
        f"4: collectors[0].kind: unknown collector kind 'snmp'; known: {KNOWN_COLLECTORS}",
        "8: collectors[1].mountpoint: unknown key",
        "12: analyzers[0].failure_threshold: Input should be greater than 0",
    ],
}


def expected_lines(path: Path) -> list[str]:
    return [f"{path}:{line}" for line in EXPECTED[path.name]]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPLMON_")}
    return {**env, **ENV, **extra}


def _implmon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(IMPLMON), *args], capture_output=True, text=True, timeout=60, env=env or _env()
    )


# --- bad files: one per error class, exact messages ---------------------------------------


def test_every_bad_fixture_has_its_expected_messages() -> None:
    assert {p.name for p in BAD.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_config_exact_messages(name: str) -> None:
    path = BAD / name
    with pytest.raises(ConfigError) as info:
        load_config(path, env=ENV)
    assert str(info.value).splitlines() == expected_lines(path)
    assert info.value.source == str(path)
    assert len(info.value.problems) == len(EXPECTED[name])


def test_problems_carry_path_message_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(BAD / "bad_target_url.yaml", env=ENV)
    assert info.value.problems == [
        Problem(
            "collectors[0].targets[1].url",
            "'127.0.0.1:8002/health' is not an http:// or https:// URL",
            7,
        )
    ]


def test_multiple_problems_are_all_reported_in_line_order() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(BAD / "multiple_problems.yaml", env=ENV)
    lines = [p.line or 0 for p in info.value.problems]
    assert all(lines) and lines == sorted(lines)
    assert [p.path for p in info.value.problems] == [
        "interval",
        "retention",
        "collectors[0].kind",
        "collectors[1].mountpoint",
        "analyzers[0].failure_threshold",
    ]


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(info.value) == f"{missing}: cannot read file: No such file or directory"


def test_secret_with_neither_value_nor_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("ingest:\n  token: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}:2: ingest.token: give exactly one of value (e.g. ${{TOKEN}}) or file"
    )


# --- good files ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in GOOD.glob("*.yaml")))
def test_good_configs_load(name: str) -> None:
    config = load_config(GOOD / name, env=ENV)
    assert config.source == (GOOD / name).resolve()
    assert sum(1 for _ in config.components()) > 0


def test_minimal_config_takes_the_defaults() -> None:
    config = load_config(GOOD / "minimal.yaml", env={})
    defaults = Config()
    assert config.interval == defaults.interval == 15.0
    assert config.listen_address is None
    assert config.store_path == GOOD.resolve() / "implmon.db"
    assert [(type(c), c.name) for c in config.components()] == [(SystemCollector.Settings, "host")]


def test_full_config_values() -> None:
    config = load_config(GOOD / "full.yaml", env=ENV)
    assert config.interval == 10.0
    assert config.listen_address == "[::1]:9464"
    assert config.retention == 30 * 86400.0
    assert config.alerting.resend_delay == 90.0
    assert config.alerting.queue_capacity == 500
    (am,) = config.alerting.alertmanagers
    assert am.url == "http://alertmanager.test:9093"
    assert am.timeout == 2.0
    assert read_secret(config.ingest.token) == "s3cret-ingest"
    assert config.ingest.max_body_bytes == 65536
    kinds = [(c.kind, c.name, c.enabled) for c in config.components()]
    assert kinds == [
        ("http_probe", "agents", True),
        ("system", "host", True),
        ("filter", "drop-tmpfs", False),
        ("health", "health", True),
        ("prometheus", "prometheus", True),
    ]
    probe = config.collectors[0]
    assert isinstance(probe, HttpProbeCollector.Settings)
    assert (probe.timeout, probe.concurrency, probe.probe_timeout) == (8.0, 2, 0.5)
    assert [t.component for t in probe.targets] == ["log-collector", "anomaly-analyzer"]
    assert isinstance(config.processors[0], FilterProcessor.Settings)
    assert isinstance(config.analyzers[0], HealthAnalyzer.Settings)
    assert config.analyzers[0].failure_threshold == 3
    assert isinstance(config.reporters[0], PrometheusReporter.Settings)


def test_env_expansion_and_dollar_escape() -> None:
    config = load_config(GOOD / "full.yaml", env=ENV)
    headers = config.collectors[0].targets[0].headers
    assert headers == {
        "X-Cost": f"$5 for {ENV['IMPLMON_TEST_AM_HOST']}",
        "X-Literal": "${NOT_EXPANDED}",
    }


def test_env_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    # An expanded value is validated as the field's type, so a duration can come from the env.
    path.write_text("interval: ${IMPLMON_TEST_INTERVAL}\n")
    monkeypatch.setenv("IMPLMON_TEST_INTERVAL", "1m30s")
    assert load_config(path).interval == 90.0
    monkeypatch.delenv("IMPLMON_TEST_INTERVAL")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0].message == "environment variable IMPLMON_TEST_INTERVAL is not set"


def test_relative_paths_are_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Read from elsewhere, by a relative path: the file's directory anchors its paths.
    monkeypatch.chdir(REPO)
    config = load_config(GOOD.relative_to(REPO) / "full.yaml", env=ENV)
    monkeypatch.chdir(tmp_path)
    again = load_config(GOOD / "full.yaml", env=ENV)
    for c in (config, again):
        assert c.store_path == GOOD.resolve() / "data" / "implmon.db"
        token = c.alerting.alertmanagers[0].bearer_token
        assert token is not None
        assert token.file == GOOD.resolve() / "secrets" / "alertmanager-token"
        probe_token = c.collectors[0].bearer_token
        assert probe_token.file == Path("/run/secrets/probe-token")  # absolute stays as it is


def test_secret_file_is_read_relative_to_the_config_and_reread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "etc"
    (conf_dir / "secrets").mkdir(parents=True)
    (conf_dir / "secrets" / "token").write_text("first\n")
    path = conf_dir / "implmon.yaml"
    path.write_text("ingest:\n  token:\n    file: secrets/token\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(path)
    assert read_secret(config.ingest.token) == "first"
    (conf_dir / "secrets" / "token").write_text("rotated\n")
    assert read_secret(config.ingest.token) == "rotated"


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n")
    config = load_config(path)
    assert config.interval == Config().interval
    assert list(config.components()) == []


# --- the commands ----------------------------------------------------------------------------


def test_check_config_ok() -> None:
    paths = [GOOD / "minimal.yaml", GOOD / "full.yaml"]
    result = _implmon("check", "config", *map(str, paths))
    assert result.returncode == 0, result.stderr
    expected = []
    for path in paths:
        config = load_config(path, env=ENV)
        count = sum(1 for _ in config.components())
        expected.append(f"{path}: OK ({count} component(s), interval {config.interval:g}s)")
    assert result.stdout.splitlines() == expected
    assert result.stderr == ""


def test_check_config_prints_every_problem_and_fails() -> None:
    path = BAD / "multiple_problems.yaml"
    result = _implmon("check", "config", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        *expected_lines(path),
        f"{path}: {len(EXPECTED[path.name])} problem(s)",
    ]


def test_check_config_every_bad_fixture_in_one_run() -> None:
    paths = sorted(BAD.glob("*.yaml"))
    result = _implmon("check", "config", str(GOOD / "minimal.yaml"), *map(str, paths))
    assert result.returncode == 1
    assert result.stdout.startswith(f"{GOOD / 'minimal.yaml'}: OK")
    expected = []
    for path in paths:
        expected += [*expected_lines(path), f"{path}: {len(EXPECTED[path.name])} problem(s)"]
    assert result.stderr.splitlines() == expected


def test_check_config_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    result = _implmon("check", "config", str(missing))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{missing}: cannot read file: No such file or directory",
        f"{missing}: 1 problem(s)",
    ]


def test_run_refuses_an_invalid_config_with_the_same_messages() -> None:
    path = BAD / "multiple_problems.yaml"
    port = free_port()
    result = _implmon("run", "--config", str(path), "--web.listen-address", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "implmon run: invalid configuration, not starting:",
        *expected_lines(path),
    ]
    # It never listened.
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


def test_run_refuses_an_unset_env_var() -> None:
    path = BAD / "unset_env_var.yaml"
    result = _implmon("run", "--config", str(path), "--web.listen-address", "127.0.0.1:1")
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == expected_lines(path)


def test_example_config_passes_check() -> None:
    example = REPO / "examples" / "implmon.yaml"
    if not example.exists():
        pytest.skip("examples/implmon.yaml is not written yet")
    result = _implmon("check", "config", str(example))
    assert result.returncode == 0, result.stderr
    config = load_config(example)
    count = sum(1 for _ in config.components())
    assert result.stdout == f"{example}: OK ({count} component(s), interval {config.interval:g}s)\n"
