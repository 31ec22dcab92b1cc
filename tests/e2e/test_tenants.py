"""Tenants are walled off from each other: keys made with `vidrelay keys create` see only their own videos."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import LocalStackProcess, wait_for_status

pytestmark = pytest.mark.e2e

VIDRELAY = Path(sys.executable).with_name("vidrelay")


def keys(stack: LocalStackProcess, *args: str) -> str:
    done = subprocess.run(
        [str(VIDRELAY), "keys", *args], cwd=stack.log_path.parent, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def client(stack: LocalStackProcess, key: str) -> httpx.Client:
    return httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_two_tenants_cannot_see_each_others_videos(local_stack: LocalStackProcess) -> None:
    key_a = keys(local_stack, "create", "--tenant", "team-a").splitlines()[-1]
    key_b = keys(local_stack, "create", "--tenant", "team-b").splitlines()[-1]
    assert key_a.startswith("sk-vr-") and key_b.startswith("sk-vr-") and key_a != key_b

    body = {"model": "sora-2", "prompt": "team a's secret project", "seconds": "4", "size": "1280x720"}
    with client(local_stack, key_a) as a, client(local_stack, key_b) as b:
        video = a.post("/videos", json=body).raise_for_status().json()
        wait_for_status(a, video["id"], {"completed"})
        for method, path in (
            ("GET", f"/videos/{video['id']}"),
            ("GET", f"/videos/{video['id']}/content"),
            ("GET", f"/videos/{video['id']}/deliveries"),
            ("DELETE", f"/videos/{video['id']}"),
        ):
            answer = b.request(method, path)
            assert answer.status_code == 404, (method, path, answer.text)
            assert video["id"] in answer.json()["error"]["message"] or answer.json()["error"]["code"] == "not_found"
        assert video["id"] not in [v["id"] for v in b.get("/videos", params={"limit": 100}).json()["data"]]
        assert a.get(f"/videos/{video['id']}").json()["status"] == "completed"  # B's delete changed nothing
        assert [v["id"] for v in a.get("/videos", params={"limit": 100}).json()["data"]] == [video["id"]]

    with client(local_stack, local_stack.api_key) as local:
        assert video["id"] not in [v["id"] for v in local.get("/videos", params={"limit": 100}).json()["data"]]

    listed = keys(local_stack, "list")
    key_id = next(line.split()[0] for line in listed.splitlines() if " team-a " in f" {line} ")
    assert key_a not in listed and key_b not in listed  # the list never shows a key
    assert "revoked" in keys(local_stack, "revoke", key_id)
    with client(local_stack, key_a) as a, client(local_stack, key_b) as b:
        assert a.get("/videos").status_code == 401
        assert b.get("/videos").status_code == 200
