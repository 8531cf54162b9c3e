"""What every report collector (junit, coverage, sarif, benchmark) shares.

A report collector watches files that other tools write (test runners, coverage, linters,
benchmarks), found through glob ``paths`` relative to the config file's directory. Each cycle it:

1. resolves the globs (sorted, so the order of samples is stable);
2. re-parses a file only when its ``(mtime, size)`` changed since the last cycle, in a worker
   thread so the event loop never waits on a big file;
3. refuses files bigger than ``max_file_bytes`` before reading them, and parses XML with
   :mod:`defusedxml` (no entity declarations: no expansion bombs, no external entities);
4. merges the parsed reports into samples (the subclass's :meth:`ReportCollector.samples`) and
   adds the source figures below.

A file that cannot be read or parsed (empty, truncated, malformed, hostile, too big, the wrong
root element) is a *data* problem, not a collector failure: the collector increments
``implmon_quality_report_errors_total{source}``, logs one line naming the file and the problem
(once per version of the file, not every cycle), keeps serving the values of the last good
version of that file and sets ``implmon_quality_report_stale{source}`` to 1. It still returns
its samples, so ``implmon_collector_success`` stays about the collector itself, and a broken
report never hides the good ones next to it. A file that disappears takes its values with it.

Source figures, ``source`` being the collector's name (bounded, unlike file paths):

- ``implmon_quality_report_timestamp_seconds``: the newest report's own timestamp (the tool's
  timestamp in the file when it has one, else the file's modification time);
- ``implmon_quality_report_age_seconds``: now minus that timestamp, the freshness gauge;
- ``implmon_quality_report_files``: files the globs matched;
- ``implmon_quality_report_stale``: 1 while any matched file's current version is unreadable;
- ``implmon_quality_report_errors_total``: unreadable file versions seen since start.

>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> _ = (d / "r.xml").write_text("<testsuite/>")
>>> [p.name for p in resolve_paths(["*.xml"], d)]
['r.xml']
>>> parse_timestamp("2024-05-01T10:00:00Z")
1714557600.0
"""

from __future__ import annotations

import asyncio
import glob
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree
from pydantic import Field

from implmon.component import Collector, ComponentSettings
from implmon.metrics import Sample

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "ParsedReport",
    "ReportCollector",
    "ReportError",
    "ReportSettings",
    "load_json",
    "load_xml",
    "parse_timestamp",
    "read_report",
    "resolve_paths",
]

log = logging.getLogger("implmon.collectors.reports")

# Big enough for the coverage XML of a large monorepo; small enough that a runaway file
# (a log written to the wrong path, a hostile upload) is refused before it is read.
DEFAULT_MAX_FILE_BYTES = 32 * 1024 * 1024

T = TypeVar("T")


class ReportError(Exception):
    """A report file that cannot be used; the message says what is wrong with it."""


class ReportSettings(ComponentSettings):
    """Settings every report collector has."""

    paths: list[str] = Field(min_length=1)
    """Glob patterns (``**`` allowed); relative ones are relative to the config file."""
    max_file_bytes: int = Field(default=DEFAULT_MAX_FILE_BYTES, gt=0)
    """Files bigger than this are refused unread (counted as an error)."""


@dataclass(frozen=True, slots=True)
class ParsedReport(Generic[T]):
    """One parsed file: what the parser made of it and the report's own timestamp."""

    path: Path
    content: T
    timestamp: float


@dataclass(slots=True)
class _FileState(Generic[T]):
    version: tuple[int, int]  # (mtime_ns, size) of the version last looked at
    good: ParsedReport[T] | None  # the last version that parsed
    broken: bool  # the version last looked at did not parse


def resolve_paths(patterns: Iterable[str], base_dir: Path) -> list[Path]:
    """Files matching the glob ``patterns``, relative ones resolved against ``base_dir``.

    Sorted and de-duplicated; directories are skipped.
    """
    found: set[Path] = set()
    for pattern in patterns:
        full = Path(pattern).expanduser()
        if not full.is_absolute():
            full = base_dir / full
        for match in glob.glob(str(full), recursive=True):
            candidate = Path(match)
            if candidate.is_file():
                found.add(candidate)
    return sorted(found)


def parse_timestamp(text: str | None, *, naive_tz: tzinfo | None = UTC) -> float | None:
    """Unix seconds from an ISO 8601 timestamp as report writers emit them, None if unusable.

    ``naive_tz`` is the zone a timestamp without an offset is in (None: the local zone, which is
    what pytest, Surefire and jest-junit use when they omit it).
    """
    if not text:
        return None
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=naive_tz) if naive_tz else moment.astimezone()
    return moment.timestamp()


