"""`GET /v1/videos/{id}/content_url`: the presigned URL the content route redirects to, as JSON, for a browser
whose fetch cannot read a redirect's Location."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest

from tests.e2e.conftest import LocalStackProcess, wait_for_status

pytestmark = pytest.mark.e2e

BODY = {"model": "sora-2", "prompt": "a paper boat on a pond", "seconds": "4", "size": "1280x720"}


def test_the_link_downloads_the_stored_mp4_without_the_api_key(local_stack: LocalStackProcess) -> None:
    with local_stack.http() as api:
        video = api.post("/videos", json=BODY).raise_for_status().json()
        done = wait_for_status(api, video["id"], {"completed"})
        answer = api.get(f"/videos/{video['id']}/content_url")

    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    link = answer.json()
    assert set(link) == {"object", "video_id", "variant", "url", "expires_at"}
    assert (link["object"], link["video_id"], link["variant"]) == ("video.content_url", video["id"], "video")
    assert time.time() < link["expires_at"] <= time.time() + 3600 + 5
    mp4 = httpx.get(link["url"], timeout=30).raise_for_status().content  # no Authorization header
    assert hashlib.sha256(mp4).hexdigest() == done["output"]["sha256"]


def test_the_link_is_refused_as_the_content_route_is(local_stack: LocalStackProcess) -> None:
    with local_stack.http() as api:
        video = api.post("/videos", json={**BODY, "prompt": "still running [sim:fail]"}).raise_for_status().json()
        early = api.get(f"/videos/{video['id']}/content_url")
        poster = api.get(f"/videos/{video['id']}/content_url", params={"variant": "poster"})
        missing = api.get("/videos/video_00000000000000000000000000000000/content_url")
        wait_for_status(api, video["id"], {"failed"})
        failed = api.get(f"/videos/{video['id']}/content_url")
    assert (
        httpx.get(
            f"{local_stack.api_url}/videos/{video['id']}/content_url", headers={"Authorization": "Bearer sk-vr-wrong"}
        ).status_code
        == 401
    )

    assert early.status_code == 400 and early.json()["error"]["param"] == "video_id"
    assert poster.status_code == 400 and poster.json()["error"]["param"] == "variant"
    assert "'poster'" in poster.json()["error"]["message"]
    assert missing.status_code == 404
    assert failed.status_code == 400 and failed.json()["error"]["param"] == "video_id"
