"""`vidrelay listen` receives the local stack's webhooks, verifies them and prints one line per delivery."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from vidrelay_core.webhooks import new_secret, sign

from tests.e2e.conftest import LocalStackProcess, wait_for_status
from vidrelay.ports import free_port

pytestmark = pytest.mark.e2e

VIDRELAY = Path(sys.executable).with_name("vidrelay")


def test_listen_prints_verified_events_and_rejects_forgeries(local_stack: LocalStackProcess, tmp_path: Path) -> None:
    port = free_port()
    secret = str(local_stack.info["webhook_secret"])
    listener = subprocess.Popen(
        [str(VIDRELAY), "listen", "--port", str(port), "--secret", secret],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/webhooks"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "vidrelay listen did not start"
                time.sleep(0.2)
        with local_stack.http() as api:
            body = {"model": "sora-2", "prompt": "listen", "seconds": "4", "size": "1280x720", "webhook_url": url}
            video = api.post("/videos", json=body).raise_for_status().json()
            wait_for_status(api, video["id"], {"completed"})
        forged = '{"id":"evt_forged","object":"event","type":"video.completed","data":{"id":"video_x"}}'
        headers = {
            "webhook-id": "evt_forged",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": sign([new_secret()], "evt_forged", int(time.time()), forged),
        }
        assert httpx.post(url, content=forged, headers=headers).status_code == 401
        time.sleep(1.5)  # the completed event's delivery follows the job's completion closely
    finally:
        listener.terminate()
        output, _ = listener.communicate(timeout=10)
    lines = output.splitlines()
    assert lines[0].startswith(f"listening on {url}")
    mine = [line for line in lines if video["id"] in line]
    assert [line.split()[0] for line in mine] == ["video.queued", "video.in_progress", "video.completed"]
    assert all("attempt 1" in line and line.endswith("verified (--secret 1)") for line in mine)
    refused = [line for line in lines if line.startswith("REJECTED") and "evt_forged" in line]
    assert len(refused) == 1
    assert "video.completed video_x" in refused[0]  # what it was, though refused
    assert refused[0].endswith("signature matches none of the 1 known secret (answered 401)")


def _start_listen(port: int, cwd: Path) -> subprocess.Popen[str]:
    listener = subprocess.Popen(
        [str(VIDRELAY), "listen", "--port", str(port)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/webhooks", timeout=1)
            return listener
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "vidrelay listen did not start"
            time.sleep(0.2)


def test_listen_verifies_an_endpoint_created_after_it_started(local_stack: LocalStackProcess) -> None:
    # Given `vidrelay listen` started inside the stack's folder, with no --secret: it reads the stack's secrets
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks"
    inside = local_stack.log_path.parent / "listen-here"
    inside.mkdir(exist_ok=True)
    listener = _start_listen(port, inside)
    try:
        with local_stack.http() as api:
            # When an endpoint pointing at it is created afterwards, through the API, and a job runs
            endpoint = api.post("/webhook_endpoints", json={"url": url}).raise_for_status().json()
            body = {"model": "sora-2", "prompt": "to an endpoint", "seconds": "4", "size": "1280x720"}
            video = api.post("/videos", json=body).raise_for_status().json()
            wait_for_status(api, video["id"], {"completed"})
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                deliveries = [
                    d
                    for d in api.get(f"/videos/{video['id']}/deliveries").json()["data"]
                    if d["target"] == endpoint["id"]
                ]
                if len(deliveries) == 3 and all(d["status"] in ("succeeded", "failed") for d in deliveries):
                    break
                time.sleep(0.3)
            api.delete(f"/webhook_endpoints/{endpoint['id']}").raise_for_status()
    finally:
        listener.terminate()
        output, _ = listener.communicate(timeout=10)
    # Then every delivery to the endpoint was answered 200 on its first attempt, not 401
    assert sorted(d["event_type"] for d in deliveries) == ["video.completed", "video.in_progress", "video.queued"]
    assert all(d["status"] == "succeeded" and [a["status"] for a in d["attempts"]] == [200] for d in deliveries), (
        deliveries,
        output,
    )
    lines = output.splitlines()
    assert lines[0].startswith(f"listening on {url} (verifying signatures with the local stack's secrets")
    mine = [line for line in lines if video["id"] in line]
    assert len(mine) == 3 and all(line.endswith(f"verified (endpoint {endpoint['id']})") for line in mine), mine
    assert not [line for line in lines if line.startswith("REJECTED")]
