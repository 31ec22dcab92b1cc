"""The S3 intake through `vidrelay local`, as a pipeline would use it: boto3 against the stack's AWS endpoint puts
files into `inbox/local/` of the intake bucket and waits (polling, with a deadline) for what appears in
`outbox/local/`; the API tells how many jobs were made.
"""

from __future__ import annotations

import io
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.e2e.conftest import LocalStackProcess
from vidrelay.simulator.mp4gen import probe

pytestmark = pytest.mark.e2e

DEADLINE_S = 60.0


def png(size: tuple[int, int] = (1280, 720)) -> bytes:
    image = Image.new("RGB", size, (20, 110, 190))
    image.paste((240, 210, 50), (size[0] // 3, size[1] // 3, 2 * size[0] // 3, 2 * size[1] // 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class Intake:
    """The intake bucket of a running local stack, seen through boto3 as a user's pipeline sees it."""

    def __init__(self, stack: LocalStackProcess) -> None:
        self.stack = stack
        self.s3 = stack.aws("s3")
        self.sqs = stack.aws("sqs")
        self.bucket = str(stack.info["intake_bucket"])

    def put(self, key: str, body: bytes, **metadata: str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata=metadata)

    def outbox(self, prefix: str) -> dict[str, int]:
        answer = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return {o["Key"]: int(o["Size"]) for o in answer.get("Contents", [])}

    def wait_for(self, *keys: str, timeout_s: float = DEADLINE_S) -> dict[str, bytes]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            listed = self.outbox("outbox/")
            if all(key in listed for key in keys):
                return {key: self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read() for key in keys}
            time.sleep(0.2)
        raise AssertionError(f"{keys} did not appear in {timeout_s} s; the outbox holds {sorted(self.outbox(''))}")

    def wait_idle(self, timeout_s: float = DEADLINE_S) -> None:
        """Until the intake queue holds no message, waiting or in flight: every upload so far has been handled."""
        (url,) = [
            u
            for u in self.sqs.list_queues(QueueNamePrefix="vidrelay-local-IntakeQueue-").get("QueueUrls", [])
            if "IntakeQueue-" in u
        ]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            if attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}:
                return
            time.sleep(0.2)
        raise AssertionError(f"the intake queue was still busy after {timeout_s} s")

    def jobs_with(self, prompt: str) -> list[dict[str, Any]]:
        with self.stack.http() as client:
            listed = client.get("/videos", params={"limit": 100}).raise_for_status().json()["data"]
        return [v for v in listed if v["prompt"] == prompt]


@pytest.fixture(scope="module")
def intake(local_stack: LocalStackProcess) -> Intake:
    return Intake(local_stack)


def unique(stem: str) -> str:
    return f"{stem}-{secrets.token_hex(4)}"


def test_a_png_with_metadata_becomes_an_mp4_and_its_video_in_the_outbox(intake: Intake, tmp_path: Path) -> None:
    name, prompt = unique("harbour"), unique("a harbour at dawn")
    intake.put(f"inbox/local/{name}.png", png(), prompt=prompt, model="sora-2", seconds="4", size="1280x720")

    found = intake.wait_for(f"outbox/local/{name}.mp4", f"outbox/local/{name}.json")

    video = json.loads(found[f"outbox/local/{name}.json"])
    assert (video["object"], video["status"], video["prompt"], video["size"]) == (
        "video",
        "completed",
        prompt,
        "1280x720",
    )
    mp4 = found[f"outbox/local/{name}.mp4"]
    assert video["output"]["bytes"] == len(mp4) and mp4[4:8] == b"ftyp"
    (tmp_path / "out.mp4").write_bytes(mp4)
    width, height, duration = probe(tmp_path / "out.mp4")
    assert (width, height) == (1280, 720) and duration > 0
    assert [v["id"] for v in intake.jobs_with(prompt)] == [video["id"]]
    assert intake.outbox(f"outbox/local/{name}.error") == {}


def test_a_text_file_named_png_yields_only_an_error_file(intake: Intake) -> None:
    name, prompt = unique("fake"), unique("never made")
    intake.put(f"inbox/local/{name}.png", b"just some words, no pixels\n", prompt=prompt)

    found = intake.wait_for(f"outbox/local/{name}.error.json")

    error = json.loads(found[f"outbox/local/{name}.error.json"])["error"]
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        "input_reference",
        "invalid_image_format",
    )
    intake.wait_idle()
    assert list(intake.outbox(f"outbox/local/{name}.")) == [f"outbox/local/{name}.error.json"]
    assert intake.jobs_with(prompt) == []


