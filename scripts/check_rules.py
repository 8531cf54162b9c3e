#!/usr/bin/env python3
"""Check the alerting side of implmon: rules, their tests, runbooks, Alertmanager config, routes.

Run by ``make rules-test`` (and so by ``make test``). Each check prints one ``ok``/``FAIL`` line
(with the details of a failure indented below it); the exit status is 1 if any check failed.

What it checks, and why each is here:

1. ``promtool check rules rules/*.yml`` -- every rules file loads.
2. ``promtool test rules rules/tests/*_test.yml`` -- the unit tests pass.
3. Every alert in any rules file has a test case that expects it to fire (a non-empty
   ``exp_alerts`` for its alertname) and one that expects it quiet (``exp_alerts: []``, the
   side of its ``for:`` boundary just before it fires; always-firing ``vector(1)`` alerts are
   exempt) -- promtool itself cannot tell an untested alert.
4. Every alert has labels ``severity`` (critical, warning, info, or none) and ``monitoring_type``
   (component, system, quality, performance) and annotations ``summary``, ``description`` and
   ``runbook_url``; the runbook URL is ``RUNBOOK_BASE#<alertname lowercased>`` and that anchor is a
   heading of ``docs/runbooks.md``; no expression uses a function Prometheus 3 removed.
5. ``amtool check-config alerting/alertmanager.yml``, and again with every commented example
   receiver (lines prefixed ``#> ``) uncommented, so the examples stay valid.
6. ``alerting/tests/routes.tsv``: each row's labels reach exactly the expected receivers
   (``amtool config routes test --verify.receivers``).
7. The notification templates render with ``alerting/tests/template_data.json`` and say what,
   where, since when, and link the runbook and the dashboard.

Usage::

    .venv/bin/python scripts/check_rules.py          # from the repository root
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "rules"
RULE_TESTS_DIR = RULES_DIR / "tests"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
ALERTING_DIR = ROOT / "alerting"
ALERTMANAGER_CONFIG = ALERTING_DIR / "alertmanager.yml"
ROUTES_TABLE = ALERTING_DIR / "tests" / "routes.tsv"
TEMPLATE_DATA = ALERTING_DIR / "tests" / "template_data.json"

RUNBOOK_BASE = "https://github.com/implmon/implmon/blob/main/docs/runbooks.md"
SEVERITIES = {"critical", "warning", "info", "none"}
MONITORING_TYPES = {"component", "system", "quality", "performance"}
REQUIRED_ANNOTATIONS = ("summary", "description", "runbook_url")
# Functions Prometheus 3 removed or renamed: rules using them would not load there.
REMOVED_IN_PROMETHEUS_3 = re.compile(r"\bholt_winters\s*\(")
# Lines of alertmanager.yml that are commented examples: "#> " prefix, uncommented as a block.
EXAMPLE_PREFIX = re.compile(r"^(\s*)#> ?", re.MULTILINE)


@dataclass(frozen=True)
class Alert:
    name: str
    file: Path
    group: str
    index: int
    rule: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.file.relative_to(ROOT)}: group {self.group!r}, rule {self.index}"


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml")) + sorted(RULES_DIR.glob("*.yaml"))


def test_files() -> list[Path]:
    return sorted(RULE_TESTS_DIR.glob("*_test.yml")) + sorted(RULE_TESTS_DIR.glob("*_test.yaml"))


def iter_alerts(files: list[Path]) -> Iterator[Alert]:
    for path in files:
        doc = yaml.safe_load(path.read_text()) or {}
        for group in doc.get("groups") or []:
            for index, rule in enumerate(group.get("rules") or []):
                if "alert" in rule:
                    yield Alert(rule["alert"], path, group.get("name", "?"), index, rule)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading (lowercase, punctuation dropped, - for spaces).

    >>> github_anchor("ImplmonComponentDown")
    'implmoncomponentdown'
    >>> github_anchor("Pipeline (builds and deployments)")
    'pipeline-builds-and-deployments'
    """
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    if not RUNBOOKS.exists():
        return set()
    anchors = set()
    for line in RUNBOOKS.read_text().splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            anchors.add(github_anchor(match.group(1)))
    return anchors


