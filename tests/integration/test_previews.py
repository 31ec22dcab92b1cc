"""Thumbnails and spritesheets are derived after completion, against moto and the simulator; whatever goes wrong
there, the job stays completed and its MP4 downloadable."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from vidrelay_core.contract import Video
from vidrelay_core.errors import InvalidRequest, NotReady

from .conftest import Harness, Tenant


class Unreachable:
    """An S3 client whose object reads fail as a network outage does."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_object(self, **_: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="https://s3.example")


def completed(h: Harness, case: str) -> tuple[Tenant, str]:
    tenant = h.new_tenant()
    video_id = h.run_happy_path(h.process(), tenant, case, idempotency_key=f"key-{case}")
    (job,) = h.jobs(tenant)
    assert job.state == "completed"
    return tenant, video_id


def shown(h: Harness, tenant: Tenant, video_id: str) -> dict[str, Any]:
    job = h.process().parts.queries.get(tenant.name, video_id)
    return Video.from_job(job, retention_days=30).model_dump(mode="json")


def test_a_completed_video_gets_its_previews_recorded_once(harness: Harness) -> None:
    h = harness
    tenant, video_id = completed(h, "previews-ok")
    assert shown(h, tenant, video_id)["variants"]["status"] == "pending"

    outcomes = [h.process().parts.thumbnailer.derive(video_id) for _ in range(2)]

    assert outcomes == ["derived", "skipped"]  # a repeated SNS delivery changes nothing
    variants = shown(h, tenant, video_id)["variants"]
    assert variants["status"] == "ready" and variants["available"] == ["video", "thumbnail", "spritesheet"]
    (job,) = h.jobs(tenant)
    assert job.state == "completed" and job.event_published


def test_a_codec_that_cannot_be_decoded_is_shown_and_leaves_the_job_completed(harness: Harness) -> None:
    # Given a completed video whose stored MP4 names a codec no decoder knows (same bytes otherwise)
    h = harness
    tenant, video_id = completed(h, "previews-codec")
    (job,) = h.jobs(tenant)
    assert job.output is not None
    s3 = h.stack.s3
    original = s3.get_object(Bucket=job.output.bucket, Key=job.output.key)["Body"].read()
    s3.put_object(Bucket=job.output.bucket, Key=job.output.key, Body=original.replace(b"avc1", b"zzzz"))

    # When the thumbnailer runs on its video.completed event
    outcome = h.process().parts.thumbnailer.derive(video_id)

    # Then the job is still completed, the Video object says why there are no previews, and the MP4 is served
    assert outcome == "failed"
    video = shown(h, tenant, video_id)
    assert video["status"] == "completed"
    assert video["variants"]["status"] == "failed" and video["variants"]["available"] == ["video"]
    assert video["variants"]["error"]["code"] == "codec_not_decodable"
    assert "zzzz" in video["variants"]["error"]["message"]
    queries = h.process().parts.queries
    assert queries.content_url(tenant.name, video_id, "video")
    with pytest.raises(InvalidRequest) as refused:
        queries.content_url(tenant.name, video_id, "thumbnail")
    assert refused.value.field == "variant" and "zzzz" in refused.value.message
    # And a repeated event does not try again
    assert h.process().parts.thumbnailer.derive(video_id) == "skipped"


def test_an_s3_failure_is_raised_for_a_retry_and_leaves_the_job_completed(harness: Harness) -> None:
    # Given a completed video, and a thumbnailer that cannot reach S3
    h = harness
    tenant, video_id = completed(h, "previews-s3")
    thumbnailer = h.process().parts.thumbnailer
    thumbnailer._s3 = Unreachable(thumbnailer._s3)

    # When it runs, the failure is raised (Lambda's async retries and on-failure queue take it from there)
    with pytest.raises(EndpointConnectionError):
        thumbnailer.derive(video_id)

    # Then the job is unchanged, its previews pending, and the next try makes them
    video = shown(h, tenant, video_id)
    assert video["status"] == "completed" and video["variants"]["status"] == "pending"
    with pytest.raises(NotReady):
        h.process().parts.queries.content_url(tenant.name, video_id, "spritesheet")
    assert h.process().parts.thumbnailer.derive(video_id) == "derived"


def test_deleting_the_video_while_its_previews_are_made_leaves_nothing(harness: Harness) -> None:
    h = harness
    tenant, video_id = completed(h, "previews-deleted")
    (job,) = h.jobs(tenant)
    assert job.output is not None
    thumbnailer = h.process().parts.thumbnailer
    real_record = thumbnailer.jobs.record_previews

    def deleted_first(*args: Any, **kwargs: Any) -> bool:
        h.process().parts.delete.delete(tenant.name, video_id)
        return real_record(*args, **kwargs)

    thumbnailer.jobs.record_previews = deleted_first  # type: ignore[method-assign]

    assert thumbnailer.derive(video_id) == "gone"
    prefix = job.output.key.removesuffix(".mp4")
    assert h.stack.s3.list_objects_v2(Bucket=job.output.bucket, Prefix=prefix).get("KeyCount", 0) == 0
