"""JUnit/xUnit XML test reports: tests by suite and result, suite durations.

Reads the dialects real tools write: pytest ``--junitxml`` (``<testsuites>`` around
``<testsuite name="pytest">``), Maven Surefire (one ``<testsuite>`` per class and file), Go's
gotestsum ``--junitfile`` (one suite per package) and jest-junit (one suite per test file).
Results are counted from the ``<testcase>`` elements themselves, not from the suites'
``tests``/``failures`` attributes, which some writers leave out or get wrong: a case with a
``<failure>`` child failed, ``<error>`` errored, ``<skipped>`` was skipped (pytest's xfail
included), anything else passed. A suite with no cases counts from its attributes. Nested suites
(some writers wrap suites in suites) count once, at the level that holds the cases.

Suites with the same label in several files add up. The label is the suite's ``name``
(``suite_label: name``) or the report file's stem (``suite_label: file``, for pytest, which
names every suite "pytest" unless ``-o junit_suite_name=...`` is given). At most
``max_suites`` labels are exported (suites with failures first, then the biggest); the rest
add up under ``other_suite``, so a Surefire project with a thousand test classes stays bounded.

Exported: ``implmon_quality_tests{suite,result}`` for result passed, failed, error, skipped
(zeros included, so an alert on failures resolves), ``implmon_quality_suite_duration_seconds``;
with ``per_test: true``, ``implmon_quality_test_failed`` and
``implmon_quality_test_duration_seconds`` per test, at most ``max_tests`` of them: failing
tests first, then the slowest, because those are the ones worth a series.

>>> report, ts = parse_junit(b'<testsuite name="s" timestamp="2024-05-01T10:00:00Z">'
...     b'<testcase name="a" time="0.5"/><testcase name="b"><failure/></testcase></testsuite>')
>>> report.suites[0].counts["passed"], report.suites[0].counts["failed"], ts
(1, 1, 1714557600.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from xml.etree.ElementTree import Element

from pydantic import Field

from implmon.components.collectors.reports import (
    DEFAULT_MAX_FILE_BYTES,
    ParsedReport,
    ReportCollector,
    ReportError,
    ReportSettings,
    load_xml,
    local_name,
    number,
    parse_timestamp,
    read_report,
)
from implmon.metrics import Sample

__all__ = [
    "RESULTS",
    "JUnitCollector",
    "JUnitReport",
    "SuiteResult",
    "TestCaseResult",
    "parse_junit",
    "parse_junit_file",
]

RESULTS = ("passed", "failed", "error", "skipped")


@dataclass(frozen=True, slots=True)
class TestCaseResult:
    """One test case: its name (``classname.name``), result and duration in seconds."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    result: str
    duration: float


@dataclass(frozen=True, slots=True)
class SuiteResult:
    """One suite: result counts, duration in seconds and its cases."""

    name: str
    counts: dict[str, int]
    duration: float
    cases: tuple[TestCaseResult, ...] = ()


@dataclass(frozen=True, slots=True)
class JUnitReport:
    """The suites of one JUnit XML file."""

    suites: tuple[SuiteResult, ...] = field(default_factory=tuple)

    def totals(self) -> dict[str, int]:
        """Counts by result over every suite."""
        return {r: sum(s.counts[r] for s in self.suites) for r in RESULTS}


def _case_result(case: Element) -> str:
    children = {local_name(child.tag) for child in case}
    if "failure" in children:
        return "failed"
    if "error" in children:
        return "error"
    if "skipped" in children:
        return "skipped"
    return "passed"


def _case_name(case: Element) -> str:
    name = case.get("name", "")
    classname = case.get("classname", "")
    if classname and not name.startswith(classname):
        return f"{classname}.{name}" if name else classname
    return name or classname or "unnamed"


def _suite(element: Element, where: str) -> SuiteResult | None:
    children = [c for c in element if local_name(c.tag) in ("testcase", "testsuite")]
    cases = [c for c in children if local_name(c.tag) == "testcase"]
    name = element.get("name") or "unnamed"
    if not cases:
        if any(local_name(c.tag) == "testsuite" for c in children):
            return None  # a wrapper: its inner suites count
        tests = int(number(element.get("tests"), f"{where}.tests", default=0))
        failed = int(number(element.get("failures"), f"{where}.failures", default=0))
        errors = int(number(element.get("errors"), f"{where}.errors", default=0))
        skipped = int(number(element.get("skipped"), f"{where}.skipped", default=0))
        if min(tests, failed, errors, skipped) < 0 or failed + errors + skipped > tests:
            raise ReportError(f"{where}: inconsistent counts in an empty suite")
        counts = {
            "passed": tests - failed - errors - skipped,
            "failed": failed,
            "error": errors,
            "skipped": skipped,
        }
        duration = number(element.get("time"), f"{where}.time", default=0.0)
        return SuiteResult(name, counts, duration)
    results = tuple(
        TestCaseResult(
            _case_name(case),
            _case_result(case),
            number((case.get("time") or "0").replace(",", ""), f"{where}.testcase.time"),
        )
        for case in cases
    )
    counts = {r: sum(1 for c in results if c.result == r) for r in RESULTS}
    suite_time = element.get("time")
    duration = (
        number(suite_time.replace(",", ""), f"{where}.time")
        if suite_time
        else sum(c.duration for c in results)
    )
    return SuiteResult(name, counts, duration, results)