def run(cmd: list[str], cwd: Path = ROOT) -> tuple[bool, str]:
    """Run a tool; (success, combined output). A missing binary is a failure that says so."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        return False, f"{cmd[0]} not found on PATH (make system-deps installs it)"
    except subprocess.TimeoutExpired:
        return False, f"{' '.join(cmd)} timed out after 300s"
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


# --- the checks: each returns a list of problems (empty = ok) ---------------------------------


def check_promtool_rules() -> list[str]:
    files = rule_files()
    if not files:
        return [f"no rules files in {RULES_DIR.relative_to(ROOT)}/"]
    ok, out = run(["promtool", "check", "rules", *[str(f.relative_to(ROOT)) for f in files]])
    return [] if ok else [out]


def check_promtool_tests() -> list[str]:
    files = test_files()
    if not files:
        return [f"no *_test.yml files in {RULE_TESTS_DIR.relative_to(ROOT)}/"]
    # promtool resolves rule_files relative to each test file; run one file at a time so a
    # failure names its file.
    problems = []
    for path in files:
        ok, out = run(["promtool", "test", "rules", str(path.relative_to(ROOT))])
        if not ok:
            problems.append(out)
    return problems


def tested_alertnames() -> tuple[set[str], set[str], list[str]]:
    """Alertnames some test case expects to fire, those some case expects quiet, and problems
    reading the test files."""
    fired: set[str] = set()
    quiet: set[str] = set()
    problems = []
    for path in test_files():
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            problems.append(f"{path.relative_to(ROOT)}: not YAML: {exc}")
            continue
        for test in doc.get("tests") or []:
            for case in test.get("alert_rule_test") or []:
                (fired if case.get("exp_alerts") else quiet).add(case.get("alertname", ""))
    return fired, quiet, problems


def always_firing(alert: Alert) -> bool:
    """A Watchdog-style alert (``vector(1)``) has no quiet side to test."""
    return re.sub(r"\s", "", str(alert.rule.get("expr", ""))) == "vector(1)"


def check_every_alert_tested() -> list[str]:
    fired, quiet, problems = tested_alertnames()
    tests = RULE_TESTS_DIR.relative_to(ROOT)
    for alert in iter_alerts(rule_files()):
        if alert.name not in fired:
            problems.append(
                f"{alert.name} ({alert.where}) has no test case expecting it to fire "
                f"(alert_rule_test with non-empty exp_alerts) in {tests}/"
            )
        if alert.name not in quiet and not always_firing(alert):
            problems.append(
                f"{alert.name} ({alert.where}) has no test case expecting it quiet "
                f"(exp_alerts: [] just before its for: boundary) in {tests}/"
            )
    return sorted(set(problems))


def check_alert_metadata() -> list[str]:
    anchors = runbook_anchors()
    problems = []
    if not anchors:
        problems.append(f"{RUNBOOKS.relative_to(ROOT)} is missing or has no headings")
    for alert in iter_alerts(rule_files()):
        labels = alert.rule.get("labels") or {}
        annotations = alert.rule.get("annotations") or {}
        severity = labels.get("severity")
        if severity not in SEVERITIES:
            problems.append(
                f"{alert.name} ({alert.where}): label severity is {severity!r}, "
                f"must be one of {sorted(SEVERITIES)}"
            )
        mtype = labels.get("monitoring_type")
        if mtype not in MONITORING_TYPES:
            problems.append(
                f"{alert.name} ({alert.where}): label monitoring_type is {mtype!r}, "
                f"must be one of {sorted(MONITORING_TYPES)}"
            )
        for key in REQUIRED_ANNOTATIONS:
            if not str(annotations.get(key, "")).strip():
                problems.append(f"{alert.name} ({alert.where}): annotation {key} is missing")
        anchor = alert.name.lower()
        expected_url = f"{RUNBOOK_BASE}#{anchor}"
        url = annotations.get("runbook_url")
        if url and url != expected_url:
            problems.append(
                f"{alert.name} ({alert.where}): runbook_url is {url!r}, expected {expected_url!r}"
            )
        if anchors and anchor not in anchors:
            problems.append(
                f"{alert.name} ({alert.where}): {RUNBOOKS.relative_to(ROOT)} has no heading "
                f"'{alert.name}' (anchor #{anchor})"
            )
        if REMOVED_IN_PROMETHEUS_3.search(str(alert.rule.get("expr", ""))):
            problems.append(f"{alert.name} ({alert.where}): holt_winters() is gone in Prometheus 3")
    return problems


def check_alertmanager_config() -> list[str]:
    ok, out = run(["amtool", "check-config", str(ALERTMANAGER_CONFIG.relative_to(ROOT))])
    problems = [] if ok else [out]
    # The commented examples, uncommented, in a copy of alerting/ (templates resolve
    # relative to the config file).
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "alerting"
        shutil.copytree(ALERTING_DIR, copy)
        text = ALERTMANAGER_CONFIG.read_text()
        if not EXAMPLE_PREFIX.search(text):
            problems.append("alertmanager.yml has no commented '#> ' example receivers")
        (copy / ALERTMANAGER_CONFIG.name).write_text(EXAMPLE_PREFIX.sub(r"\1", text))
        ok, out = run(["amtool", "check-config", str(copy / ALERTMANAGER_CONFIG.name)])
        if not ok:
            problems.append(f"with the '#> ' examples uncommented:\n{out}")
    return problems


def route_rows() -> Iterator[tuple[int, list[str], str]]:
    for number, line in enumerate(ROUTES_TABLE.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise ValueError(
                f"{ROUTES_TABLE.relative_to(ROOT)}:{number}: need labels<TAB>receivers"
            )
        yield number, fields[0].split(), fields[1].strip()


def check_routes() -> list[str]:
    problems = []
    rows = 0
    try:
        for number, labels, expected in route_rows():
            rows += 1
            ok, out = run(
                [
                    "amtool",
                    "config",
                    "routes",
                    "test",
                    f"--config.file={ALERTMANAGER_CONFIG.relative_to(ROOT)}",
                    f"--verify.receivers={expected}",
                    *labels,
                ]
            )
            if not ok:
                problems.append(
                    f"{ROUTES_TABLE.relative_to(ROOT)}:{number}: {' '.join(labels)} -> "
                    f"expected {expected}: {out}"
                )
    except ValueError as exc:
        problems.append(str(exc))
    if rows == 0 and not problems:
        problems.append(f"{ROUTES_TABLE.relative_to(ROOT)} has no rows")
    return problems


def check_templates() -> list[str]:
    data = json.loads(TEMPLATE_DATA.read_text())
    first = data["alerts"][0]
    expectations = {
        "implmon.title": [data["commonLabels"]["alertname"], "FIRING"],
        "implmon.text": [
            first["annotations"]["summary"],
            f"component {first['labels']['component']}",
            f"environment {first['labels']['environment']}",
            "Since: ",
            first["annotations"]["runbook_url"],
            "/d/implmon-components?",
            "RESOLVED",
        ],
        "implmon.html": [first["annotations"]["runbook_url"], "<a href="],
    }
    problems = []
    for name, needles in expectations.items():
        ok, out = run(
            [
                "amtool",
                "template",
                "render",
                f"--template.glob={ALERTING_DIR.relative_to(ROOT)}/templates/*.tmpl",
                f"--template.data={TEMPLATE_DATA.relative_to(ROOT)}",
                f'--template.text={{{{ template "{name}" . }}}}',
            ]
        )
        if not ok:
            problems.append(f"template {name} does not render: {out}")
            continue
        for needle in needles:
            if needle not in out:
                problems.append(f"template {name} output lacks {needle!r}:\n{out}")
        if "<no value>" in out:
            problems.append(f"template {name} renders '<no value>':\n{out}")
    return problems


CHECKS: list[tuple[str, Callable[[], list[str]]]] = [
    ("promtool check rules rules/*.yml", check_promtool_rules),
    ("promtool test rules rules/tests/*_test.yml", check_promtool_tests),
    ("every alert has test cases expecting it to fire and to stay quiet", check_every_alert_tested),
    ("every alert has severity, monitoring_type, annotations, runbook", check_alert_metadata),
    ("amtool check-config alerting/alertmanager.yml (and its examples)", check_alertmanager_config),
    ("routing table alerting/tests/routes.tsv", check_routes),
    ("notification templates render", check_templates),
]


def main() -> int:
    failed = 0
    for title, check in CHECKS:
        try:
            problems = check()
        except Exception as exc:  # noqa: BLE001 -- a crashing check is reported as a failure
            problems = [f"check crashed: {type(exc).__name__}: {exc}"]
        if problems:
            failed += 1
            print(f"FAIL  {title}")
            for problem in problems:
                print("      " + problem.replace("\n", "\n      "))
        else:
            print(f"ok    {title}")
    alerts = list(iter_alerts(rule_files()))
    print(
        f"\n{len(CHECKS) - failed}/{len(CHECKS)} checks passed; {len(alerts)} alerting rules "
        f"in {len(rule_files())} files, {len(test_files())} test files"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
