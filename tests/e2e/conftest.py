"""End-to-end fixtures: `vidrelay local` started as a real subprocess, driven over HTTP only."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from vidrelay.chaos.stack import wait_until_serving
from vidrelay.ports import free_port
from vidrelay.receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]
VIDRELAY = Path(sys.executable).with_name("vidrelay")


@dataclass
class LocalStackProcess:
    info: dict[str, Any]
    upstream_key: str
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def api_url(self) -> str:
        return str(self.info["api_url"])

    @property
    def api_key(self) -> str:
        return str(self.info["api_key"])

    @property
    def simulator_url(self) -> str:
        return str(self.info["simulator_url"])

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def http(self, api_key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {api_key or self.api_key}"},
            timeout=30,
        )

    def aws(self, service: str) -> Any:
        """A boto3 client on the stack's embedded AWS endpoint (what a user would do to look inside)."""
        return boto3.client(
            service,
            endpoint_url=self.info["aws_endpoint_url"],
            region_name=self.info["region"],
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def sim_requests(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.simulator_url}/_sim/requests", timeout=10).json())

    def sim_submits(self) -> int:
        """How many jobs were sent upstream so far (other tests' jobs keep polling, so GETs are not counted)."""
        return sum(1 for r in self.sim_requests() if r["method"] == "POST" and r["path"] == "/v1/videos")


@contextmanager
def running_stack(workdir: Path, *options: str) -> Iterator[LocalStackProcess]:
    """`vidrelay local` with these options, in its own directory, stopped (SIGTERM) afterwards."""
    log_path = workdir / "vidrelay-local.log"
    upstream_key = "sk-sim-" + secrets.token_hex(16)
    env = {
        **os.environ,
        "VIDRELAY_LOCAL_UPSTREAM_KEY": upstream_key,
        # Every log line the functions can write, so the secret-leak test sees all of them.
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
        "PYTHONUNBUFFERED": "1",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(VIDRELAY), "local", "--port", str(free_port()), "--sim-seconds", "1", *options],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        info = wait_until_serving(workdir / ".vidrelay" / "local.json", process, log_path, timeout_s=90)
        yield LocalStackProcess(info, upstream_key, log_path, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Package scope: one stack for all of tests/e2e, stopped when its last test is done. (A session-scoped stack
# kept polling in the background through the integration tests that follow, whose crash matrix is timed
# against a 0.1 s simulator and drifted on a two-core machine.)
@pytest.fixture(scope="package")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    with running_stack(tmp_path_factory.mktemp("local")) as stack:
        yield stack


# The webhook schedule (5 s ... 24 h, about three days in all) shrunk 10 000 times: ten attempts in ~30 s.
RETRY_SCALE = 0.0001


@pytest.fixture(scope="package")
def scaled_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    with running_stack(tmp_path_factory.mktemp("scaled"), "--webhook-retry-scale", str(RETRY_SCALE)) as stack:
        yield stack


@pytest.fixture(scope="package")
def strict_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    with running_stack(tmp_path_factory.mktemp("strict"), "--strict-urls") as stack:
        yield stack


@pytest.fixture
def receiver(local_stack: LocalStackProcess) -> Iterator[Receiver]:
    hook = Receiver(secret=str(local_stack.info["webhook_secret"])).start()
    yield hook
    hook.stop()


def wait_for_status(client: httpx.Client, video_id: str, statuses: set[str], timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    video: dict[str, Any] = {}
    while time.monotonic() < deadline:
        video = client.get(f"/videos/{video_id}").raise_for_status().json()
        if video["status"] in statuses:
            return video
        time.sleep(0.2)
    raise AssertionError(f"{video_id} did not reach {statuses} in {timeout_s} s; last seen {video}")
