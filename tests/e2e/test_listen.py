"""`vidrelay listen` receives the local stack's webhooks, verifies them and prints one line per delivery."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from vidrelay_core.webhooks import new_secret, sign

from tests.e2e.conftest import LocalStackProcess, _free_port, wait_for_status

pytestmark = pytest.mark.e2e

VIDRELAY = Path(sys.executable).with_name("vidrelay")


def test_listen_prints_verified_events_and_rejects_forgeries(local_stack: LocalStackProcess, tmp_path: Path) -> None:
    port = _free_port()
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
    assert all("attempt 1" in line and line.endswith("verified") for line in mine)
    assert any(line.startswith("REJECTED") and "evt_forged" in line for line in lines)
