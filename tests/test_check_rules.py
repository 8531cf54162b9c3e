"""scripts/check_rules.py catches what promtool cannot: untested alerts, missing labels,
annotations and runbook anchors, and wrong routes. Each test breaks a copy of the real files."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None or shutil.which("amtool") is None,
    reason="promtool/amtool not installed (make system-deps)",
)


@pytest.fixture
def checker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """check_rules loaded against a copy of rules/, docs/ and alerting/ under tmp_path."""
    for name in ("rules", "docs", "alerting"):
        shutil.copytree(ROOT / name, tmp_path / name)
    spec = importlib.util.spec_from_file_location("check_rules", ROOT / "scripts/check_rules.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_rules"] = module
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "RULES_DIR", tmp_path / "rules")
    monkeypatch.setattr(module, "RULE_TESTS_DIR", tmp_path / "rules" / "tests")
    monkeypatch.setattr(module, "RUNBOOKS", tmp_path / "docs" / "runbooks.md")
    monkeypatch.setattr(module, "ALERTING_DIR", tmp_path / "alerting")
    monkeypatch.setattr(module, "ALERTMANAGER_CONFIG", tmp_path / "alerting" / "alertmanager.yml")
    monkeypatch.setattr(module, "ROUTES_TABLE", tmp_path / "alerting" / "tests" / "routes.tsv")
    monkeypatch.setattr(
        module, "TEMPLATE_DATA", tmp_path / "alerting" / "tests" / "template_data.json"
    )
    return module


EXTRA_RULES = """\
groups:
  - name: extra
    rules:
      - alert: ExtraUntested
        expr: up == 0
        labels:
          severity: warning
        annotations:
          summary: s
          runbook_url: https://example.org/elsewhere
"""


def test_the_repository_passes(checker: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert checker.main() == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out
    assert f"{len(checker.CHECKS)}/{len(checker.CHECKS)} checks passed" in out


def test_untested_alert_and_missing_metadata_are_named(checker: ModuleType) -> None:
    (checker.RULES_DIR / "extra.yml").write_text(EXTRA_RULES)

    untested = checker.check_every_alert_tested()
    where = "ExtraUntested (rules/extra.yml: group 'extra', rule 0)"
    assert untested == [
        f"{where} has no test case expecting it quiet (exp_alerts: [] just before its for: "
        "boundary) in rules/tests/",
        f"{where} has no test case expecting it to fire (alert_rule_test with non-empty "
        "exp_alerts) in rules/tests/",
    ]

    problems = "\n".join(checker.check_alert_metadata())
    assert "ExtraUntested" in problems
    assert "label monitoring_type is None" in problems
    assert "annotation description is missing" in problems
    assert "runbook_url is 'https://example.org/elsewhere'" in problems
    assert "has no heading 'ExtraUntested' (anchor #extrauntested)" in problems


def test_missing_runbook_section_is_reported(checker: ModuleType) -> None:
    text = checker.RUNBOOKS.read_text().replace("### ImplmonComponentFlapping", "### Flapping")
    checker.RUNBOOKS.write_text(text)
    problems = checker.check_alert_metadata()
    assert problems == [
        "ImplmonComponentFlapping (rules/component.yml: group 'implmon-component', rule 1): "
        "docs/runbooks.md has no heading 'ImplmonComponentFlapping' (anchor "
        "#implmoncomponentflapping)"
    ]


def test_wrong_route_expectation_fails(checker: ModuleType) -> None:
    with checker.ROUTES_TABLE.open("a") as table:
        table.write(
            "alertname=X severity=critical monitoring_type=system\tticket\twrong on purpose\n"
        )
    problems = checker.check_routes()
    assert len(problems) == 1
    assert "alertname=X severity=critical monitoring_type=system -> expected ticket" in problems[0]


def test_broken_example_receiver_fails(checker: ModuleType) -> None:
    text = checker.ALERTMANAGER_CONFIG.read_text().replace(
        "#>   - api_url_file:", "#>   - api_url_fil:"
    )
    checker.ALERTMANAGER_CONFIG.write_text(text)
    problems = checker.check_alertmanager_config()
    assert len(problems) == 1
    assert problems[0].startswith("with the '#> ' examples uncommented:")
