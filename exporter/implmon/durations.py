"""Prometheus-style durations (``15s``, ``1m30s``, ``500ms``) as float seconds in config models.

>>> parse_duration("1m30s")
90.0
>>> parse_duration(2.5)
2.5
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

__all__ = ["Duration", "parse_duration"]

_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")


def parse_duration(value: object) -> float:
    """Seconds from a number or a Prometheus duration string; raises ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 15s, 1m or 500ms")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        pos, seconds = 0, 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError(f"{value!r} is not a duration like 15s, 1m or 500ms")
    else:
        raise ValueError("must be a duration like 15s, 1m or 500ms")
    # YAML reads .nan and .inf as floats; neither can schedule a loop or bound a wait.
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a finite duration")
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
