"""`vidrelay local` as a child process, set up for the chaos run: faults end within the run (short retry budgets),
the webhook schedule shrunk, no rate limit, and the router delivering some SQS messages twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from vidrelay.ports import free_port

START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class StackOptions:
    sim_seconds: float = 2.0
    webhook_retry_scale: float = 0.001
    duplicate_deliveries: float = 0.1
    # A job whose upstream keeps refusing ends after this much trying (30 minutes in the cloud).
    retry_budget_s: float = 20.0


@dataclass(frozen=True)
class RunningStack:
    info: dict[str, Any]
    log_path: Path

    @property
    def api_url(self) -> str:
        return str(self.info["api_url"])

    @property
    def simulator_url(self) -> str:
        return str(self.info["simulator_url"])


def _command() -> list[str]:
    script = Path(sys.executable).with_name("vidrelay")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from vidrelay.cli import main; sys.exit(main())"]


@contextmanager
def local_stack(workdir: Path, options: StackOptions) -> Iterator[RunningStack]:
    log_path = workdir / "vidrelay-local.log"
    budget = str(options.retry_budget_s)
    env = {
        **os.environ,
        "VIDRELAY_SUBMIT_RETRY_BUDGET_S": budget,
        "VIDRELAY_POLL_RETRY_BUDGET_S": budget,
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        *_command(),
        "local",
        "--port",
        str(free_port()),
        "--sim-seconds",
        str(options.sim_seconds),
        "--webhook-retry-scale",
        str(options.webhook_retry_scale),
        "--rate-per-minute",
        "0",
        "--duplicate-deliveries",
        str(options.duplicate_deliveries),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield RunningStack(wait_until_serving(workdir / ".vidrelay" / "local.json", process, log_path), log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_serving(
    state_file: Path, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float = START_TIMEOUT_S
) -> dict[str, Any]:
    """The state file of a `vidrelay local` started as `process`, once its API answers (the e2e tests' too)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vidrelay local exited with {process.returncode}:\n{log_path.read_text()}")
        if state_file.exists():
            info: dict[str, Any] = json.loads(state_file.read_text())
            try:
                httpx.get(info["api_url"].removesuffix("/v1") + "/openapi.json", timeout=5)
                return info
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    raise RuntimeError(f"vidrelay local did not come up in {timeout_s:.0f} s:\n{log_path.read_text()}")
