"""The examples in the quality and performance modules' docstrings run, so they stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "implmon.components.collectors.reports",
    "implmon.components.collectors.junit",
    "implmon.components.collectors.coverage",
    "implmon.components.collectors.sarif",
    "implmon.components.collectors.benchmark",
    "implmon.components.analyzers.quality_gate",
    "implmon.components.analyzers.regression",
    "implmon.components.analyzers.trend",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
