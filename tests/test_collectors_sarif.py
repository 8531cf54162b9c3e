"""The sarif collector on SARIF that ruff writes at test time, bandit's committed SARIF and a
hand-written CodeQL-shaped file.

Expected counts come from each tool's other output of the same run (ruff's and bandit's JSON
formats), read here with ``json``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
import quality_reports as qr
from implmon.components.collectors.reports import parse_timestamp
from implmon.components.collectors.sarif import SarifCollector, parse_sarif_file

BANDIT_LEVELS = {"HIGH": "high", "MEDIUM": "medium", "LOW": "low"}


def collector(base: Path, pattern: str, **settings: object) -> SarifCollector:
    return SarifCollector(
        SarifCollector.Settings(kind="sarif", name="lint", paths=[pattern], **settings),
        base_dir=base,
    )


@pytest.fixture(scope="module")
def ruff_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, object]]]:
    root = tmp_path_factory.mktemp("sarif")
    project = qr.copy_project(root)
    diagnostics = qr.ruff_reports(project, root / "ruff.sarif")
    return root, diagnostics


def test_ruff_findings_match_ruff_json(ruff_run: tuple[Path, list[dict[str, object]]]) -> None:
    base, diagnostics = ruff_run
    samples = collector(base, "ruff.sarif").collect_now()
    qr.assert_in_catalogue(samples)
    codes = Counter(str(d["code"]) for d in diagnostics)
    security = sum(n for code, n in codes.items() if code.startswith("S"))
    assert security > 0 and security < sum(codes.values())  # the sample has both kinds
    # ruff reports every diagnostic at level "error": code findings keep the level, its S
    # rules (a port of bandit) are security findings, and "error" without a
    # security-severity is "high".
    assert (
        qr.value(
            samples, "implmon_quality_findings", tool="ruff", severity="error", category="code"
        )
        == sum(codes.values()) - security
    )
    assert (
        qr.value(
            samples, "implmon_quality_findings", tool="ruff", severity="high", category="security"
        )
        == security
    )
    by_rule = {
        s.labels["rule"]: s.value for s in samples if s.metric == "implmon_quality_rule_findings"
    }
    assert by_rule == {code: float(n) for code, n in codes.items()}


def test_every_severity_is_exported_per_tool(
    ruff_run: tuple[Path, list[dict[str, object]]],
) -> None:
    base, diagnostics = ruff_run
    samples = collector(base, "ruff.sarif").collect_now()
    findings = [s for s in samples if s.metric == "implmon_quality_findings"]
    assert len(findings) == 8  # 4 code levels + 4 security severities for the one tool
    assert sum(s.value for s in findings) == len(diagnostics)


def test_without_invocation_time_the_file_mtime_is_the_timestamp(
    ruff_run: tuple[Path, list[dict[str, object]]],
) -> None:
    base, _ = ruff_run
    doc = json.loads((base / "ruff.sarif").read_text())
    assert not any("endTimeUtc" in i for run in doc["runs"] for i in run.get("invocations", []))
    samples = collector(base, "ruff.sarif").collect_now()
    assert qr.value(samples, "implmon_quality_report_timestamp_seconds", source="lint") == (
        os.stat(base / "ruff.sarif").st_mtime
    )


def test_bandit_sarif_matches_bandit_json() -> None:
    """bandit.sarif and bandit.json are bandit 1.9.4's output for the sample project."""
    samples = collector(qr.STATIC_REPORTS, "bandit.sarif").collect_now()
    qr.assert_in_catalogue(samples)
    bandit = json.loads((qr.STATIC_REPORTS / "bandit.json").read_text())
    expected = Counter(BANDIT_LEVELS[r["issue_severity"]] for r in bandit["results"])
    for severity in ("critical", "high", "medium", "low"):
        assert (
            qr.value(
                samples,
                "implmon_quality_findings",
                tool="bandit",
                severity=severity,
                category="security",
            )
            == expected[severity]
        )
    assert (
        sum(
            s.value
            for s in samples
            if s.metric == "implmon_quality_findings" and s.labels["category"] == "code"
        )
        == 0
    )
    sarif = json.loads((qr.STATIC_REPORTS / "bandit.sarif").read_text())
    end = sarif["runs"][0]["invocations"][0]["endTimeUtc"]
    assert qr.value(samples, "implmon_quality_report_timestamp_seconds", source="lint") == (
        parse_timestamp(end)
    )


def test_codeql_shape_extensions_suppressions_and_baseline() -> None:
    report = parse_sarif_file(qr.STATIC_REPORTS / "codeql-style.sarif")
    doc = json.loads((qr.STATIC_REPORTS / "codeql-style.sarif").read_text())
    results = doc["runs"][0]["results"]
    counted = [
        r for r in results if not r.get("suppressions") and r.get("baselineState") != "absent"
    ]
    assert sum(report.totals().values()) == len(counted) == 3
    assert report.totals() == {
        ("codeql", "critical", "security"): 1,  # security-severity 9.8, from the extension rule
        ("codeql", "high", "security"): 1,  # 7.5
        ("codeql", "note", "code"): 1,  # the rule's default level; no security tag
    }


def test_max_rules_caps_the_per_rule_series(
    ruff_run: tuple[Path, list[dict[str, object]]],
) -> None:
    base, _ = ruff_run
    one = collector(base, "ruff.sarif", max_rules=1).collect_now()
    assert len([s for s in one if s.metric == "implmon_quality_rule_findings"]) == 1
    none = collector(base, "ruff.sarif", max_rules=0).collect_now()
    assert not [s for s in none if s.metric == "implmon_quality_rule_findings"]
