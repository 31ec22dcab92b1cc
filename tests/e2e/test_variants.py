"""A stored video gets a thumbnail and a spritesheet, served as the MP4 is: the openai SDK's
`download_content(variant=...)` against `vidrelay local` returns real images of the video's aspect ratio."""

from __future__ import annotations

import io
import time
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from tests.e2e.conftest import LocalStackProcess, wait_for_status

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture
def sdk(local_stack: LocalStackProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=local_stack.api_url, api_key=local_stack.api_key, max_retries=0)


def wait_for_variants(client: httpx.Client, video_id: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    video = wait_for_status(client, video_id, {"completed", "failed"}, timeout_s)
    while time.monotonic() < deadline and video["variants"]["status"] == "pending":
        time.sleep(0.2)
        video = client.get(f"/videos/{video_id}").raise_for_status().json()
    return video


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()  # the whole picture, not only its header: a truncated file fails here
    return image


@pytest.mark.parametrize(("size", "ratio"), [("1280x720", 16 / 9), ("720x1280", 9 / 16)])
def test_the_sdk_downloads_a_thumbnail_and_a_spritesheet_of_the_videos_aspect_ratio(
    sdk: openai.OpenAI, local_stack: LocalStackProcess, size: str, ratio: float
) -> None:
    video = sdk.videos.create(model="sora-2", prompt=f"a paper boat on a pond, {size}", seconds="4", size=size)
    with local_stack.http() as client:
        shown = wait_for_variants(client, video.id)
    assert shown["status"] == "completed", shown
    assert shown["variants"]["status"] == "ready", shown["variants"]
    assert shown["variants"]["available"] == ["video", "thumbnail", "spritesheet"]

    thumbnail = decoded(sdk.videos.download_content(video.id, variant="thumbnail").read())
    spritesheet = decoded(sdk.videos.download_content(video.id, variant="spritesheet").read())

    assert thumbnail.format == "WEBP"
    assert thumbnail.size == (shown["variants"]["thumbnail"]["width"], shown["variants"]["thumbnail"]["height"])
    assert thumbnail.width / thumbnail.height == pytest.approx(ratio, rel=0.01)
    sheet = shown["variants"]["spritesheet"]
    assert spritesheet.format == "JPEG"
    assert spritesheet.size == (sheet["columns"] * sheet["tile_width"], sheet["rows"] * sheet["tile_height"])
    assert sheet["tile_width"] / sheet["tile_height"] == pytest.approx(ratio, rel=0.01)
    assert sheet["columns"] * sheet["rows"] == 10 and sheet["interval_s"] == pytest.approx(0.4)


def test_the_variants_redirect_to_presigned_urls_as_the_video_does(local_stack: LocalStackProcess) -> None:
    with local_stack.http() as client:
        created = client.post(
            "/videos", json={"model": "sora-2", "prompt": "a kite", "seconds": "4", "size": "1280x720"}
        ).json()
        wait_for_variants(client, created["id"])

        answers = {
            variant: client.get(f"/videos/{created['id']}/content", params={"variant": variant})
            for variant in ("video", "thumbnail", "spritesheet")
        }

    for variant, answer in answers.items():
        assert answer.status_code == 302, (variant, answer.text)
        fetched = httpx.get(answer.headers["location"], timeout=30)
        assert fetched.status_code == 200
        expected = {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg"}[variant]
        assert fetched.headers["content-type"] == expected


def test_deleting_a_video_removes_its_previews(local_stack: LocalStackProcess) -> None:
    with local_stack.http() as client:
        created = client.post(
            "/videos", json={"model": "sora-2", "prompt": "a lantern", "seconds": "4", "size": "1280x720"}
        ).json()
        video = wait_for_variants(client, created["id"])
        client.delete(f"/videos/{created['id']}").raise_for_status()

    bucket = local_stack.info["results_bucket"]
    prefix = video["output"]["s3_uri"].removeprefix(f"s3://{bucket}/").removesuffix(".mp4")
    left = local_stack.aws("s3").list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    assert left == []


def png_of(color: tuple[int, int, int], size: tuple[int, int] = (1280, 720)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def test_outputs_differ_by_prompt_and_the_thumbnail_shows_the_reference_image(
    sdk: openai.OpenAI, local_stack: LocalStackProcess
) -> None:
    # Given two text-to-video jobs with different prompts, and an image-to-video job with one of those prompts
    prompt = "a red balloon over the sea"
    created = [
        sdk.videos.create(model="sora-2", prompt=prompt, seconds="4", size="1280x720"),
        sdk.videos.create(model="sora-2", prompt="a blue whale under the ice", seconds="4", size="1280x720"),
        sdk.videos.create(
            model="sora-2",
            prompt=prompt,
            seconds="4",
            size="1280x720",
            input_reference=("red.png", png_of((220, 20, 30)), "image/png"),
        ),
    ]
    with local_stack.http() as client:
        shown = [wait_for_variants(client, video.id) for video in created]

    # Then every output is a different video
    assert len({video["output"]["sha256"] for video in shown}) == 3, [v["output"] for v in shown]
    # And the image-to-video thumbnail shows the reference image where the text-only one shows its own picture
    pictures = [
        decoded(sdk.videos.download_content(video["id"], variant="thumbnail").read()).convert("RGB")
        for video in (shown[0], shown[2])
    ]
    centres = [picture.getpixel((picture.width // 2, picture.height // 3)) for picture in pictures]
    red, green, blue = centres[1]
    assert red > 150 and green < 80 and blue < 80, centres
    assert centres[0] != centres[1]


@pytest.mark.parametrize(
    "request_fields",
    [
        pytest.param({"json": {"model": "seedance-2.0", "duration": 4, "aspect_ratio": "1:1"}}, id="seedance-1:1"),
        pytest.param({"json": {"model": "sora_video2"}}, id="chat-stream"),
    ],
)
def test_every_upstream_familys_video_gets_its_previews(
    local_stack: LocalStackProcess, request_fields: dict[str, Any]
) -> None:
    body = {**request_fields["json"], "prompt": "a windmill at noon"}
    with local_stack.http() as client:
        created = client.post("/videos", json=body).raise_for_status().json()
        video = wait_for_variants(client, created["id"], timeout_s=90)

    output, variants = video["output"], video["variants"]
    assert variants["status"] == "ready", variants
    thumbnail = variants["thumbnail"]
    assert thumbnail["width"] / thumbnail["height"] == pytest.approx(output["width"] / output["height"], rel=0.01)