def read_report(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """The bytes of a report file; ReportError if it is empty or bigger than ``max_bytes``.

    The size is checked before reading, and at most ``max_bytes + 1`` bytes are read, so a file
    that grows while it is read cannot exhaust memory either.
    """
    size = path.stat().st_size
    if size > max_bytes:
        raise ReportError(
            f"file is {size} bytes, above the limit of {max_bytes} bytes (max_file_bytes)"
        )
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ReportError(f"file grew above the limit of {max_bytes} bytes while being read")
    if not data.strip():
        raise ReportError("file is empty")
    return data


def load_xml(data: bytes, roots: Sequence[str]) -> Element:
    """Parse XML safely and check its root element is one of ``roots``.

    Entity declarations are refused before anything is expanded or fetched, which stops
    entity-expansion bombs and external (and parameter) entities. A plain ``<!DOCTYPE>`` is
    allowed, because real writers emit one (gcovr and Istanbul name Cobertura's DTD), and it is
    never fetched.
    """
    try:
        root = defusedxml.ElementTree.fromstring(data, forbid_entities=True, forbid_external=True)
    except defusedxml.EntitiesForbidden as err:
        raise ReportError(
            f"XML declares entity {err.name!r}, refused (no entity expansion, no external entities)"
        ) from None
    except defusedxml.DefusedXmlException as err:
        raise ReportError(f"hostile XML refused: {err}") from None
    except ParseError as err:
        raise ReportError(f"not well-formed XML: {err}") from None
    tag = local_name(root.tag)
    if tag not in roots:
        raise ReportError(f"root element is <{tag}>, expected <{'> or <'.join(roots)}>")
    return root


def load_json(data: bytes) -> Any:
    """Parse JSON; ReportError on malformed, truncated or absurdly nested input."""
    try:
        return json.loads(data)
    except UnicodeDecodeError as err:
        raise ReportError(f"not UTF-8 text: {err}") from None
    except json.JSONDecodeError as err:
        raise ReportError(
            f"not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    except RecursionError:
        raise ReportError("JSON nested too deeply") from None


def local_name(tag: str) -> str:
    """An element name without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]


def number(value: object, what: str, *, default: float | None = None) -> float:
    """A finite float from a report attribute; ReportError naming ``what`` otherwise."""
    if value is None or value == "":
        if default is None:
            raise ReportError(f"{what} is missing")
        return default
    if isinstance(value, bool):
        raise ReportError(f"{what} is not a number: {value!r}")
    try:
        result = float(value)  # type: ignore[arg-type]  # checked by the except below
    except (TypeError, ValueError):
        raise ReportError(f"{what} is not a number: {str(value)[:40]!r}") from None
    if not math.isfinite(result):
        raise ReportError(f"{what} is not finite: {value!r}")
    return result


class ReportCollector(Collector, Generic[T]):
    """Base of the report collectors: file discovery, change detection, error bookkeeping.

    A subclass sets ``Settings`` (extending :class:`ReportSettings`), implements :meth:`parse`
    (bytes to content plus the report's own timestamp, raising :class:`ReportError` for a bad
    file) and :meth:`samples` (all good reports to samples).
    """

    Settings: ClassVar[type[ComponentSettings]] = ReportSettings
    # Shown in the log line: "junit report", "coverage report"...
    what: ClassVar[str] = "report"

    def __init__(self, settings: Any, *, base_dir: Path | None = None) -> None:
        super().__init__(settings, base_dir=base_dir)
        self._files: dict[Path, _FileState[T]] = {}
        self._errors = 0
        self._clock: Callable[[], float] = time.time
        # A run the monitor gave up on (deadline) goes on in its thread; the next run waits
        # for it rather than racing it over the per-file state.
        self._lock = threading.Lock()

    def parse(self, path: Path, data: bytes) -> tuple[T, float | None]:
        """Content of one report and its own timestamp (None: use the file's mtime)."""
        raise NotImplementedError

    def samples(self, reports: Sequence[ParsedReport[T]]) -> list[Sample]:
        """Samples from every good report (one per matched file, sorted by path)."""
        raise NotImplementedError

    @property
    def errors(self) -> int:
        """Unreadable file versions seen since the collector started."""
        return self._errors

    async def collect(self) -> Sequence[Sample]:
        return await asyncio.to_thread(self.collect_now)

    def collect_now(self) -> list[Sample]:
        """One synchronous collection (what :meth:`collect` runs in a worker thread)."""
        with self._lock:
            return self._collect_locked()

    def _collect_locked(self) -> list[Sample]:
        paths = resolve_paths(self.settings.paths, self.base_dir)
        states: dict[Path, _FileState[T]] = {}
        for path in paths:
            state = self._refresh(path)
            if state is not None:
                states[path] = state
        self._files = states
        good = [s.good for s in states.values() if s.good is not None]
        source = {"source": self.name}
        out = self.samples(good)
        out.append(Sample("implmon_quality_report_files", source, float(len(paths))))
        out.append(
            Sample(
                "implmon_quality_report_stale",
                source,
                1.0 if any(s.broken for s in states.values()) else 0.0,
            )
        )
        out.append(Sample("implmon_quality_report_errors_total", source, float(self._errors)))
        if good:
            newest = max(r.timestamp for r in good)
            out.append(Sample("implmon_quality_report_timestamp_seconds", source, newest))
            out.append(
                Sample(
                    "implmon_quality_report_age_seconds", source, max(0.0, self._clock() - newest)
                )
            )
        return out

    def _refresh(self, path: Path) -> _FileState[T] | None:
        previous = self._files.get(path)
        try:
            stat = path.stat()
        except OSError:  # vanished between the glob and the stat: gone, like its values
            return None
        version = (stat.st_mtime_ns, stat.st_size)
        if previous is not None and previous.version == version:
            return previous
        good = previous.good if previous is not None else None
        try:
            data = read_report(path, self.settings.max_file_bytes)
            content, timestamp = self.parse(path, data)
        except ReportError as err:
            return self._broken(path, version, good, str(err))
        except OSError as err:
            return self._broken(path, version, good, f"cannot read: {err.strerror or err}")
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
            # A parser bug or a shape no check foresaw must not stop the other files either.
            return self._broken(path, version, good, f"unexpected content: {err!r}")
        when = timestamp if timestamp is not None else stat.st_mtime
        return _FileState(version, ParsedReport(path, content, when), broken=False)

    def _broken(
        self, path: Path, version: tuple[int, int], good: ParsedReport[T] | None, problem: str
    ) -> _FileState[T]:
        self._errors += 1
        kept = "keeping its last good values, marked stale" if good else "no earlier values"
        log.warning(
            "collector %s: cannot use %s %s: %s; %s", self.name, self.what, path, problem, kept
        )
        return _FileState(version, good, broken=True)
