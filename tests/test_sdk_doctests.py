"""The examples in the SDK modules' docstrings run, so they stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "implmon.events",
    "implmon.dora",
    "implmon.store",
    "implmon.builder",
    "implmon.deployer",
    "implmon.validator",
    "implmon.manager",
    "implmon.pipeline",
    "implmon.testing",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
