"""SARIF 2.1.0 static-analysis reports: findings by tool, severity and category (code, security).

Reads SARIF as ruff (``--output-format sarif``), bandit (``-f sarif``), semgrep (``--sarif``) and
CodeQL write it. Every run's ``tool.driver.name`` (lower-cased) is the ``tool`` label. A result
counts when it is a failure (``kind`` absent or ``fail``, ``open`` or ``review``), is not
suppressed (``suppressions`` with a status other than ``rejected``) and is not
``baselineState: absent``. Its rule is looked up by ``ruleIndex``/``ruleId``/``rule``,
in the driver or in an extension (CodeQL keeps its rules in ``tool.extensions``).

Category ``security`` when the rule or result is tagged ``security``, has a
``security-severity`` property, comes from a tool in ``security_tools`` (bandit by default), or
its rule id matches a glob in ``security_rules`` for its tool (ruff's ``S*`` rules, its port of
bandit, by default). Everything else is ``code``.

Severity follows GitHub code scanning, which is what people reading SARIF already know:

- security findings: ``critical`` (security-severity >= 9.0), ``high`` (>= 7.0), ``medium``
  (>= 4.0), ``low``; without a security-severity, from the level: error is high, warning is
  medium, note and none are low;
- code findings: the SARIF level (``error``, ``warning``, ``note``, ``none``): the result's
  ``level``, else its rule's ``defaultConfiguration.level``, else ``warning`` as the spec says.

Exported: ``implmon_quality_findings{tool,severity,category}`` with every severity of both
categories for each tool seen (zeros included, so "ruff ran and found nothing" is visible) and
``implmon_quality_rule_findings{tool,rule,severity,category}`` for the ``max_rules`` most
frequent rules (0 turns it off). The report timestamp is the latest ``invocations[].endTimeUtc``.

>>> doc = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Bandit"}},
...     "results": [{"ruleId": "B602", "level": "error",
...                  "properties": {"security-severity": "9.8"}}]}]}
>>> import json
>>> report, _ = parse_sarif(json.dumps(doc).encode())
>>> report.totals()
{('bandit', 'critical', 'security'): 1}
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from implmon.components.collectors.reports import (
    DEFAULT_MAX_FILE_BYTES,
    ParsedReport,
    ReportCollector,
    ReportError,
    ReportSettings,
    load_json,
    parse_timestamp,
    read_report,
)
from implmon.metrics import Sample

__all__ = [
    "CODE_SEVERITIES",
    "SECURITY_SEVERITIES",
    "SarifCollector",
    "SarifReport",
    "parse_sarif",
    "parse_sarif_file",
]

CODE_SEVERITIES = ("error", "warning", "note", "none")
SECURITY_SEVERITIES = ("critical", "high", "medium", "low")
_LEVEL_TO_SECURITY = {"error": "high", "warning": "medium", "note": "low", "none": "low"}
_COUNTED_KINDS = {"fail", "open", "review"}


@dataclass(frozen=True, slots=True)
class SarifReport:
    """One SARIF file: tools seen and finding counts by (tool, rule, severity, category)."""

    tools: frozenset[str]
    findings: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)

    def totals(self) -> dict[tuple[str, str, str], int]:
        """Counts by (tool, severity, category), rules summed."""
        out: Counter[tuple[str, str, str]] = Counter()
        for (tool, _rule, severity, category), count in self.findings.items():
            out[tool, severity, category] += count
        return dict(out)


def _security_severity(value: object) -> str | None:
    if value is None:
        return None
    try:
        score = float(value)  # type: ignore[arg-type]  # SARIF stores it as a string
    except (TypeError, ValueError):
        return None
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low"


def _props(obj: object) -> Mapping[str, Any]:
    if isinstance(obj, dict):
        props = obj.get("properties")
        if isinstance(props, dict):
            return props
    return {}


def _tags(obj: object) -> set[str]:
    tags = _props(obj).get("tags")
    if not isinstance(tags, list):
        return set()
    return {str(t).lower() for t in tags}


def _rules_of(component: object) -> list[Any]:
    if isinstance(component, dict) and isinstance(component.get("rules"), list):
        return list(component["rules"])
    return []


def _suppressed(result: Mapping[str, Any]) -> bool:
    suppressions = result.get("suppressions")
    if not isinstance(suppressions, list) or not suppressions:
        return False
    return any(
        not isinstance(s, dict) or s.get("status", "accepted") != "rejected" for s in suppressions
    )


def parse_sarif(
    data: bytes,
    *,
    security_tools: Sequence[str] = ("bandit",),
    security_rules: Mapping[str, Sequence[str]] | None = None,
) -> tuple[SarifReport, float | None]:
    """Parse SARIF 2.1.0 bytes: the findings and the report's own timestamp (None if absent)."""
    rule_globs = {"ruff": ("S*",)} if security_rules is None else security_rules
    doc = load_json(data)
    if not isinstance(doc, dict):
        raise ReportError("SARIF must be a JSON object")
    version = doc.get("version")
    if version != "2.1.0":
        raise ReportError(f"SARIF version {version!r} is not supported (expected '2.1.0')")
    runs = doc.get("runs")
    if not isinstance(runs, list):
        raise ReportError("SARIF has no 'runs' list")
    tools: set[str] = set()
    findings: Counter[tuple[str, str, str, str]] = Counter()
    stamps: list[float] = []
    for r_index, run in enumerate(runs):
        where = f"runs[{r_index}]"
        if not isinstance(run, dict):
            raise ReportError(f"{where} is not an object")
        tool_obj = run.get("tool")
        driver = tool_obj.get("driver") if isinstance(tool_obj, dict) else None
        if not isinstance(driver, dict) or not isinstance(driver.get("name"), str):
            raise ReportError(f"{where}.tool.driver.name is missing")
        tool = driver["name"].strip().lower()
        tools.add(tool)
        components = [driver] + [
            e for e in (tool_obj or {}).get("extensions") or [] if isinstance(e, dict)
        ]
        by_id = {
            rule.get("id"): rule
            for comp in components
            for rule in _rules_of(comp)
            if isinstance(rule, dict)
        }
        for invocation in run.get("invocations") or []:
            if isinstance(invocation, dict):
                stamp = parse_timestamp(invocation.get("endTimeUtc"))
                if stamp is not None:
                    stamps.append(stamp)
        results = run.get("results") or []
        if not isinstance(results, list):
            raise ReportError(f"{where}.results is not a list")
        for result in results:
            if not isinstance(result, dict):
                raise ReportError(f"{where}.results has an entry that is not an object")
            if result.get("kind", "fail") not in _COUNTED_KINDS or _suppressed(result):
                continue
            if result.get("baselineState") == "absent":
                continue
            rule = _find_rule(result, components, by_id)
            rule_id = str(result.get("ruleId") or (rule or {}).get("id") or "unknown")
            level = result.get("level")
            if level is None and rule is not None:
                level = (rule.get("defaultConfiguration") or {}).get("level")
            level = str(level or "warning")
            if level not in CODE_SEVERITIES:
                raise ReportError(f"{where}: result level {level!r} is not a SARIF level")
            sec = _security_severity(_props(result).get("security-severity")) or (
                _security_severity(_props(rule).get("security-severity"))
            )
            security = (
                sec is not None
                or "security" in _tags(result) | _tags(rule)
                or tool in security_tools
                or any(fnmatch.fnmatchcase(rule_id, g) for g in rule_globs.get(tool, ()))
            )
            if security:
                findings[tool, rule_id, sec or _LEVEL_TO_SECURITY[level], "security"] += 1
            else:
                findings[tool, rule_id, level, "code"] += 1
    return SarifReport(frozenset(tools), findings), (max(stamps) if stamps else None)


