"""Prometheus text and OpenMetrics exposition of a snapshot, rendered once per cycle.

Scrapes must not pay for rendering: the reporter renders every cycle's samples once, in a
worker thread, into OpenMetrics, plain and gzipped (the text format follows on the cycle's first
request for it), and the server hands out the variant the scraper asked for. A
:class:`Renderer` keeps each family's series and line formats across cycles: when a cycle has
the same series as the last one, as it does in steady state, each slice of 2048 series renders
as one C-level ``format % values`` call, and a series costs about a float formatting.

>>> from implmon.metrics import Sample
>>> r = Renderer()
>>> text = r.render([Sample("implmon_host_cpus", {}, 2.0)], openmetrics=True)
>>> print(text.decode())
# HELP implmon_host_cpus Logical CPUs of the host (last cycle).
# TYPE implmon_host_cpus gauge
implmon_host_cpus 2.0
# EOF
<BLANKLINE>
"""

from __future__ import annotations

import gzip
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from itertools import groupby
from operator import attrgetter, itemgetter
from typing import Any

from implmon.gcpolicy import release_piecewise, sole_owner
from implmon.metrics import CATALOGUE, HistogramValue, MetricSpec, MetricType, Sample

__all__ = [
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_TEXT",
    "Exposition",
    "Renderer",
    "choose_variant",
]

CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# Prometheus scrapes with gzip by default: a low level keeps the per-cycle cost small (level 9
# costs up to 69 ms at 10k series here, level 1 about 2 ms) for a few percent more bytes.
GZIP_LEVEL = 1
# Series rendered between two joins (see render_grouped).
_CHUNK = 2048


class Exposition:
    """One cycle's exposition in every variant a scraper can ask for.

    OpenMetrics (what Prometheus asks for first), plain and gzipped, is rendered when the cycle
    ends. The classic text format shares its sample lines (every family's but histograms',
    whose OpenMetrics lines carry exemplars): it is kept as parts, headers plus slices of the
    OpenMetrics bytes, and joined and gzipped only when a scraper first asks for it in this
    cycle (:meth:`render_text`, to be run off the event loop). An exposition holds only bytes:
    dropping it frees a few buffers, not one object per series.
    """

    __slots__ = (
        "_text",
        "_text_gzip",
        "_text_lock",
        "_text_parts",
        "openmetrics",
        "openmetrics_gzip",
    )

    def __init__(self, openmetrics: bytes, text_parts: list[bytes | memoryview]) -> None:
        self.openmetrics = openmetrics
        self.openmetrics_gzip = gzip.compress(openmetrics, GZIP_LEVEL, mtime=0)
        self._text_parts = text_parts
        self._text: bytes | None = None
        self._text_gzip = b""
        self._text_lock = threading.Lock()

    @classmethod
    def build(cls, renderer: Renderer, samples: Iterable[Sample]) -> Exposition:
        """Render ``samples`` (blocking: call it from a worker thread)."""
        with renderer.lock:
            grouped = renderer.group(samples)
            openmetrics, text_parts = renderer.render_both(grouped)
            renderer.prune(grouped)
        # This cycle's values die here, in this worker thread, a slice at a time: dropped at
        # once, 100k of them would be freed in one C call with the GIL held for milliseconds.
        # (The keys stay: the renderer keeps them for the next cycle.)
        for _, values in grouped.values():
            release_piecewise(values)
        return cls(openmetrics, text_parts)

    @property
    def text_ready(self) -> bool:
        return self._text is not None

    def render_text(self) -> None:
        """Join and gzip the text format once (blocking: call it from a worker thread)."""
        with self._text_lock:
            if self._text is None:
                text = b"".join(self._text_parts)
                self._text_gzip = gzip.compress(text, GZIP_LEVEL, mtime=0)
                self._text = text

    @property
    def text(self) -> bytes:
        self.render_text()
        assert self._text is not None
        return self._text

    @property
    def text_gzip(self) -> bytes:
        self.render_text()
        return self._text_gzip

    def variant(self, openmetrics: bool, use_gzip: bool) -> tuple[bytes, str]:
        if openmetrics:
            return (
                self.openmetrics_gzip if use_gzip else self.openmetrics,
                CONTENT_TYPE_OPENMETRICS,
            )
        return (self.text_gzip if use_gzip else self.text, CONTENT_TYPE_TEXT)


