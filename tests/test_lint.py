"""The house rules hold on every change: `ruff` clean and `mypy --strict` clean, for the hub,
its tests and its benchmark scripts (what `make lint` runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHECKED = ["hub", "tests", "bench"]


@pytest.mark.parametrize("command", [
    [str(BIN / "ruff"), "check", *CHECKED],
    # strict comes from pyproject.toml; tests and bench are folders, not packages
    [str(BIN / "mypy"), "--explicit-package-bases", *CHECKED],
], ids=["ruff", "mypy"])
def test_the_code_passes(command: list[str]) -> None:
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
