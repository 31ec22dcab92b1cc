"""A slow upstream is not a dead worker. A submit answered after 14 s and a stream whose first byte comes after
25 s, both well inside their HTTP timeouts, complete: the submit and stream leases outlast those timeouts, so
the poller never declares the job lost while the api (or the streamer) is still waiting for the answer."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.conftest import LocalStackProcess, wait_for_status
from tests.e2e.test_every_upstream import REQUESTS, submits

pytestmark = pytest.mark.slow

SUBMIT_HELD_S = 14
STREAM_HELD_S = 25


def slow_submit(stack: LocalStackProcess, marker: str) -> tuple[int, dict[str, Any], float]:
    body = {"model": "sora-2", "prompt": f"a slow harbour {marker} [sim:submit_timeout={SUBMIT_HELD_S}]"}
    with stack.http() as api:
        started = time.monotonic()
        created = api.post("/videos", json={**body, "seconds": "4", "size": "1280x720"}, timeout=60)
        answered_s = time.monotonic() - started
        if created.status_code != 200:
            return created.status_code, created.json(), answered_s
        return 200, wait_for_status(api, created.json()["id"], {"completed", "failed"}, timeout_s=90), answered_s


def slow_stream(stack: LocalStackProcess, marker: str) -> tuple[int, dict[str, Any], float]:
    prompt = f"a slow lighthouse {marker} [sim:submit_timeout={STREAM_HELD_S}]"
    with stack.http() as api:
        started = time.monotonic()
        created = api.post("/videos", json={**REQUESTS["chat"]["json"], "prompt": prompt})
        answered_s = time.monotonic() - started
        if created.status_code != 200:
            return created.status_code, created.json(), answered_s
        return 200, wait_for_status(api, created.json()["id"], {"completed", "failed"}, timeout_s=120), answered_s


def test_a_slow_submit_and_a_slow_stream_start_complete(local_stack: LocalStackProcess) -> None:
    # Given an upstream that holds the submit's answer 14 s and the stream's first byte 25 s
    tag = time.time_ns()
    submit_marker, stream_marker = f"[slow-submit {tag}]", f"[slow-stream {tag}]"

    # When a client creates one video of each kind
    with ThreadPoolExecutor(max_workers=2) as pool:
        submitted = pool.submit(slow_submit, local_stack, submit_marker)
        streamed = pool.submit(slow_stream, local_stack, stream_marker)
        (submit_status, submit_video, submit_answered_s) = submitted.result()
        (stream_status, stream_video, _) = streamed.result()

    # Then the create answered once the upstream did, and both videos completed, each sent upstream once
    assert submit_status == 200, submit_video
    assert submit_answered_s >= SUBMIT_HELD_S
    assert submit_video["status"] == "completed", submit_video
    assert stream_status == 200, stream_video
    assert stream_video["status"] == "completed", stream_video
    assert len(submits(local_stack, submit_marker)) == 1
    assert len(submits(local_stack, stream_marker)) == 1
