"""The downloader's transfer: simulator over HTTP → moto S3 over HTTP, multipart in fixed parts.

Checks what lands in S3 (bytes, hash, header facts), that a failure leaves neither an object nor an unfinished
multipart upload, that HTTP errors are classified for the retry decision, and that memory stays bounded by the
part size rather than the file size.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from vidrelay_core.errors import NotAnMp4, TransferError, TruncatedDownload
from vidrelay_core.transfer import HttpStatusError, MiB, stream_to_s3, stream_url_to_s3

from vidrelay.ports import free_port
from vidrelay.simulator import mp4gen
from vidrelay.simulator.server import Simulator

BUCKET = "transfer-tests"
KEY = "videos/t/video_x.mp4"
AUTH = {"Authorization": "Bearer sk-transfer-test"}


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    # moto in its own process: it keeps S3 objects in memory, and the memory test must see only ours.
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(s3={"addressing_style": "path"}),
    )
    client.create_bucket(Bucket=BUCKET)
    yield client
    server.terminate()
    server.wait(timeout=10)


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("moto_server did not start")


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    sim = Simulator(port=0, sim_seconds=0.0).start()
    yield sim
    sim.stop()


@pytest.fixture(autouse=True)
def empty_bucket(s3: Any) -> None:
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])


def finished_video(simulator: Simulator, prompt: str, size: str = "1280x720", seconds: str = "4") -> str:
    """Creates a task on the simulator, waits for it and returns its content URL."""
    body = {"model": "sora-2", "prompt": prompt, "seconds": seconds, "size": size}
    video = httpx.post(f"{simulator.url}/v1/videos", json=body, headers=AUTH).raise_for_status().json()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = httpx.get(f"{simulator.url}/v1/videos/{video['id']}", headers=AUTH).json()["status"]
        if status == "completed":
            return f"{simulator.url}/v1/videos/{video['id']}/content"
        time.sleep(0.05)
    raise AssertionError("the simulator did not finish")


def assert_nothing_left(s3: Any) -> None:
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_small_video_lands_whole_with_its_facts(s3: Any, simulator: Simulator) -> None:
    url = finished_video(simulator, "a small clip")
    with httpx.Client() as client:
        result = stream_url_to_s3(client, "GET", url, headers=AUTH, s3_client=s3, bucket=BUCKET, key=KEY)
    stored = s3.get_object(Bucket=BUCKET, Key=KEY)
    data = stored["Body"].read()
    assert data[4:8] == b"ftyp"
    assert result.bytes == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert (result.width, result.height) == (1280, 720)
    assert result.duration_s == pytest.approx(4.0, abs=0.05)
    assert result.parts == 1
    assert stored["ContentType"] == "video/mp4"


def test_large_video_goes_up_in_fixed_parts(s3: Any, simulator: Simulator) -> None:
    total = 23 * MiB + 12345
    url = finished_video(simulator, f"a padded clip [sim:content_pad={total}]")
    with httpx.Client() as client:
        result = stream_url_to_s3(
            client, "GET", url, headers=AUTH, s3_client=s3, bucket=BUCKET, key=KEY, part_size=5 * MiB
        )
    assert result.bytes == total
    assert result.parts == 5  # four full 5 MiB parts and the rest
    head = s3.head_object(Bucket=BUCKET, Key=KEY)
    assert head["ContentLength"] == total
    digest = hashlib.sha256()
    for chunk in s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].iter_chunks(MiB):
        digest.update(chunk)
    assert digest.hexdigest() == result.sha256
    assert (result.width, result.height) == (1280, 720)
    assert_nothing_left_but(s3, KEY)


def assert_nothing_left_but(s3: Any, key: str) -> None:
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])] == [key]
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("content_not_mp4=1", NotAnMp4),
        ("content_truncated=1", TruncatedDownload),
    ],
)
def test_bad_bytes_leave_nothing_behind(s3: Any, simulator: Simulator, fault: str, error: type[Exception]) -> None:
    url = finished_video(simulator, f"a broken clip [sim:content_pad={12 * MiB}] [sim:{fault}]")
    with httpx.Client() as client, pytest.raises(error):
        stream_url_to_s3(client, "GET", url, headers=AUTH, s3_client=s3, bucket=BUCKET, key=KEY, part_size=5 * MiB)
    assert_nothing_left(s3)


def test_http_errors_are_classified(s3: Any, simulator: Simulator) -> None:
    url = finished_video(simulator, "a flaky clip [sim:content_500=1]")
    with httpx.Client() as client:
        with pytest.raises(HttpStatusError) as failed:
            stream_url_to_s3(client, "GET", url, headers=AUTH, s3_client=s3, bucket=BUCKET, key=KEY)
        assert failed.value.status == 500 and failed.value.retryable
        # The fault fired once: the retry (what SQS redelivery does) succeeds.
        stream_url_to_s3(client, "GET", url, headers=AUTH, s3_client=s3, bucket=BUCKET, key=KEY)

        missing = f"{simulator.url}/v1/videos/video_00000000000000000000000000000000/content"
        with pytest.raises(HttpStatusError) as gone:
            stream_url_to_s3(client, "GET", missing, headers=AUTH, s3_client=s3, bucket=BUCKET, key="videos/gone.mp4")
        assert gone.value.status == 404 and not gone.value.retryable


def test_connection_reset_is_a_retryable_transfer_error(s3: Any, simulator: Simulator) -> None:
    url = finished_video(simulator, f"a cut clip [sim:content_pad={8 * MiB}] [sim:content_reset=1]")
    with httpx.Client() as client, pytest.raises(TransferError) as failed:
        stream_url_to_s3(client, "GET", url, headers=AUTH, s3_client=s3, bucket=BUCKET, key=KEY, part_size=5 * MiB)
    assert failed.value.retryable
    assert_nothing_left(s3)


def test_memory_is_bounded_by_the_part_size_not_the_file(s3: Any) -> None:
    """80 MiB through 5 MiB parts: the Python heap peaks near (in-flight parts + buffer) times the part size."""
    source = mp4gen.mp4_path(320, 180, 4)
    total = 80 * MiB

    def chunks() -> Iterator[bytes]:
        yield from mp4gen.iter_padded(source, total)

    tracemalloc.start()
    try:
        result = stream_to_s3(chunks(), s3_client=s3, bucket=BUCKET, key=KEY, part_size=5 * MiB, max_in_flight=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.bytes == total and result.parts == 16
    # Two parts uploading, the buffer (up to a part plus a read chunk): about 3.5 parts; 5 leaves slack.
    assert peak < (2 + 3) * 5 * MiB, f"peak {peak / MiB:.1f} MiB for an {total // MiB} MiB file"


def test_a_transfer_past_its_deadline_stops_and_leaves_nothing(s3: Any) -> None:
    # Given a body that slows down once a part went up, and a deadline that passes meanwhile
    source = mp4gen.mp4_path(320, 180, 4)
    deadline = time.monotonic() + 1.5
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for chunk in mp4gen.iter_padded(source, 30 * MiB):
            if sent >= 6 * MiB:
                time.sleep(0.3)  # a slow stretch, each read well inside the read timeout
            sent += len(chunk)
            yield chunk

    # When it is streamed into S3
    with pytest.raises(TransferError) as stopped:
        stream_to_s3(chunks(), s3_client=s3, bucket=BUCKET, key=KEY, part_size=5 * MiB, deadline=deadline)

    # Then it stopped soon after the deadline, retryable, with its started multipart upload aborted
    assert stopped.value.retryable and "ran out of time" in str(stopped.value)
    assert 6 * MiB <= sent < 30 * MiB
    assert time.monotonic() - deadline < 1.0
    assert_nothing_left(s3)
