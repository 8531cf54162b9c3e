"""Processor ``filter``: drop series before analysis and exposition (like Prometheus's
``metric_relabel_configs`` with ``action: drop``), to bound cardinality or hide noise.

.. code-block:: yaml

    processors:
      - kind: filter
        name: drop-tmpfs
        drop:
          - metric: implmon_host_filesystem_.*
            labels: {mountpoint: /run.*}
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from implmon.component import ComponentSettings, Processor
from implmon.metrics import Sample

__all__ = ["FilterProcessor"]


def _compile(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return pattern


class Match(BaseModel):
    """A series matches when the metric name and every listed label fully match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = ".*"
    labels: dict[str, str] = {}

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        return _compile(value)

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern in value.values():
            _compile(pattern)
        return value


class FilterSettings(ComponentSettings):
    drop: list[Match] = []


class FilterProcessor(Processor):
    """Drops every sample that matches any ``drop`` rule."""

    kind = "filter"
    Settings = FilterSettings

    def __init__(self, settings: FilterSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._rules = [
            (re.compile(m.metric), {k: re.compile(v) for k, v in m.labels.items()})
            for m in settings.drop
        ]

    def process(self, samples: list[Sample]) -> list[Sample]:
        return [s for s in samples if not self._dropped(s)]

    def _dropped(self, sample: Sample) -> bool:
        for metric, labels in self._rules:
            if metric.fullmatch(sample.metric) and all(
                name in sample.labels and rx.fullmatch(sample.labels[name])
                for name, rx in labels.items()
            ):
                return True
        return False
