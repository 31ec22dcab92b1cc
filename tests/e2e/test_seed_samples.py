"""The seed's own sample programs run against `vidrelay local`, changed only in base URL and key.

The samples are cut out of the seed document at test time, so a change to the seed is a change to the test.
Both sleep 15 s between polls, as published; they run side by side to pay that once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import LocalStackProcess
from vidrelay.simulator.mp4gen import probe

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Copies of the upstream documents the adapters are written against (tests/seeds/README.md).
SEEDS = Path(__file__).resolve().parents[1] / "seeds"
SEED_002 = next(SEEDS.glob("002_*.txt"))
END = 'print("Saved: output.mp4")'


def cut_sample(text: str, first_line: str, occurrence: int = 0) -> str:
    """The program that starts at `first_line` (its `occurrence`-th appearance) and ends at the save message."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(first_line, start + 1)
    end = text.index(END, start) + len(END)
    return text[start:end] + "\n"


def point_at(program: str, stack: LocalStackProcess) -> str:
    replaced = program.replace('"sk-your-api-key"', repr(stack.api_key))
    replaced = replaced.replace('"https://api.apiyi.com/v1"', repr(stack.api_url))
    assert replaced.count(stack.api_url) == 1 and stack.api_key in replaced, "the sample's constants moved"
    return replaced


def test_seed_002_samples_run_unchanged(local_stack: LocalStackProcess, tmp_path: Path) -> None:
    text = SEED_002.read_text()
    samples = {
        "raw-requests": cut_sample(text, "import requests\n"),
        "openai-sdk": cut_sample(text, "from openai import OpenAI\n"),
    }
    running: dict[str, tuple[subprocess.Popen[str], Path]] = {}
    for name, program in samples.items():
        workdir = tmp_path / name
        workdir.mkdir()
        (workdir / "sample.py").write_text(point_at(program, local_stack))
        process = subprocess.Popen(
            [sys.executable, "-W", "ignore::DeprecationWarning", "sample.py"],
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        running[name] = (process, workdir)
    for name, (process, workdir) in running.items():
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, f"{name} sample failed:\n{output}"
        assert "Status: completed, progress: 100%" in output, output
        assert "Saved: output.mp4" in output
        width, height, duration = probe(workdir / "output.mp4")
        assert (width, height) == (1280, 720), name
        assert duration == pytest.approx(8.0, abs=0.1), name
