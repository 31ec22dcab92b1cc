"""The job state machine and the Video object clients see."""

from __future__ import annotations

import pytest
from vidrelay_core.contract import Video
from vidrelay_core.jobs import TRANSITIONS, IllegalTransition, Job, Output


def video_object(job: Job, *, retention_days: int) -> dict:
    return Video.from_job(job, retention_days=retention_days).model_dump(mode="json")


def job(**changes) -> Job:
    base = Job(
        id="video_1",
        tenant="t",
        model="sora-2",
        family="videos",
        provider="apiyi",
        prompt="p",
        seconds="4",
        size="1280x720",
        created_at=1000.0,
    )
    return base.with_changes(**changes)


def test_terminal_states_never_move():
    for state in ("completed", "failed", "canceled", "expired"):
        assert TRANSITIONS[state] == frozenset()
        with pytest.raises(IllegalTransition):
            job(state=state).moved("running")


def test_no_move_backwards_from_downloading():
    with pytest.raises(IllegalTransition):
        job(state="downloading").moved("running")
    with pytest.raises(IllegalTransition):
        job(state="running").moved("accepted")


def test_a_submit_answered_in_progress_moves_an_accepted_job_straight_to_running():
    # The upstream may already be working when it answers the POST (the simulator does under load).
    assert job(state="accepted").moved("running", progress=45).state == "running"


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("accepted", "queued"),
        ("submitted", "queued"),
        ("running", "in_progress"),
        ("downloading", "in_progress"),
        ("completed", "completed"),
        ("failed", "failed"),
        ("expired", "failed"),
    ],
)
def test_public_status(state, status):
    assert video_object(job(state=state), retention_days=30)["status"] == status


def test_video_object_carries_openai_and_vidrelay_fields():
    out = Output(bytes=10, sha256="ab", duration_s=4.0, width=1280, height=720, bucket="b", key="k.mp4")
    video = video_object(
        job(state="completed", completed_at=2000.0, output=out, cost_usd=0.4, metadata={"a": "b"}), retention_days=30
    )
    assert video["object"] == "video"
    assert video["task_id"] == video["id"] == "video_1"
    assert video["progress"] == 100
    assert video["expires_at"] == 2000 + 30 * 86400
    assert video["output"]["s3_uri"] == "s3://b/k.mp4"
    assert video["cost"] == {"estimated_usd": 0.4, "currency": "USD"}
    assert video["error"] is None


def test_failed_video_has_error_code_and_message():
    video = video_object(job(state="failed", error_code="upstream_failed", error_message="no"), retention_days=1)
    assert video["error"] == {"code": "upstream_failed", "message": "no"}
