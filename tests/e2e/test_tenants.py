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


def test_usage_sums_per_day_and_model_and_a_budget_stops_new_jobs_before_the_upstream(
    local_stack: LocalStackProcess,
) -> None:
    # sora-2 costs $0.10/s: a 4 s video is estimated at $0.40, so a $1.00 budget admits two and refuses a third.
    key = keys(local_stack, "create", "--tenant", "team-c", "--budget-usd", "1.00").splitlines()[-1]
    four = {"model": "sora-2", "prompt": "budgeted", "seconds": "4", "size": "1280x720"}
    with client(local_stack, key) as c:
        assert c.get("/usage").json()["total_usd"] == 0
        for _ in range(2):
            c.post("/videos", json=four).raise_for_status()
        submits = local_stack.sim_submits()
        refused = c.post("/videos", json=four)
        assert refused.status_code == 402, refused.text
        error = refused.json()["error"]
        assert error["code"] == "budget_exceeded" and "$1.00" in error["message"] and "$0.80" in error["message"]
        assert local_stack.sim_submits() == submits  # nothing went upstream
        assert len(c.get("/videos").json()["data"]) == 2  # and no job was stored

        usage = c.get("/usage").json()
        assert usage["object"] == "usage" and usage["jobs"] == 2 and usage["total_usd"] == 0.8
        (row,) = usage["data"]
        assert row["model"] == "sora-2" and row["jobs"] == 2 and row["day"] == usage["to"]
        assert c.get("/usage", params={"from": "2000-01-01", "to": "2000-01-31"}).json()["jobs"] == 0
        bad = c.get("/usage", params={"from": "yesterday"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "from"
        backwards = c.get("/usage", params={"from": "2026-02-01", "to": "2026-01-01"})
        assert backwards.status_code == 400
    # Another tenant's usage is its own.
    with client(local_stack, keys(local_stack, "create", "--tenant", "team-d").splitlines()[-1]) as d:
        assert d.get("/usage").json()["jobs"] == 0