def parse_junit(data: bytes) -> tuple[JUnitReport, float | None]:
    """Parse JUnit XML bytes: the report and its own timestamp (None when it has none).

    Raises :class:`ReportError` for XML that is malformed, hostile or not a JUnit report.
    """
    root = load_xml(data, ("testsuites", "testsuite"))
    suites: list[SuiteResult] = []
    stamps: list[float] = []
    elements = [root] if local_name(root.tag) == "testsuite" else []
    elements += [e for e in root.iter() if e is not root and local_name(e.tag) == "testsuite"]
    for index, element in enumerate(elements):
        suite = _suite(element, f"testsuite[{index}]")
        if suite is not None:
            suites.append(suite)
        stamp = parse_timestamp(element.get("timestamp"), naive_tz=None)
        if stamp is not None:
            stamps.append(stamp)
    root_stamp = parse_timestamp(root.get("timestamp"), naive_tz=None)
    if root_stamp is not None:
        stamps.append(root_stamp)
    return JUnitReport(tuple(suites)), (max(stamps) if stamps else None)


def parse_junit_file(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> JUnitReport:
    """Parse one JUnit XML file (for the validator and scripts); ReportError if unusable."""
    report, _ = parse_junit(read_report(path, max_bytes))
    return report


class JUnitCollector(ReportCollector[JUnitReport]):
    """Test results from JUnit XML files.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "unit.xml").write_text('<testsuite name="unit"><testcase name="t"/></testsuite>')
    >>> c = JUnitCollector(JUnitCollector.Settings(kind="junit", name="tests",
    ...                                             paths=["*.xml"]), base_dir=d)
    >>> [s.value for s in c.collect_now() if s.metric == "implmon_quality_tests"]
    [1.0, 0.0, 0.0, 0.0]
    """

    kind = "junit"
    what = "JUnit report"

    class Settings(ReportSettings):
        suite_label: Literal["name", "file"] = "name"
        """Label suites by their ``name`` attribute or by the report file's stem."""
        max_suites: int = Field(default=100, ge=1, le=10000)
        """At most this many suite labels: suites with failures first, then the biggest; the
        rest add up under ``other_suite`` (Surefire writes one suite per test class)."""
        other_suite: str = "other"
        per_test: bool = False
        """Also export one series per test (failing first, then slowest), at most max_tests."""
        max_tests: int = Field(default=50, ge=1, le=1000)

    def parse(self, path: Path, data: bytes) -> tuple[JUnitReport, float | None]:
        return parse_junit(data)

    def samples(self, reports: Sequence[ParsedReport[JUnitReport]]) -> list[Sample]:
        counts: dict[str, dict[str, int]] = {}
        durations: dict[str, float] = {}
        cases: list[tuple[str, TestCaseResult]] = []
        for report in reports:
            for suite in report.content.suites:
                label = report.path.stem if self.settings.suite_label == "file" else suite.name
                total = counts.setdefault(label, dict.fromkeys(RESULTS, 0))
                for result in RESULTS:
                    total[result] += suite.counts[result]
                durations[label] = durations.get(label, 0.0) + suite.duration
                cases.extend((label, case) for case in suite.cases)
        counts, durations = self._cap_suites(counts, durations)
        out: list[Sample] = []
        for label in sorted(counts):
            for result in RESULTS:
                out.append(
                    Sample(
                        "implmon_quality_tests",
                        {"suite": label, "result": result},
                        float(counts[label][result]),
                    )
                )
            out.append(
                Sample("implmon_quality_suite_duration_seconds", {"suite": label}, durations[label])
            )
        if self.settings.per_test:
            out.extend(self._per_test(cases))
        return out

    def _cap_suites(
        self, counts: dict[str, dict[str, int]], durations: dict[str, float]
    ) -> tuple[dict[str, dict[str, int]], dict[str, float]]:
        limit = self.settings.max_suites
        if len(counts) <= limit:
            return counts, durations
        ranked = sorted(
            counts,
            key=lambda s: (
                -(counts[s]["failed"] + counts[s]["error"]),
                -sum(counts[s].values()),
                s,
            ),
        )
        kept = ranked[: limit - 1]  # the last label is the "other" bucket
        other = self.settings.other_suite
        capped = {s: counts[s] for s in kept}
        capped_durations = {s: durations[s] for s in kept}
        rest = capped.setdefault(other, dict.fromkeys(RESULTS, 0))
        if other in kept:  # a real suite called "other": add to a copy, not to its counts
            rest = capped[other] = dict(rest)
        for suite in ranked[limit - 1 :]:
            for result in RESULTS:
                rest[result] += counts[suite][result]
            capped_durations[other] = capped_durations.get(other, 0.0) + durations[suite]
        return capped, capped_durations

    def _per_test(self, cases: list[tuple[str, TestCaseResult]]) -> list[Sample]:
        def failing(case: TestCaseResult) -> bool:
            return case.result in ("failed", "error")

        ranked = sorted(cases, key=lambda sc: (not failing(sc[1]), -sc[1].duration))
        chosen: dict[tuple[str, str], TestCaseResult] = {}
        for suite, case in ranked:
            if len(chosen) >= self.settings.max_tests:
                break
            chosen.setdefault((suite, case.name), case)  # a name repeated: keep the first
        out: list[Sample] = []
        for (suite, name), case in sorted(chosen.items()):
            labels = {"suite": suite, "test": name}
            out.append(Sample("implmon_quality_test_failed", labels, float(failing(case))))
            out.append(Sample("implmon_quality_test_duration_seconds", labels, case.duration))
        return out
