"""The style gates of `make lint` also run in `make test`, so CI refuses code that is not ruff- and mypy-clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FUNCTIONS = sorted(path.parent.name for path in (ROOT / "functions").glob("*/app.py"))


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],
        # The CLI, local stack, simulator and bench, against the core's types.
        ["mypy", "-p", "vidrelay"],
        # Each function on its own: every handler is a module named `app`.
        *(["mypy", f"functions/{name}/app.py"] for name in FUNCTIONS),
    ],
    ids=["ruff-check", "ruff-format", "mypy-core", "mypy-cli", *(f"mypy-{name}" for name in FUNCTIONS)],
)
def test_lint_gate(command: list[str]) -> None:
    env = {**os.environ, "MYPYPATH": f"{ROOT / 'layers/core'}{os.pathsep}{ROOT / 'src'}"}
    done = subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