def _find_rule(
    result: Mapping[str, Any], components: list[Any], by_id: Mapping[Any, Any]
) -> Mapping[str, Any] | None:
    raw_ref = result.get("rule")
    ref: Mapping[str, Any] = raw_ref if isinstance(raw_ref, dict) else {}
    index = result.get("ruleIndex", ref.get("index"))
    comp_index = 0
    tool_component = ref.get("toolComponent")
    if isinstance(tool_component, dict) and isinstance(tool_component.get("index"), int):
        comp_index = tool_component["index"] + 1  # extensions follow the driver in components
    if isinstance(index, int) and 0 <= comp_index < len(components):
        rules = _rules_of(components[comp_index])
        if 0 <= index < len(rules) and isinstance(rules[index], dict):
            return rules[index]  # type: ignore[no-any-return]
    found = by_id.get(result.get("ruleId") or ref.get("id"))
    return found if isinstance(found, dict) else None


def parse_sarif_file(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> SarifReport:
    """Parse one SARIF file with the default categories; ReportError if unusable."""
    report, _ = parse_sarif(read_report(path, max_bytes))
    return report


class SarifCollector(ReportCollector[SarifReport]):
    """Findings from SARIF files.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "ruff.sarif").write_text('{"version": "2.1.0", "runs": [{"tool": {"driver": '
    ...     '{"name": "ruff"}}, "results": [{"ruleId": "F401", "level": "error"}]}]}')
    >>> c = SarifCollector(SarifCollector.Settings(kind="sarif", name="lint",
    ...                                             paths=["*.sarif"]), base_dir=d)
    >>> [s.labels["rule"] for s in c.collect_now() if s.metric == "implmon_quality_rule_findings"]
    ['F401']
    """

    kind = "sarif"
    what = "SARIF report"

    class Settings(ReportSettings):
        security_tools: list[str] = ["bandit"]
        """Tools (lower-case driver names) all of whose findings are security findings."""
        security_rules: dict[str, list[str]] = {"ruff": ["S*"]}
        """Per tool, rule id globs whose findings are security findings."""
        max_rules: int = Field(default=20, ge=0, le=1000)
        """How many of the most frequent rules get their own series; 0 turns it off."""

    def parse(self, path: Path, data: bytes) -> tuple[SarifReport, float | None]:
        return parse_sarif(
            data,
            security_tools=[t.lower() for t in self.settings.security_tools],
            security_rules={k.lower(): v for k, v in self.settings.security_rules.items()},
        )

    def samples(self, reports: Sequence[ParsedReport[SarifReport]]) -> list[Sample]:
        tools: set[str] = set()
        findings: Counter[tuple[str, str, str, str]] = Counter()
        for report in reports:
            tools |= report.content.tools
            findings.update(report.content.findings)
        totals: Counter[tuple[str, str, str]] = Counter()
        for (tool, _rule, severity, category), count in findings.items():
            totals[tool, severity, category] += count
        out: list[Sample] = []
        for tool in sorted(tools):
            for category, severities in (
                ("code", CODE_SEVERITIES),
                ("security", SECURITY_SEVERITIES),
            ):
                for severity in severities:
                    out.append(
                        Sample(
                            "implmon_quality_findings",
                            {"tool": tool, "severity": severity, "category": category},
                            float(totals[tool, severity, category]),
                        )
                    )
        top = sorted(findings.items(), key=lambda kv: (-kv[1], kv[0]))[: self.settings.max_rules]
        for (tool, rule, severity, category), count in sorted(top):
            out.append(
                Sample(
                    "implmon_quality_rule_findings",
                    {"tool": tool, "rule": rule, "severity": severity, "category": category},
                    float(count),
                )
            )
        return out