@pytest.mark.parametrize("first", ["image", "sidecar"])
def test_an_image_and_its_sidecar_start_one_job_whichever_lands_first(intake: Intake, first: str) -> None:
    name, prompt = unique(f"pair-{first}"), unique("a lighthouse in a storm")
    sidecar = json.dumps({"prompt": prompt, "model": "sora-2", "seconds": "4", "size": "1280x720"}).encode()
    uploads = [(f"inbox/local/{name}.png", png((1600, 1200))), (f"inbox/local/{name}.json", sidecar)]
    if first == "sidecar":
        uploads.reverse()
    intake.put(*uploads[0])
    # Long enough for the first file's event to be handled alone (the stack's settle time is 5 s).
    time.sleep(1.0)
    intake.put(*uploads[1])

    found = intake.wait_for(f"outbox/local/{name}.mp4", f"outbox/local/{name}.json")
    intake.wait_idle()  # the first file's message too (a sidecar's comes back after its settle time)

    video = json.loads(found[f"outbox/local/{name}.json"])
    assert video["status"] == "completed" and video["size"] == "1280x720"
    assert [v["id"] for v in intake.jobs_with(prompt)] == [video["id"]]


def test_the_same_upload_replayed_starts_no_second_job(intake: Intake) -> None:
    name, prompt = unique("replay"), unique("a red fox in snow")
    metadata = {"prompt": prompt, "seconds": "4", "size": "1280x720"}
    intake.put(f"inbox/local/{name}.png", png(), **metadata)
    first = json.loads(intake.wait_for(f"outbox/local/{name}.json")[f"outbox/local/{name}.json"])

    intake.put(f"inbox/local/{name}.png", png(), **metadata)  # same bucket, key, bytes (ETag) and instructions
    intake.wait_idle()

    assert [v["id"] for v in intake.jobs_with(prompt)] == [first["id"]]


def test_a_key_with_spaces_and_unicode_comes_out_under_the_same_name(intake: Intake) -> None:
    name, prompt = f"Sommer am Fluß {secrets.token_hex(3)} (ü+é) 夏", unique("a river in summer")
    intake.put(f"inbox/local/{name}.png", png(), prompt=prompt, size="1280x720")

    found = intake.wait_for(f"outbox/local/{name}.json", f"outbox/local/{name}.mp4")

    assert json.loads(found[f"outbox/local/{name}.json"])["prompt"] == prompt


def test_a_sidecar_with_invalid_fields_yields_only_an_error_file(intake: Intake) -> None:
    name = unique("bad-sidecar")
    fields = {"prompt": "x", "model": "sora-2", "seconds": 4, "size": "640x480"}
    intake.put(f"inbox/local/{name}.json", json.dumps(fields).encode())

    found = intake.wait_for(f"outbox/local/{name}.error.json")

    error = json.loads(found[f"outbox/local/{name}.error.json"])["error"]
    assert (error["param"], error["code"]) == ("seconds", "invalid_value") and "a string" in error["message"]
    intake.wait_idle()
    assert list(intake.outbox(f"outbox/local/{name}.")) == [f"outbox/local/{name}.error.json"]


def test_an_unknown_tenants_upload_starts_nothing(intake: Intake) -> None:
    ghost, prompt = unique("nobody"), unique("not for anyone")
    intake.put(f"inbox/{ghost}/x.png", png(), prompt=prompt)

    found = intake.wait_for(f"outbox/{ghost}/x.error.json")

    error = json.loads(found[f"outbox/{ghost}/x.error.json"])["error"]
    assert error["code"] == "unknown_tenant" and ghost in error["message"]
    intake.wait_idle()
    assert list(intake.outbox(f"outbox/{ghost}/")) == [f"outbox/{ghost}/x.error.json"]
    assert intake.jobs_with(prompt) == []
