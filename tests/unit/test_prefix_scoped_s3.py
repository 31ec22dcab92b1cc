"""S3 as a role with prefix-scoped grants sees it (template.yaml: ListBucket only under inputs/ for the poller
and streamer, only under inbox/ and outbox/ for the intake, none on the results bucket for the intake): a
missing key answers 403, not 404. What is gone must still be told from what is refused."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from vidrelay_core.config import Settings
from vidrelay_core.inputs import ReferenceInputs, ReferenceMissing
from vidrelay_core.intake import Intake, Outcome
from vidrelay_core.jobs import IntakeOrigin, Job, Output, StoredReference

from .fakes import Clock, FakeJobStore

RESULTS, INTAKE = "results", "intake"


def _denied(operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
        operation,
    )


class PrefixScopedS3:
    """Objects by (bucket, key). Reading a missing key is AccessDenied, as S3 answers a caller that may not list
    it; keys in `refused` are AccessDenied even though they exist (a real refusal)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, dict[str, str]]] = {}
        self.refused: set[tuple[str, str]] = set()
        self.before_copy: Callable[[], None] | None = None

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, Metadata: Any = None, **_: Any) -> dict[str, Any]:
        self.objects[(Bucket, Key)] = (Body, dict(Metadata or {}))
        return {}

    def _readable(self, bucket: str, key: str, operation: str) -> tuple[bytes, dict[str, str]]:
        if (bucket, key) in self.refused or (bucket, key) not in self.objects:
            raise _denied(operation)
        return self.objects[(bucket, key)]

    def get_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        body, metadata = self._readable(Bucket, Key, "GetObject")
        return {"Body": io.BytesIO(body), "Metadata": metadata, "ContentLength": len(body)}

    def head_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        body, metadata = self._readable(Bucket, Key, "HeadObject")
        return {"Metadata": metadata, "ContentLength": len(body)}

    def list_objects_v2(self, *, Bucket: str, Prefix: str, MaxKeys: int = 1000, **_: Any) -> dict[str, Any]:
        keys = sorted(key for bucket, key in self.objects if bucket == Bucket and key.startswith(Prefix))
        return {"Contents": [{"Key": key} for key in keys[:MaxKeys]]} if keys else {"KeyCount": 0}

    def copy_object(
        self, *, Bucket: str, Key: str, CopySource: dict[str, str], Metadata: Any = None, **_: Any
    ) -> dict[str, Any]:
        if self.before_copy is not None:
            self.before_copy()
        body, _metadata = self._readable(CopySource["Bucket"], CopySource["Key"], "CopyObject")
        return self.put_object(Bucket=Bucket, Key=Key, Body=body, Metadata=Metadata)


def _job(**changes: Any) -> Job:
    base = Job(
        id="video_1",
        tenant="acme",
        model="sora-2",
        family="videos",
        provider="apiyi",
        prompt="a harbour",
        seconds="4",
        size="1280x720",
        created_at=1_800_000_000.0,
    )
    return base.with_changes(**changes)


# ------------------------------------------------------------------------------------------- reference inputs

REFERENCE = StoredReference("input_reference", "inputs/acme/video_1/1-input_reference.png", "image/png", "image", 3)


def test_a_reference_that_is_gone_is_missing_even_when_s3_answers_403() -> None:
    s3 = PrefixScopedS3()
    # Another job's input whose key merely starts like this one's does not make it exist.
    s3.put_object(Bucket=RESULTS, Key=REFERENCE.key + ".old", Body=b"old")

    with pytest.raises(ReferenceMissing):
        ReferenceInputs(s3, bucket=RESULTS).load(_job(references=(REFERENCE,)))


def test_a_reference_that_exists_but_is_refused_stays_an_error() -> None:
    s3 = PrefixScopedS3()
    s3.put_object(Bucket=RESULTS, Key=REFERENCE.key, Body=b"png")
    s3.refused.add((RESULTS, REFERENCE.key))

    with pytest.raises(ClientError):
        ReferenceInputs(s3, bucket=RESULTS).load(_job(references=(REFERENCE,)))


def test_a_stored_reference_is_read() -> None:
    s3 = PrefixScopedS3()
    s3.put_object(Bucket=RESULTS, Key=REFERENCE.key, Body=b"png")

    assert ReferenceInputs(s3, bucket=RESULTS).load(_job(references=(REFERENCE,))) == [(REFERENCE, b"png")]


# ------------------------------------------------------------------------------------------- intake results

OUTPUT = Output(
    bytes=3, sha256="0" * 64, duration_s=4.0, width=1280, height=720, bucket=RESULTS, key="videos/acme/video_1.mp4"
)


class IntakeWorld:
    def __init__(self, name: str = "harbour") -> None:
        self.s3 = PrefixScopedS3()
        self.jobs = FakeJobStore(Clock())
        self.job = _job(state="completed", output=OUTPUT, intake=IntakeOrigin(bucket=INTAKE, name=name))
        self.jobs.items[self.job.id] = self.job
        self.s3.put_object(Bucket=RESULTS, Key=OUTPUT.key, Body=b"mp4")
        settings = Settings(jobs_table="t", results_bucket=RESULTS, events_topic_arn="arn:topic", intake_bucket=INTAKE)
        self.intake = Intake(
            settings,
            create=None,  # type: ignore[arg-type]
            jobs=self.jobs,  # type: ignore[arg-type]
            tenants=None,  # type: ignore[arg-type]
            claims=None,  # type: ignore[arg-type]
            s3=self.s3,
        )

    def write(self) -> Outcome:
        return self.intake.write_result({"object": "event", "type": "video.completed", "data": {"id": self.job.id}})

    def outbox(self) -> set[str]:
        return {key for bucket, key in self.s3.objects if bucket == INTAKE}


def test_a_first_result_is_written_although_s3_answers_403_for_the_missing_one() -> None:
    world = IntakeWorld()

    assert world.write().result == "written_completed"
    assert world.outbox() == {"outbox/acme/harbour.mp4", "outbox/acme/harbour.json"}


def test_another_names_result_that_starts_like_this_one_is_not_taken_for_it() -> None:
    world = IntakeWorld()
    # The upload `harbour.json.png` has the result `harbour.json.json`: its key starts with `harbour.json`.
    newer = {"video-id": "video_2", "video-created-at": repr(world.job.created_at + 60)}
    world.s3.put_object(Bucket=INTAKE, Key="outbox/acme/harbour.json.json", Body=b"{}", Metadata=newer)

    assert world.write().result == "written_completed"


def test_a_newer_jobs_result_is_kept() -> None:
    world = IntakeWorld()
    newer = {"video-id": "video_2", "video-created-at": repr(world.job.created_at + 60)}
    world.s3.put_object(Bucket=INTAKE, Key="outbox/acme/harbour.json", Body=b"{}", Metadata=newer)

    assert world.write().result == "superseded"
    assert "outbox/acme/harbour.mp4" not in world.outbox()


def test_a_video_deleted_while_its_result_is_copied_is_not_retried() -> None:
    world = IntakeWorld()

    def delete_meanwhile() -> None:
        world.jobs.items[world.job.id] = replace(world.job, deleted_at=world.job.created_at + 5)
        del world.s3.objects[(RESULTS, OUTPUT.key)]

    world.s3.before_copy = delete_meanwhile

    assert world.write().result == "deleted"
    assert world.outbox() == set()


def test_a_refused_copy_of_a_video_that_still_exists_stays_an_error() -> None:
    world = IntakeWorld()
    world.s3.refused.add((RESULTS, OUTPUT.key))

    with pytest.raises(ClientError):
        world.write()
