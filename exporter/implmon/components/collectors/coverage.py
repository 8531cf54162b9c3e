"""Cobertura XML coverage reports: line and branch coverage, overall and per component.

Reads Cobertura as coverage.py (``coverage xml``), gcovr, Istanbul/nyc and the JaCoCo and
Cobertura tools write it. Per package, lines and branches are counted from the class ``<line>``
elements (``hits`` > 0 is covered; ``condition-coverage="50% (1/2)"`` gives the branches), so
packages mapped to one component add up exactly. The overall figure is the root's
``lines-covered``/``lines-valid`` (and ``branches-...``), which is what the tool itself
reports, falling back to the sum of the packages when a writer leaves those out.

Packages map to components through ``components``: the longest key that equals the package
name or is a dotted prefix of it wins (``implmon.components`` covers
``implmon.components.collectors``). Unmapped packages count only in the overall figure, labelled
``total_component``, unless ``unmapped_component`` names a component for them.

A report without branch data (coverage.py without ``--branch`` writes ``branch-rate="0"`` and
``branches-valid="0"``) exports no branch series at all rather than a 0 that would fail a gate.

Exported: ``implmon_quality_coverage_ratio{component,kind}``, kind ``line`` or ``branch``.

>>> report, ts = parse_cobertura(b'<coverage timestamp="1714557600000" lines-valid="4" '
...     b'lines-covered="3"><packages/></coverage>')
>>> report.total.ratio("line"), ts
(0.75, 1714557600.0)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from implmon.components.collectors.reports import (
    DEFAULT_MAX_FILE_BYTES,
    ParsedReport,
    ReportCollector,
    ReportError,
    ReportSettings,
    load_xml,
    number,
    read_report,
)
from implmon.metrics import Sample

__all__ = [
    "CoverageCollector",
    "CoverageCounts",
    "CoverageReport",
    "component_for",
    "parse_cobertura",
    "parse_cobertura_file",
]

_CONDITION = re.compile(r"\((\d+)\s*/\s*(\d+)\)")
# Cobertura timestamps are Unix milliseconds (coverage.py, Istanbul) or seconds (gcovr):
# anything past this many is milliseconds (1e11 seconds is the year 5138).
_MILLIS_THRESHOLD = 1e11


@dataclass(frozen=True, slots=True)
class CoverageCounts:
    """Covered and valid lines and branches."""

    lines_covered: int = 0
    lines_valid: int = 0
    branches_covered: int = 0
    branches_valid: int = 0

    def __add__(self, other: CoverageCounts) -> CoverageCounts:
        return CoverageCounts(
            self.lines_covered + other.lines_covered,
            self.lines_valid + other.lines_valid,
            self.branches_covered + other.branches_covered,
            self.branches_valid + other.branches_valid,
        )

    def ratio(self, kind: str) -> float | None:
        """Covered over valid for ``line`` or ``branch``; None when there is nothing to cover."""
        covered, valid = (
            (self.lines_covered, self.lines_valid)
            if kind == "line"
            else (self.branches_covered, self.branches_valid)
        )
        return covered / valid if valid else None


@dataclass(frozen=True, slots=True)
class CoverageReport:
    """One Cobertura file: overall counts and counts per package name."""

    total: CoverageCounts
    packages: Mapping[str, CoverageCounts] = field(default_factory=dict)


def _count(value: str | None, what: str) -> int:
    result = number(value, what)
    if result < 0 or result != int(result):
        raise ReportError(f"{what} is not a count: {value!r}")
    return int(result)


def parse_cobertura(data: bytes) -> tuple[CoverageReport, float | None]:
    """Parse Cobertura XML bytes: the report and its own timestamp (None when it has none)."""
    root = load_xml(data, ("coverage",))
    packages: dict[str, CoverageCounts] = {}
    for p_index, package in enumerate(root.iter("package")):
        name = package.get("name") or "."
        counts = CoverageCounts()
        for c_index, klass in enumerate(package.iter("class")):
            where = f"package[{p_index}].class[{c_index}]"
            lines_el = klass.find("lines")
            seen: set[str] = set()
            for line in lines_el if lines_el is not None else ():
                key = line.get("number", "")
                if key in seen:
                    continue
                seen.add(key)
                hits = number(line.get("hits"), f"{where}.line[{key}].hits")
                covered_branches = valid_branches = 0
                if line.get("branch") == "true":
                    match = _CONDITION.search(line.get("condition-coverage") or "")
                    if match:
                        covered_branches, valid_branches = int(match[1]), int(match[2])
                counts = counts + CoverageCounts(int(hits > 0), 1, covered_branches, valid_branches)
        packages[name] = packages.get(name, CoverageCounts()) + counts
    summed = sum(packages.values(), CoverageCounts())
    if root.get("lines-valid") is not None:
        total = CoverageCounts(
            _count(root.get("lines-covered"), "coverage.lines-covered"),
            _count(root.get("lines-valid"), "coverage.lines-valid"),
            _count(root.get("branches-covered") or "0", "coverage.branches-covered"),
            _count(root.get("branches-valid") or "0", "coverage.branches-valid"),
        )
    else:
        total = summed
    if total.lines_covered > total.lines_valid or total.branches_covered > total.branches_valid:
        raise ReportError("more lines or branches covered than there are")
    stamp = root.get("timestamp")
    timestamp = None
    if stamp:
        value = number(stamp, "coverage.timestamp")
        timestamp = value / 1000 if value > _MILLIS_THRESHOLD else value
    return CoverageReport(total, packages), timestamp


def parse_cobertura_file(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> CoverageReport:
    """Parse one Cobertura file (for the validator and scripts); ReportError if unusable."""
    report, _ = parse_cobertura(read_report(path, max_bytes))
    return report


def component_for(package: str, components: Mapping[str, str]) -> str | None:
    """The component a package belongs to: the longest matching dotted prefix, or None.

    >>> component_for("app.api.v1", {"app": "core", "app.api": "api"})
    'api'
    >>> component_for("application", {"app": "core"}) is None
    True
    """
    best: str | None = None
    for prefix in components:
        if (package == prefix or package.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return components[best] if best is not None else None


class CoverageCollector(ReportCollector[CoverageReport]):
    """Coverage ratios from Cobertura XML files.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "coverage.xml").write_text('<coverage lines-valid="2" lines-covered="1"/>')
    >>> c = CoverageCollector(CoverageCollector.Settings(kind="coverage", name="cov",
    ...                                                   paths=["coverage.xml"]), base_dir=d)
    >>> [(s.labels["component"], s.value) for s in c.collect_now()
    ...  if s.metric == "implmon_quality_coverage_ratio"]
    [('all', 0.5)]
    """

    kind = "coverage"
    what = "Cobertura report"

    class Settings(ReportSettings):
        components: dict[str, str] = {}
        """Package name (or dotted prefix) to component label."""
        unmapped_component: str | None = None
        """Component for packages ``components`` does not map; None: only in the total."""
        total_component: str = "all"
        """Component label of the overall figure."""

    def parse(self, path: Path, data: bytes) -> tuple[CoverageReport, float | None]:
        return parse_cobertura(data)

    def samples(self, reports: Sequence[ParsedReport[CoverageReport]]) -> list[Sample]:
        if not reports:
            return []
        by_component: dict[str, CoverageCounts] = {}
        total = CoverageCounts()
        for report in reports:
            total = total + report.content.total
            for package, counts in report.content.packages.items():
                component = (
                    component_for(package, self.settings.components)
                    or self.settings.unmapped_component
                )
                if component is not None:
                    by_component[component] = by_component.get(component, CoverageCounts()) + counts
        by_component[self.settings.total_component] = total
        out: list[Sample] = []
        for component in sorted(by_component):
            for kind in ("line", "branch"):
                ratio = by_component[component].ratio(kind)
                if ratio is not None:
                    out.append(
                        Sample(
                            "implmon_quality_coverage_ratio",
                            {"component": component, "kind": kind},
                            ratio,
                        )
                    )
        return out
