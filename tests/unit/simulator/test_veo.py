"""Veo 3.1 image-to-video on `/v1/videos`, as seed 003 documents it: multipart only, a required
`input_reference`, string durations, resolution x aspectRatio pixels, the short answer shape, progress 0/50/100,
and the 400 that `/content` gives right after completion."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.simulator.conftest import CONTENT_400_WINDOW
from tests.unit.simulator.support import VEO, eventually, image_bytes, probe_bytes, task, veo_submit, wait_video
from vidrelay.simulator.server import Simulator

# Long enough that every status lasts a few hundred ms, so a loaded machine's slow polls still see each one.
ORDER_SIM_SECONDS = 2.0
SEED_FIELDS = {"duration": "8", "size": "1280x720", "resolution": "720p", "aspectRatio": "16:9", "seed": "20260521"}


def test_submit_answers_exactly_the_seeds_shape(api: httpx.Client) -> None:
    before = int(time.time())
    response = veo_submit(api, **SEED_FIELDS)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"id", "task_id", "object", "model", "status", "progress", "created_at"}
    assert re.fullmatch(r"task_[A-Za-z0-9]{16}", body["id"])
    assert body["task_id"] == body["id"]
    assert (body["object"], body["model"], body["status"], body["progress"]) == ("video", VEO, "queued", 0)
    assert isinstance(body["created_at"], int) and before <= body["created_at"] <= time.time()


def test_polls_show_coarse_progress_and_completed_at_only_when_completed(api: httpx.Client, sim: Simulator) -> None:
    sim.sim_seconds = ORDER_SIM_SECONDS
    video_id = veo_submit(api).json()["task_id"]
    seen: list[dict[str, Any]] = []

    def completed() -> bool | None:
        body = api.get(f"/v1/videos/{video_id}").raise_for_status().json()
        seen.append(body)
        return True if body["status"] == "completed" else None

    eventually(completed, every_s=0.02)

    assert {b["status"] for b in seen} >= {"queued", "in_progress", "completed"}
    assert {b["progress"] for b in seen} <= {0, 50, 100}
    assert all(("completed_at" in b) == (b["status"] == "completed") for b in seen)
    assert [b["progress"] for b in seen] == sorted(b["progress"] for b in seen)


def test_content_is_400_for_a_moment_after_completion_then_the_mp4(
    api: httpx.Client, sim: Simulator, tmp_path: Path
) -> None:
    video_id = veo_submit(api, duration="4").json()["task_id"]
    video = wait_video(api, video_id)
    assert video["status"] == "completed"

    early = api.get(f"/v1/videos/{video_id}/content")
    assert early.status_code == 400, "seed 003: /content returns 400 right after status flips to completed"
    time.sleep(CONTENT_400_WINDOW)
    late = api.get(f"/v1/videos/{video_id}/content")

    assert late.status_code == 200 and late.headers["Content-Type"] == "video/mp4"
    assert probe_bytes(late.content, tmp_path) == (1280, 720, pytest.approx(4.0, abs=0.1))
    assert task(sim, video_id)["content_requests"] == 2


def test_content_needs_the_key(api: httpx.Client) -> None:
    video_id = veo_submit(api, "[sim:content_400_window=0]").json()["task_id"]
    wait_video(api, video_id)
    assert httpx.get(f"{api.base_url}/v1/videos/{video_id}/content").status_code == 401


def test_parameters_are_recorded_as_received(api: httpx.Client, sim: Simulator) -> None:
    video_id = veo_submit(api, negative_prompt="blurry, watermark", **SEED_FIELDS).json()["task_id"]

    recorded = task(sim, video_id)
    assert recorded["dialect"] == "videos" and recorded["model"] == VEO
    assert recorded["params"]["duration"] == "8"  # a string, as multipart sends it and the seed demands
    assert recorded["params"]["seed"] == "20260521"
    assert recorded["params"]["negative_prompt"] == "blurry, watermark"
    assert (recorded["size"], recorded["output"]) == ("1280x720", {"width": 1280, "height": 720, "seconds": 8})
    reference = recorded["input_reference"]
    assert (reference["field"], reference["filename"], reference["format"]) == ("input_reference", "l.png", "png")
    assert (reference["width"], reference["height"]) == (320, 180)  # need not match the output size


def test_defaults_are_eight_seconds_of_1280x720(api: httpx.Client, sim: Simulator) -> None:
    video_id = veo_submit(api).json()["task_id"]
    assert task(sim, video_id)["output"] == {"width": 1280, "height": 720, "seconds": 8}


@pytest.mark.parametrize(
    ("fields", "size"),
    [
        ({"aspectRatio": "9:16"}, "720x1280"),
        ({"resolution": "1080p"}, "1920x1080"),
        ({"resolution": "1080p", "aspectRatio": "9:16"}, "1080x1920"),
        ({"resolution": "4k"}, "3840x2160"),
        ({"resolution": "4k", "aspectRatio": "9:16"}, "2160x3840"),
        ({"size": "1080x1920"}, "1080x1920"),  # size alone decides both
        ({"size": "1280x720", "resolution": "1080p"}, "1920x1080"),  # resolution outranks size
        ({"size": "720x1280", "aspectRatio": "16:9"}, "1280x720"),  # and so does aspectRatio
    ],
)
def test_output_pixels_are_resolution_by_aspect_ratio(
    api: httpx.Client, sim: Simulator, fields: dict[str, str], size: str
) -> None:
    # [sim:fail]: only the recorded size matters here, and a failing task costs no (4K) encode.
    response = veo_submit(api, "[sim:fail]", duration="8", **fields)
    assert response.status_code == 200, response.text
    assert task(sim, response.json()["id"])["size"] == size


@pytest.mark.parametrize(("fmt", "content_type"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_jpeg_and_webp_references_are_accepted(api: httpx.Client, sim: Simulator, fmt: str, content_type: str) -> None:
    response = api.post(
        "/v1/videos",
        data={"model": VEO, "prompt": "p"},
        files={"input_reference": ("ref", image_bytes((640, 480), fmt), content_type)},
    )
    assert response.status_code == 200, response.text
    assert task(sim, response.json()["id"])["input_reference"]["format"] == fmt.lower()


def test_the_bytes_decide_not_the_declared_type(api: httpx.Client, sim: Simulator) -> None:
    png_as_octets = ("ref.bin", image_bytes(), "application/octet-stream")
    ok = api.post("/v1/videos", data={"model": VEO, "prompt": "p"}, files={"input_reference": png_as_octets})
    assert ok.status_code == 200, ok.text
    assert task(sim, ok.json()["id"])["input_reference"]["format"] == "png"

    text_as_png = ("ref.png", b"not an image at all\n" * 10, "image/png")
    bad = api.post("/v1/videos", data={"model": VEO, "prompt": "p"}, files={"input_reference": text_as_png})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "input_reference"


def test_of_several_images_only_the_first_is_kept(api: httpx.Client, sim: Simulator) -> None:
    response = api.post(
        "/v1/videos",
        data={"model": VEO, "prompt": "p"},
        files=[
            ("input_reference", ("first.png", image_bytes(), "image/png")),
            ("input_reference", ("second.jpg", image_bytes(fmt="JPEG"), "image/jpeg")),
        ],
    )
    recorded = task(sim, response.json()["id"])
    assert recorded["input_reference"]["filename"] == "first.png"
    assert [f["filename"] for f in recorded["files"]] == ["first.png", "second.jpg"]


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"duration": "5"}, "duration", ['"4", "6", "8"']),
        ({"duration": "4", "resolution": "1080p"}, "duration", ['"8"', "1080p"]),
        ({"duration": "6", "resolution": "4k"}, "duration", ['"8"', "4k"]),
        ({"duration": "4", "size": "1920x1080"}, "duration", ['"8"', "1080p"]),
        ({"resolution": "2k"}, "resolution", ["2k"]),
        ({"aspectRatio": "1:1"}, "aspectRatio", ["1:1"]),
        ({"size": "1024x1024"}, "size", ["1024x1024"]),
        ({"seed": "abc"}, "seed", ["abc"]),
    ],
)
def test_bad_fields_are_400_naming_the_field(
    api: httpx.Client, sim: Simulator, fields: dict[str, str], param: str, words: list[str]
) -> None:
    response = veo_submit(api, **fields)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert all(word in error["message"] for word in words), error
    assert sim.tasks() == []


def test_a_json_body_is_400_asking_for_multipart(api: httpx.Client, sim: Simulator) -> None:
    response = api.post("/v1/videos", json={"model": VEO, "prompt": "p", "duration": "8"})

    assert response.status_code == 400
    assert "multipart/form-data" in response.json()["error"]["message"]
    assert sim.tasks() == []


def test_the_reference_is_required(api: httpx.Client) -> None:
    response = api.post("/v1/videos", data={"model": VEO, "prompt": "p"}, files={"x": ("x", b"", "text/plain")})
    assert response.status_code == 400 and response.json()["error"]["param"] == "input_reference"

    text_only = api.post("/v1/videos", files={"model": (None, VEO), "prompt": (None, "p")})
    assert text_only.status_code == 400 and text_only.json()["error"]["code"] == "missing"


def test_another_field_name_is_refused_naming_both(api: httpx.Client) -> None:
    response = api.post(
        "/v1/videos", data={"model": VEO, "prompt": "p"}, files={"image": ("l.png", image_bytes(), "image/png")}
    )

    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "input_reference" in message and "image" in message


def test_a_url_instead_of_a_file_is_refused(api: httpx.Client) -> None:
    response = api.post(
        "/v1/videos",
        files={
            "model": (None, VEO),
            "prompt": (None, "p"),
            "input_reference": (None, "https://cdn.example.com/img.png"),
        },
    )
    assert response.status_code == 400
    assert "URLs" in response.json()["error"]["message"]


def test_sora_keeps_its_own_shape_and_no_400_window(api: httpx.Client, sim: Simulator) -> None:
    video = api.post("/v1/videos", json={"model": "sora-2", "prompt": "p", "seconds": "4"}).json()
    assert re.fullmatch(r"video_[0-9a-f]{24}", video["id"]) and "task_id" not in video
    assert (video["size"], video["seconds"], video["quality"]) == ("720x1280", "4", "standard")

    assert wait_video(api, video["id"])["status"] == "completed"
    assert api.get(f"/v1/videos/{video['id']}/content").status_code == 200
