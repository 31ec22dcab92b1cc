"""Seedance 2.0 on `/v1/video/generations`, as seed 001 documents it: multipart in, `task-<time>-<6>` ids,
pending → running → succeeded → completed, and a signed `video_url` on the CDN host that wants no key."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.unit.simulator.support import (
    AUTH,
    eventually,
    generations_submit,
    image_bytes,
    mp4_bytes,
    probe_bytes,
    task,
    wait_generation,
)
from vidrelay.simulator.server import Simulator

ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
ORDER = ["pending", "running", "succeeded", "completed"]
# Long enough that every status lasts a few hundred ms, so a loaded machine's slow polls still see each one.
ORDER_SIM_SECONDS = 2.0


def test_create_answers_the_seeds_shape(api: httpx.Client) -> None:
    response = generations_submit(api, duration="5", aspect_ratio="16:9")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"task_id", "status", "created_at"}
    match = re.fullmatch(r"task-(\d{14})-[a-z0-9]{6}", body["task_id"])
    assert match is not None, body
    assert body["status"] == "pending"
    assert ISO_Z.fullmatch(body["created_at"])
    created = datetime.strptime(body["created_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert match[1] == created.strftime("%Y%m%d%H%M%S")  # the id carries the creation time
    assert abs(created.timestamp() - time.time()) < 5


def test_polls_walk_the_seeds_statuses_and_only_completed_has_the_url(api: httpx.Client, sim: Simulator) -> None:
    sim.sim_seconds = ORDER_SIM_SECONDS
    task_id = generations_submit(api).json()["task_id"]
    seen: list[dict[str, Any]] = []

    def completed() -> bool | None:
        body = api.get(f"/v1/video/generations/{task_id}").raise_for_status().json()
        seen.append(body)
        return True if body["status"] == "completed" else None

    eventually(completed, every_s=0.01)

    statuses = [b["status"] for b in seen]
    assert set(statuses) == set(ORDER), statuses
    assert statuses == sorted(statuses, key=ORDER.index)
    for body in seen:
        assert body["task_id"] == task_id
        assert ISO_Z.fullmatch(body["created_at"]) and ISO_Z.fullmatch(body["updated_at"])
        assert ("video_url" in body) == (body["status"] == "completed")
        if body["status"] == "running":
            assert isinstance(body["progress"], int) and 0 < body["progress"] < 100
    running = [b["progress"] for b in seen if b["status"] == "running"]
    assert running == sorted(running)


def test_the_video_url_is_a_signed_cdn_link_served_without_a_key(
    api: httpx.Client, sim: Simulator, tmp_path: Path
) -> None:
    task_id = generations_submit(api, duration="4").json()["task_id"]
    done = wait_generation(api, task_id)
    url = done["video_url"]

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == sim.cdn_url != sim.url
    assert re.fullmatch(r"/files/[0-9a-f]{32}\.mp4", parts.path)
    query = parse_qs(parts.query)
    assert re.fullmatch(r"[0-9a-f]{64}", query["Signature"][0])
    # "Generated video URLs are valid for only 1 day".
    assert int(query["Expires"][0]) == task(sim, task_id)["completed_at_ms"] // 1000 + 86400

    download = httpx.get(url)
    assert download.status_code == 200 and download.headers["Content-Type"] == "video/mp4"
    assert probe_bytes(download.content, tmp_path) == (1280, 720, pytest.approx(4.0, abs=0.1))


def test_the_cdn_refuses_a_request_carrying_authorization(api: httpx.Client, sim: Simulator) -> None:
    task_id = generations_submit(api).json()["task_id"]
    url = wait_generation(api, task_id)["video_url"]

    refused = httpx.get(url, headers=AUTH)
    accepted = httpx.get(url)

    assert refused.status_code == 400
    assert "<Code>InvalidArgument</Code>" in refused.text and "Only one auth mechanism allowed" in refused.text
    assert accepted.status_code == 200
    recorded = task(sim, task_id)
    assert [(r["status"], r["had_authorization"]) for r in recorded["cdn_requests"]] == [(400, True), (200, False)]
    assert recorded["cdn_authorization_seen"] is True and recorded["content_requests"] == 2
    cdn_log = [r for r in sim.requests() if r["server"] == "cdn"]
    assert [(r["status"], r["had_authorization"], r["task_id"]) for r in cdn_log] == [
        (400, True, task_id),
        (200, False, task_id),
    ]


def test_a_tampered_or_unknown_link_is_refused(api: httpx.Client, sim: Simulator) -> None:
    url = wait_generation(api, generations_submit(api).json()["task_id"])["video_url"]
    tampered = re.sub(r"Signature=[0-9a-f]", "Signature=x", url)
    assert httpx.get(tampered).status_code == 403
    assert httpx.get(f"{sim.cdn_url}/files/{'0' * 32}.mp4?Expires=1&Signature=00").status_code == 404


@pytest.mark.parametrize(("aspect", "size"), [("9:16", (720, 1280)), ("1:1", (960, 960))])
def test_aspect_ratio_and_duration_shape_the_mp4(
    api: httpx.Client, tmp_path: Path, aspect: str, size: tuple[int, int]
) -> None:
    task_id = generations_submit(api, duration="6", aspect_ratio=aspect).json()["task_id"]
    download = httpx.get(wait_generation(api, task_id)["video_url"])
    assert probe_bytes(download.content, tmp_path) == (*size, pytest.approx(6.0, abs=0.1))


def test_defaults_are_five_seconds_of_16_9(api: httpx.Client, sim: Simulator) -> None:
    task_id = generations_submit(api).json()["task_id"]
    recorded = task(sim, task_id)
    assert recorded["output"] == {"width": 1280, "height": 720, "seconds": 5}
    assert "duration" not in recorded["params"]


def test_every_part_is_recorded_in_arrival_order_and_references_resolve(api: httpx.Client, sim: Simulator) -> None:
    files = [
        ("files", ("a.png", image_bytes(), "image/png")),
        ("first_frame_image", ("first.jpg", image_bytes(fmt="JPEG"), "image/jpeg")),
        ("files", ("clip.mp4", mp4_bytes(), "video/mp4")),
        ("files", ("b.jpg", image_bytes((64, 48), "JPEG"), "application/octet-stream")),  # the bytes tell
        ("last_frame_image", ("last.png", image_bytes(), "image/png")),
    ]
    prompt = "@IMG_1 and @IMG_2 dance with the person from @VID_1, then @IMG_3"
    response = generations_submit(api, prompt, files, duration="10")
    assert response.status_code == 200, response.text

    recorded = task(sim, response.json()["task_id"])
    assert [(f["field"], f["filename"], f["kind"], f["format"]) for f in recorded["files"]] == [
        ("files", "a.png", "image", "png"),
        ("first_frame_image", "first.jpg", "image", "jpeg"),
        ("files", "clip.mp4", "video", "mp4"),
        ("files", "b.jpg", "image", "jpeg"),
        ("last_frame_image", "last.png", "image", "png"),
    ]
    assert recorded["files"][2]["bytes"] == len(mp4_bytes())
    assert recorded["files"][3]["content_type"] == "application/octet-stream"
    # "@IMG_1 First uploaded image file": numbered among the `files` images, frames not counted.
    assert recorded["references"] == {"@IMG_1": 0, "@IMG_2": 3, "@VID_1": 2, "@IMG_3": None}
    assert recorded["params"]["duration"] == "10"  # the form string, as received


@pytest.mark.parametrize(
    ("fields", "files", "param"),
    [
        ({"aspect_ratio": "4:3"}, [], "aspect_ratio"),
        ({"duration": "3"}, [], "duration"),
        ({"duration": "16"}, [], "duration"),
        ({"duration": "5.5"}, [], "duration"),
        ({"duration": "five"}, [], "duration"),
        ({}, [("files", ("a.gif", b"GIF89a" + bytes(64), "image/gif"))], "files"),
        ({}, [("files", ("a.webp", image_bytes(fmt="WEBP"), "image/webp"))], "files"),
        ({}, [("first_frame_image", ("f.mp4", mp4_bytes(), "video/mp4"))], "first_frame_image"),
        ({}, [("files", (None, "https://example.com/a.png"))], "files"),
        ({}, [("image", ("a.png", image_bytes(), "image/png"))], "image"),
        ({}, [("files", ("huge.png", image_bytes() + bytes(50 * 1024 * 1024), "image/png"))], "files"),
    ],
    ids=[
        "aspect 4:3",
        "3 s",
        "16 s",
        "5.5 s",
        "five",
        "gif",
        "webp",
        "video as frame",
        "url text",
        "unknown field",
        "over 50MB",
    ],
)
def test_bad_requests_are_400_naming_the_field(
    api: httpx.Client, sim: Simulator, fields: dict[str, str], files: list[tuple[str, Any]], param: str
) -> None:
    response = generations_submit(api, files=files, **fields)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert sim.tasks() == []


def test_other_models_and_json_bodies_are_refused(api: httpx.Client) -> None:
    wrong_model = api.post("/v1/video/generations", files={"model": (None, "seedance-1.0"), "prompt": (None, "p")})
    assert wrong_model.status_code == 400 and wrong_model.json()["error"]["param"] == "model"
    json_body = api.post("/v1/video/generations", json={"model": "seedance-2.0", "prompt": "p"})
    assert json_body.status_code == 400 and "multipart/form-data" in json_body.json()["error"]["message"]
    assert api.get("/v1/video/generations/task-20260501120000-abc123").status_code == 404


def test_polling_needs_the_key(api: httpx.Client) -> None:
    task_id = generations_submit(api).json()["task_id"]
    assert httpx.get(f"{api.base_url}/v1/video/generations/{task_id}").status_code == 401