def choose_variant(accept: str, accept_encoding: str) -> tuple[bool, bool]:
    """(openmetrics, gzip) for a request's Accept and Accept-Encoding headers."""
    openmetrics = "application/openmetrics-text" in accept
    use_gzip = any(
        part.split(";")[0].strip() == "gzip" and "q=0" not in part.replace(" ", "")
        for part in accept_encoding.split(",")
    )
    return openmetrics, use_gzip


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escape_help(text: str, openmetrics: bool) -> str:
    text = text.replace("\\", r"\\").replace("\n", r"\n")
    return text.replace('"', r"\"") if openmetrics else text


def _format_bound(bound: float) -> str:
    """A histogram ``le`` value as Prometheus clients write it (``0.5``, ``1.0``, ``+Inf``)."""
    return "+Inf" if bound == math.inf else repr(float(bound))


def _format_value(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    return repr(float(value))


# One cycle's series of one family, in order and without duplicates: keys and values.
Series = tuple[list[Any], list["float | HistogramValue"]]
_METRIC = attrgetter("metric")
_LABELS = attrgetter("labels")
_VALUE = attrgetter("value")
# A slice whose families change more often than every this many samples is bucketed sample
# by sample (an emitter interleaving its families) rather than run by run.
_MIN_RUN = 16


class _FamilyCache:
    """Per family: the HELP/TYPE headers, each series' line format, and the last cycle's
    series keys with the formats of its render slices.

    A collector emits the same series in the same order cycle after cycle. When this cycle's
    keys equal the last one's (one C-level list comparison per slice), a slice renders as one
    ``format % values`` call: no per-series lookup, and no per-line string.
    """

    __slots__ = ("formats", "headers", "key", "keys", "lines", "spec")

    def __init__(self, spec: MetricSpec) -> None:
        self.spec = spec
        names = spec.labels
        self.key: Callable[[Mapping[str, str]], Any]
        if not names:
            self.key = lambda labels: ()
        else:
            # itemgetter runs in C; with one name it returns the value itself, which is a fine key.
            self.key = itemgetter(*names)
        # Series key -> its line as a %-format: 'name{labels} %r\n' (a % in a label doubled).
        self.lines: dict[Any, str] = {}
        # The keys last rendered, and per slice of _CHUNK of them, the slice's format.
        self.keys: list[Any] = []
        self.formats: list[str] = []
        headers = []
        for om in (False, True):
            family = spec.family_name if om else spec.name
            headers.append(
                f"# HELP {family} {_escape_help(spec.help, om)}\n"
                f"# TYPE {family} {spec.type.value}\n".encode()
            )
        # Indexed by "is OpenMetrics": (text header, OpenMetrics header).
        self.headers: tuple[bytes, bytes] = (headers[0], headers[1])

    def labels_text(self, key: Any) -> str:
        names = self.spec.labels
        values = key if isinstance(key, tuple) else (key,)
        if not names:
            return ""
        return ",".join(f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True))

    def line(self, key: Any) -> str:
        labels = self.labels_text(key).replace("%", "%%")
        name = self.spec.name
        return f"{name}{{{labels}}} %r\n" if labels else f"{name} %r\n"

    def settle(self, keys: list[Any], values: list[Any]) -> Series:
        """This cycle's series without duplicates (a later sample of a series wins, at the
        place of its first): the cached key list itself when the keys are the last cycle's.
        Compared and deduplicated a slice at a time: a C call over 100k items holds the GIL
        for milliseconds."""
        cached = self.keys
        if len(keys) == len(cached) and all(
            keys[i : i + _CHUNK] == cached[i : i + _CHUNK] for i in range(0, len(keys), _CHUNK)
        ):
            return cached, values
        unique: dict[Any, Any] = {}
        for i in range(0, len(keys), _CHUNK):
            unique.update(zip(keys[i : i + _CHUNK], values[i : i + _CHUNK], strict=True))
        if len(unique) == len(keys):
            return keys, values
        return list(unique), list(unique.values())

    def render(self, keys: list[Any], values: list[Any]) -> list[bytes]:
        """``name{labels} value`` lines of this family's plain series, a slice at a time.

        The hot loop of every cycle. With the last cycle's keys, each slice is one
        ``format % tuple(values)`` in C; otherwise the slice formats are rebuilt from the
        per-series line formats (made for new series) and kept for the next cycle. ``%r``
        writes ±Inf and NaN as ``inf``/``nan``, fixed up afterwards on the rare slice that has
        them (a label value cannot end a line: newlines in it are escaped).
        """
        if keys is not self.keys:
            lines = self.lines
            line = lines.__getitem__
            formats = []
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i : i + _CHUNK]
                try:
                    formats.append("".join(map(line, chunk)))
                except KeyError:
                    for key in chunk:
                        if key not in lines:
                            lines[key] = self.line(key)
                    formats.append("".join(map(line, chunk)))
            old, self.keys, self.formats = self.keys, keys, formats
            # The replaced keys (100k tuples at large scale) die a slice at a time.
            if sole_owner(old, expected=1):
                release_piecewise(old)
        chunks: list[bytes] = []
        for i, fmt in enumerate(self.formats):
            text = fmt % tuple(values[i * _CHUNK : (i + 1) * _CHUNK])
            if "inf\n" in text or "nan\n" in text:
                text = text.replace(" inf\n", " +Inf\n").replace(" -inf\n", " -Inf\n")
                text = text.replace(" nan\n", " NaN\n")
            chunks.append(text.encode())
        return chunks

    def forget(self, live: list[Any]) -> None:
        """Drop the line formats of series not in ``live`` (called when there are more)."""
        if len(self.lines) > len(live):
            alive = set(live)
            self.lines = {k: v for k, v in self.lines.items() if k in alive}


