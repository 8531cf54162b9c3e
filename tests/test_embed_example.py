"""Runs every Python block of docs/embedding.md and of README.md (its "embed it" section) as a
user would: each in a fresh interpreter, in an empty directory."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "embedding.md"
BLOCKS = [
    block
    for page in (DOC, REPO / "README.md")
    for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
]


def test_the_page_has_the_examples() -> None:
    assert len(BLOCKS) >= 3
    assert "ImplementationManager.open" in BLOCKS[0]


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no OTEL_* from the outside
    result = subprocess.run([sys.executable, "-c", BLOCKS[index]], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    if "ImplementationManager.open" in BLOCKS[index]:
        assert "implmon_builds_total" in result.stdout
        assert (tmp_path / "implmon.db").exists()
