"""The official `openai` SDK, pointed at `vidrelay local`, drives the whole video lifecycle."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest

from tests.e2e.conftest import LocalStackProcess
from vidrelay.simulator.mp4gen import probe

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture
def sdk(local_stack: LocalStackProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=local_stack.api_url, api_key=local_stack.api_key, max_retries=0)


def test_create_retrieve_download_list_delete(sdk: openai.OpenAI, tmp_path: Path) -> None:
    video = sdk.videos.create(model="sora-2", prompt="a lighthouse in a storm", seconds="4", size="1280x720")
    assert video.id.startswith("video_")
    assert video.status == "queued"
    assert (video.model, video.seconds, video.size) == ("sora-2", "4", "1280x720")

    deadline = time.monotonic() + 60
    while video.status not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.3)
        video = sdk.videos.retrieve(video.id)
    assert video.status == "completed", video
    assert video.progress == 100

    content = sdk.videos.download_content(video.id)
    target = tmp_path / "sdk.mp4"
    content.write_to_file(target)
    assert target.read_bytes()[4:8] == b"ftyp"
    width, height, duration = probe(target)
    assert (width, height) == (1280, 720)
    assert duration == pytest.approx(4.0, abs=0.1)

    listed = [item.id for item in sdk.videos.list(limit=100, order="desc")]
    assert video.id in listed

    deleted = sdk.videos.delete(video.id)
    assert deleted.id == video.id and deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        sdk.videos.retrieve(video.id)
    assert video.id not in [item.id for item in sdk.videos.list(limit=100)]


def test_wrong_key_is_authentication_error(local_stack: LocalStackProcess) -> None:
    wrong = openai.OpenAI(base_url=local_stack.api_url, api_key="sk-not-a-real-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.videos.list()
    assert caught.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        wrong.videos.create(model="sora-2", prompt="x", seconds="4", size="1280x720")


def test_unknown_id_is_not_found(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.videos.retrieve("video_00000000000000000000000000000000")
    assert caught.value.status_code == 404
    with pytest.raises(openai.NotFoundError):
        sdk.videos.download_content("video_00000000000000000000000000000000")


def test_wrong_seconds_is_bad_request_naming_seconds(sdk: openai.OpenAI, local_stack: LocalStackProcess) -> None:
    before = local_stack.sim_submits()
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.videos.create(model="sora-2", prompt="x", seconds="5", size="1280x720")  # type: ignore[arg-type]
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == "seconds"
    assert "'5'" in error["message"] and '"4"' in error["message"]
    assert local_stack.sim_submits() == before  # nothing went upstream


def test_content_before_completion_is_bad_request(sdk: openai.OpenAI) -> None:
    video = sdk.videos.create(model="sora-2", prompt="not yet", seconds="4", size="720x1280")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.videos.download_content(video.id)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "video_not_ready"


def png(size: tuple[int, int]) -> bytes:
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def test_image_to_video_with_metadata_and_webhook_events_as_the_sdk_sends_them(sdk: openai.OpenAI) -> None:
    # The SDK sends a file as multipart; `metadata` then goes as `metadata[order]` fields and the list as
    # repeated `webhook_events[]` parts.
    video = sdk.videos.create(
        model="sora-2",
        prompt="the picture comes alive",
        seconds="4",
        size="1280x720",
        input_reference=("still.png", png((640, 360)), "image/png"),
        extra_body={
            "metadata": {"order": "42", "customer": "acme"},
            "webhook_events": ["video.completed", "video.failed"],
            "webhook_url": "http://127.0.0.1:9/hook",
        },
    )
    deadline = time.monotonic() + 60
    while video.status not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.3)
        video = sdk.videos.retrieve(video.id)

    assert video.status == "completed", video
    extra = video.model_extra or {}
    assert extra["metadata"] == {"order": "42", "customer": "acme"}
    assert extra["webhook"]["events"] == ["video.completed", "video.failed"]
    assert [(r["field"], r["width"], r["height"]) for r in extra["references"]] == [("input_reference", 1280, 720)]


def test_models_retrieve_reads_one_catalog_entry(sdk: openai.OpenAI) -> None:
    model = sdk.models.retrieve("seedance-2.0")
    assert (model.id, model.object, model.owned_by) == ("seedance-2.0", "model", "yelinai")
    assert (model.model_extra or {})["seconds"]["type"] == "integer"
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.models.retrieve("sora-3")
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "model_id"


def test_remix_is_refused_clearly_without_a_retry(sdk: openai.OpenAI) -> None:
    video = sdk.videos.create(model="sora-2", prompt="a boat", seconds="4", size="1280x720")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.videos.remix(video.id, prompt="the same boat at night")
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "remix_not_supported"
    assert "not offered" in body["message"]