class Renderer:
    """Renders samples to exposition bytes, caching series line formats across cycles.

    The cache holds one entry per series ever seen; :meth:`prune` drops those absent from the
    last render so that churning label values do not grow it without bound.
    """

    def __init__(self, catalogue: Mapping[str, MetricSpec] | None = None) -> None:
        self._catalogue = CATALOGUE if catalogue is None else catalogue
        self._families: dict[str, _FamilyCache] = {}
        # Held while grouping, rendering or pruning: the cache is not safe to share between
        # worker threads.
        self.lock = threading.Lock()

    def _family(self, name: str) -> _FamilyCache:
        cache = self._families.get(name)
        if cache is None:
            cache = self._families[name] = _FamilyCache(self._catalogue[name])
        return cache

    def group(self, samples: Iterable[Sample]) -> dict[str, Series]:
        """Samples by family, each family's series in order without duplicates.

        Collectors emit a family's samples together: a slice of samples of one family (or of
        a few long runs) is split with C-level passes, keys made by ``map``; only a slice that
        interleaves families is bucketed sample by sample.
        """
        samples = samples if isinstance(samples, list) else list(samples)
        found: dict[str, tuple[list[Any], list[Any]]] = {}
        for start in range(0, len(samples), _CHUNK):
            chunk = samples[start : start + _CHUNK]
            metrics = list(map(_METRIC, chunk))
            first = metrics[0]
            if metrics.count(first) == len(metrics):
                runs: list[tuple[str, list[Sample]]] = [(first, chunk)]
            else:
                runs, at = [], 0
                for metric, same in groupby(metrics):
                    length = len(list(same))
                    runs.append((metric, chunk[at : at + length]))
                    at += length
                if len(runs) * _MIN_RUN > len(chunk):
                    for sample in chunk:
                        keys, values = found.get(sample.metric) or found.setdefault(
                            sample.metric, ([], [])
                        )
                        keys.append(self._family(sample.metric).key(sample.labels))
                        values.append(sample.value)
                    continue
            for metric, run in runs:
                keys, values = found.get(metric) or found.setdefault(metric, ([], []))
                keys.extend(map(self._family(metric).key, map(_LABELS, run)))
                values.extend(map(_VALUE, run))
        return {
            name: self._family(name).settle(keys, values) for name, (keys, values) in found.items()
        }

    def render(self, samples: Iterable[Sample], openmetrics: bool) -> bytes:
        return self.render_grouped(self.group(samples), openmetrics)

    def _body(self, fam: _FamilyCache, series: Series, om: bool) -> list[bytes]:
        keys, values = series
        if fam.spec.type is not MetricType.HISTOGRAM:
            return fam.render(keys, values)
        out: list[str] = []
        for key, value in zip(keys, values, strict=True):
            if isinstance(value, HistogramValue):
                self._histogram(fam, key, value, om, out)
        return ["".join(out).encode()]

    def render_grouped(self, grouped: Mapping[str, Series], openmetrics: bool) -> bytes:
        chunks: list[bytes] = []
        for name in sorted(grouped):
            fam = self._family(name)
            chunks.append(fam.headers[openmetrics])
            chunks.extend(self._body(fam, grouped[name], openmetrics))
        if openmetrics:
            chunks.append(b"# EOF\n")
        return b"".join(chunks)

    def render_both(self, grouped: Mapping[str, Series]) -> tuple[bytes, list[bytes | memoryview]]:
        """OpenMetrics bytes, and the text format as parts to join: its sample lines are
        slices of the OpenMetrics bytes for every family but histograms (rendered apart)."""
        chunks: list[bytes] = []
        # Per family: its text header, then its text body as (start, end) in the
        # OpenMetrics bytes or as bytes of its own.
        layout: list[tuple[bytes, tuple[int, int] | bytes]] = []
        pos = 0
        for name in sorted(grouped):
            fam = self._family(name)
            series = grouped[name]
            chunks.append(fam.headers[True])
            pos += len(fam.headers[True])
            body = self._body(fam, series, True)
            size = sum(map(len, body))
            chunks.extend(body)
            if fam.spec.type is MetricType.HISTOGRAM:
                layout.append((fam.headers[False], b"".join(self._body(fam, series, False))))
            else:
                layout.append((fam.headers[False], (pos, pos + size)))
            pos += size
        chunks.append(b"# EOF\n")
        openmetrics = b"".join(chunks)
        view = memoryview(openmetrics)
        parts: list[bytes | memoryview] = []
        for header, body_or_span in layout:
            parts.append(header)
            if isinstance(body_or_span, bytes):
                parts.append(body_or_span)
            else:
                parts.append(view[body_or_span[0] : body_or_span[1]])
        return openmetrics, parts

    def _histogram(
        self, fam: _FamilyCache, key: Any, value: HistogramValue, om: bool, out: list[str]
    ) -> None:
        name = fam.spec.name
        labels = fam.labels_text(key)
        sep = "," if labels else ""
        bounds = [*fam.spec.buckets, math.inf]
        for i, (bound, count) in enumerate(zip(bounds, value.buckets, strict=True)):
            le = _format_bound(bound)
            line = f'{name}_bucket{{{labels}{sep}le="{le}"}} {_format_value(count)}'
            exemplar = value.exemplars.get(i) if om else None
            if exemplar is not None:
                ex_labels, ex_value, ex_ts = exemplar
                text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in ex_labels.items())
                line += f" # {{{text}}} {_format_value(ex_value)}"
                if ex_ts is not None:
                    line += f" {ex_ts!r}"
            out.append(line + "\n")
        braces = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{braces} {_format_value(value.sum)}\n")
        out.append(f"{name}_count{braces} {_format_value(value.count)}\n")

    def prune(self, grouped: Mapping[str, Series]) -> None:
        """Forget the cached series of families and series that were not in ``grouped``."""
        for name, fam in self._families.items():
            keys = grouped[name][0] if name in grouped else []
            fam.forget(keys)
            if not keys:
                fam.keys, fam.formats = [], []
