"""Broken and hostile report files: each gives the error metric and one clear log line naming
the file and the problem, never a crash, never a hang, never a leaked file."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import quality_reports as qr
from implmon.components.collectors.benchmark import BenchmarkCollector
from implmon.components.collectors.coverage import CoverageCollector
from implmon.components.collectors.junit import JUnitCollector
from implmon.components.collectors.reports import DEFAULT_MAX_FILE_BYTES, ReportCollector
from implmon.components.collectors.sarif import SarifCollector

SECRET = "TOPSECRET-do-not-leak"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ROOT name="&lol9;"/>
"""


def xxe(root: str, secret: Path) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>\n'
        f'<{root} name="&x;"><x>&x;</x></{root}>'
    ).encode()


def parameter_xxe(root: str, secret: Path) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY % p SYSTEM "file://{secret}"> %p;]>'
        f"\n<{root}/>"
    ).encode()


Make = Callable[[Path], bytes]
XML_CASES: dict[str, tuple[Make, str]] = {
    "billion-laughs": (
        lambda s: BILLION_LAUGHS.replace(b"ROOT", b"testsuite"),
        "XML declares entity 'lol'",
    ),
    "external-entity": (lambda s: xxe("{root}", s), "XML declares entity 'x'"),
    "parameter-entity": (lambda s: parameter_xxe("{root}", s), "XML declares entity 'p'"),
    "empty": (lambda s: b"", "file is empty"),
    "whitespace-only": (lambda s: b"  \n\t\n", "file is empty"),
    "truncated": (lambda s: b'<?xml version="1.0"?><{root}><testcase name="a"', "not well-formed"),
    "wrong-root": (
        lambda s: b"<html><body>502 Bad Gateway</body></html>",
        "root element is <html>",
    ),
    "binary": (lambda s: bytes(range(256)) * 4, "not well-formed"),
    "bad-number": (
        lambda s: (
            b'<{root} lines-valid="x" lines-covered="1"><testcase name="a" time="soon"/></{root}>'
        ),
        "not a number",
    ),
}
JSON_CASES: dict[str, tuple[Make, str]] = {
    "empty": (lambda s: b"", "file is empty"),
    "truncated": (lambda s: b'{"version": "2.1.0", "runs": [{"tool": ', "not valid JSON"),
    "wrong-shape": (lambda s: b'["not", "a", "report"]', ""),
    "deeply-nested": (lambda s: b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    "binary": (lambda s: bytes(range(256)) * 4, ""),
    "xml-instead": (lambda s: b'<?xml version="1.0"?><testsuite/>', "not valid JSON"),
}

COLLECTORS: dict[str, tuple[type[ReportCollector[object]], str, str]] = {
    "junit": (JUnitCollector, "testsuite", "report.xml"),  # type: ignore[dict-item]
    "coverage": (CoverageCollector, "coverage", "coverage.xml"),  # type: ignore[dict-item]
    "sarif": (SarifCollector, "", "report.sarif"),  # type: ignore[dict-item]
    "benchmark": (BenchmarkCollector, "", "bench.json"),  # type: ignore[dict-item]
}

CASES = [
    (kind, name, make, message)
    for kind, cases in (
        ("junit", XML_CASES),
        ("coverage", XML_CASES),
        ("sarif", JSON_CASES),
        ("benchmark", JSON_CASES),
    )
    for name, (make, message) in cases.items()
]


def make_collector(kind: str, base: Path, **settings: object) -> ReportCollector[object]:
    cls, _, filename = COLLECTORS[kind]
    return cls(
        cls.Settings(kind=kind, name="src", paths=[filename], **settings),  # type: ignore[call-arg]
        base_dir=base,
    )


def assert_one_error(
    samples: list[object], records: list[logging.LogRecord], path: Path, message: str
) -> None:
    lines = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, lines
    assert str(path) in lines[0]
    assert message in lines[0], lines[0]
    assert SECRET not in lines[0]
    assert qr.value(samples, "implmon_quality_report_errors_total", source="src") == 1  # type: ignore[arg-type]
    assert qr.value(samples, "implmon_quality_report_stale", source="src") == 1  # type: ignore[arg-type]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("kind", "case", "make", "message"), CASES, ids=[f"{k}-{n}" for k, n, _, _ in CASES]
)
def test_broken_or_hostile_file(
    kind: str, case: str, make: Make, message: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    root = COLLECTORS[kind][1]
    path = tmp_path / COLLECTORS[kind][2]
    path.write_bytes(make(secret).replace(b"{root}", root.encode()))
    collector = make_collector(kind, tmp_path)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="implmon"):
        samples = collector.collect_now()
    assert time.monotonic() - started < 10
    assert_one_error(samples, caplog.records, path, message)  # type: ignore[arg-type]
    assert all(SECRET not in str(s) for s in samples)
    # Data families are simply absent: no partial figures from a bad file.
    assert {s.metric for s in samples} <= {
        "implmon_quality_report_files",
        "implmon_quality_report_stale",
        "implmon_quality_report_errors_total",
    }


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", list(COLLECTORS))
def test_huge_file_is_refused_unread(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 50 MB file (real bytes on disk, written at test time) above the default limit."""
    path = tmp_path / COLLECTORS[kind][2]
    chunk = b"<!-- " + b"x" * (1024 * 1024 - 10) + b" -->\n"
    with path.open("wb") as handle:
        for _ in range(50):
            handle.write(chunk)
    assert path.stat().st_size > DEFAULT_MAX_FILE_BYTES
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="implmon"):
        samples = make_collector(kind, tmp_path).collect_now()
    assert time.monotonic() - started < 2  # refused from its size, not read
    assert_one_error(samples, caplog.records, path, "above the limit")  # type: ignore[arg-type]


def test_max_file_bytes_is_a_setting(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "report.xml"
    path.write_text('<testsuite name="s"><testcase name="a"/></testsuite>')
    with caplog.at_level(logging.WARNING, logger="implmon"):
        samples = make_collector("junit", tmp_path, max_file_bytes=16).collect_now()
    assert_one_error(samples, caplog.records, path, "above the limit of 16 bytes")  # type: ignore[arg-type]


def test_a_bad_file_does_not_hide_its_good_neighbours(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "good.xml").write_text('<testsuite name="good"><testcase name="a"/></testsuite>')
    (tmp_path / "bad.xml").write_bytes(BILLION_LAUGHS.replace(b"ROOT", b"testsuite"))
    collector = JUnitCollector(
        JUnitCollector.Settings(kind="junit", name="src", paths=["*.xml"]), base_dir=tmp_path
    )
    with caplog.at_level(logging.WARNING, logger="implmon"):
        samples = collector.collect_now()
    assert_one_error(samples, caplog.records, tmp_path / "bad.xml", "declares entity")  # type: ignore[arg-type]
    assert qr.value(samples, "implmon_quality_tests", suite="good", result="passed") == 1
    assert qr.value(samples, "implmon_quality_report_files", source="src") == 2


async def test_collect_runs_off_the_event_loop(tmp_path: Path) -> None:
    """collect() is what the monitor awaits; it parses in a worker thread and never raises."""
    (tmp_path / "report.xml").write_bytes(b"")
    samples = await make_collector("junit", tmp_path).collect()
    assert qr.value(list(samples), "implmon_quality_report_errors_total", source="src") == 1
