"""The per-tenant rate of job creation over HTTP: the create past a tenant's limit (`vidrelay keys create
--rate-per-minute`) is a 429 with Retry-After, and neither stores a job nor reaches the upstream. (That the next
minute has room again, and that concurrent creates cannot overshoot, is shown in tests/integration/test_rate_limit.py
with a test clock rather than a minute of waiting.)"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import LocalStackProcess

pytestmark = pytest.mark.e2e

VIDRELAY = Path(sys.executable).with_name("vidrelay")


def test_the_create_over_a_tenants_rate_limit_is_429_with_retry_after_and_reaches_nothing(
    local_stack: LocalStackProcess,
) -> None:
    tenant = f"rl-{secrets.token_hex(4)}"
    done = subprocess.run(
        [str(VIDRELAY), "keys", "create", "--tenant", tenant, "--rate-per-minute", "2"],
        cwd=local_stack.log_path.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 jobs per minute" in done.stdout
    body = {"model": "sora-2", "prompt": "rate limited", "seconds": "4", "size": "1280x720"}
    with httpx.Client(
        base_url=local_stack.api_url, headers={"Authorization": f"Bearer {done.stdout.splitlines()[-1]}"}, timeout=30
    ) as client:
        # Near the end of a minute two creates could fall into two windows: start early in one.
        while time.time() % 60 > 45:
            time.sleep(0.5)
        for _ in range(2):
            client.post("/videos", json=body).raise_for_status()
        submits = local_stack.sim_submits()

        refused = client.post("/videos", json=body)

        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        error = refused.json()["error"]
        assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limited")
        assert local_stack.sim_submits() == submits  # nothing reached the upstream
        assert len(client.get("/videos").json()["data"]) == 2  # and no job was stored
