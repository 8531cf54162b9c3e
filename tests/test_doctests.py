"""The examples in every module's docstrings run, so they stay true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import implmon
import pytest

MODULES = sorted(m.name for m in pkgutil.walk_packages(implmon.__path__, "implmon."))
# Modules whose docstrings teach with a runnable example (STYLE.md: public classes do).
MUST_HAVE_EXAMPLES = {
    "implmon.builder", "implmon.component", "implmon.config", "implmon.deployer",
    "implmon.dora", "implmon.events", "implmon.exposition", "implmon.factory",
    "implmon.manager", "implmon.monitor", "implmon.pipeline", "implmon.registry",
    "implmon.server", "implmon.store", "implmon.testing", "implmon.validator",
    "implmon.components.collectors.reports", "implmon.components.collectors.junit",
    "implmon.components.collectors.coverage", "implmon.components.collectors.sarif",
    "implmon.components.collectors.benchmark", "implmon.components.analyzers.health",
    "implmon.components.analyzers.quality_gate", "implmon.components.analyzers.regression",
    "implmon.components.analyzers.trend",
}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    if name in MUST_HAVE_EXAMPLES:
        assert result.attempted > 0, f"{name} has no examples"


def test_listed_modules_exist() -> None:
    assert set(MODULES) >= MUST_HAVE_EXAMPLES
