"""The S3 intake against moto: real uploads to the intake bucket, the S3 event notifications moto puts on the intake
queue (URL-encoded keys, the s3:TestEvent), the terminal events the topic routes to the results queue, and the
same `Intake` the intake function calls. The tests play the event router: they receive the queue's messages and
hand their bodies over, in the order (or twice, or concurrently, or after a crash) each case needs.
"""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import pytest
from PIL import Image
from vidrelay_core.intake import Intake, Outcome
from vidrelay_core.store.codec import Table
from vidrelay_core.store.intake import IntakeClaims

from vidrelay.simulator.mp4gen import probe

from .conftest import CallLog, Crash, Harness, Process, Tenant, When

SETTLE_S = 30.0


def png(size: tuple[int, int] = (1280, 720), color: tuple[int, int, int] = (30, 90, 160)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


class SettleClock:
    """Real time (S3's LastModified is real) plus an offset the test moves to end a sidecar's settle time."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class IntakeRig:
    h: Harness
    tenant: Tenant
    bucket: str
    queue: str
    results_queue: str
    clock: SettleClock

    def intake(self, p: Process | None = None) -> Intake:
        parts = (p or self.h.process()).parts
        return Intake(
            parts.settings,
            create=parts.create,
            jobs=parts.jobs,
            tenants=parts.tenants,
            claims=parts.claims,
            s3=parts.clients("s3"),
            settle_s=SETTLE_S,
            clock=self.clock,
        )

    def put(self, name: str, body: bytes, **metadata: str) -> None:
        self.h.stack.s3.put_object(
            Bucket=self.bucket, Key=f"inbox/{self.tenant.name}/{name}", Body=body, Metadata=metadata
        )

    def put_json(self, name: str, fields: dict[str, Any]) -> None:
        self.put(name, json.dumps(fields).encode())

    def uploads(self) -> list[dict[str, Any]]:
        """The S3 event notifications waiting on the intake queue (received and deleted), test events dropped."""
        bodies = []
        for message in self.h.receive_all(self.queue):
            self.h.delete(self.queue, message)
            body = json.loads(message["Body"])
            if body.get("Event") != "s3:TestEvent":
                bodies.append(body)
        return bodies

    def upload(self) -> dict[str, Any]:
        (body,) = self.uploads()
        return body

    def results(self) -> list[dict[str, Any]]:
        bodies = []
        for message in self.h.receive_all(self.results_queue):
            self.h.delete(self.results_queue, message)
            bodies.append(json.loads(message["Body"]))
        return bodies

    def outbox(self) -> dict[str, bytes]:
        s3 = self.h.stack.s3
        listed = s3.list_objects_v2(Bucket=self.bucket, Prefix=f"outbox/{self.tenant.name}/").get("Contents", [])
        return {
            o["Key"].removeprefix(f"outbox/{self.tenant.name}/"): s3.get_object(Bucket=self.bucket, Key=o["Key"])[
                "Body"
            ].read()
            for o in listed
        }

    def job_ids(self) -> list[str]:
        return [j.id for j in self.h.jobs(self.tenant)]


@pytest.fixture
def rig(harness: Harness) -> Iterator[IntakeRig]:
    resources = harness.stack.resources
    r = IntakeRig(
        harness,
        harness.new_tenant(),
        resources.ref("IntakeBucket"),
        resources.queue_url("IntakeQueue"),
        resources.queue_url("IntakeResultsQueue"),
        SettleClock(),
    )
    r.uploads(), r.results()  # whatever an earlier test left
    yield r
    r.uploads(), r.results()


def only(outcomes: list[Outcome]) -> Outcome:
    (outcome,) = outcomes
    return outcome


def metadata_for(case: str, **extra: str) -> dict[str, str]:
    return {
        "prompt": f"a harbour at dawn [case {case}]",
        "model": "sora-2",
        "seconds": "4",
        "size": "1280x720",
        **extra,
    }


# ------------------------------------------------------------------------------------------------ one image


def test_an_image_with_metadata_becomes_a_job_whose_mp4_and_video_land_in_the_outbox(rig: IntakeRig) -> None:
    h, case = rig.h, "intake-one"
    p = h.process()
    rig.put("harbour at dawn.png", png(), **metadata_for(case, **{"webhook-events": "video.completed"}))

    # S3 URL-encodes the key in its event ("harbour+at+dawn.png"); the intake reads the object it names.
    body = rig.upload()
    encoded = body["Records"][0]["s3"]["object"]["key"]
    assert (
        encoded.endswith("harbour+at+dawn.png")
        and unquote_plus(encoded) == f"inbox/{rig.tenant.name}/harbour at dawn.png"
    )
    started = only(rig.intake(p).handle_message(body))

    assert started.result == "started" and rig.job_ids() == [started.video_id]
    job = h.jobs(rig.tenant)[0]
    assert job.intake is not None and (job.intake.bucket, job.intake.name) == (rig.bucket, "harbour at dawn")
    assert job.references and job.webhook_events == ("video.completed",)
    h.converge(p, rig.tenant)
    (event,) = rig.results()  # the filter policy lets only this intake job's terminal event through
    assert event["type"] == "video.completed"
    assert only(rig.intake(p).handle_message(event)).result == "written_completed"

    outbox = rig.outbox()
    assert set(outbox) == {"harbour at dawn.mp4", "harbour at dawn.json"}
    video = json.loads(outbox["harbour at dawn.json"])
    assert (video["id"], video["status"], video["output"]["bytes"]) == (
        job.id,
        "completed",
        len(outbox["harbour at dawn.mp4"]),
    )
    mp4 = h.stack.s3.get_object(Bucket=h.stack.bucket, Key=f"videos/{rig.tenant.name}/{job.id}.mp4")["Body"].read()
    assert outbox["harbour at dawn.mp4"] == mp4


def test_the_written_mp4_is_a_playable_video_of_the_requested_size(rig: IntakeRig, tmp_path: Any) -> None:
    h, case = rig.h, "intake-probe"
    p = h.process()
    rig.put("probe.png", png(), **metadata_for(case))
    only(rig.intake(p).handle_message(rig.upload()))
    h.converge(p, rig.tenant)
    for event in rig.results():
        rig.intake(p).handle_message(event)

    path = tmp_path / "probe.mp4"
    path.write_bytes(rig.outbox()["probe.mp4"])
    width, height, duration = probe(path)
    assert (width, height) == (1280, 720) and duration > 0


def test_a_result_written_twice_is_the_same_result(rig: IntakeRig) -> None:
    h = rig.h
    p = h.process()
    rig.put("twice.png", png(), **metadata_for("intake-twice"))
    only(rig.intake(p).handle_message(rig.upload()))
    h.converge(p, rig.tenant)
    (event,) = rig.results()

    first = only(rig.intake(p).handle_message(event))
    before = rig.outbox()
    second = only(rig.intake(h.process()).handle_message(event))

    assert first.result == second.result == "written_completed"
    assert rig.outbox() == before


def test_a_failed_job_writes_its_failed_video_and_no_mp4(rig: IntakeRig) -> None:
    h = rig.h
    p = h.process()
    rig.put("doomed.png", png(), **metadata_for("intake-fail", prompt="a storm [sim:fail]"))
    only(rig.intake(p).handle_message(rig.upload()))
    h.converge(p, rig.tenant)
    for event in rig.results():
        rig.intake(p).handle_message(event)

    outbox = rig.outbox()
    assert set(outbox) == {"doomed.json"}
    assert json.loads(outbox["doomed.json"])["status"] == "failed"


# ------------------------------------------------------------------------------------------------ exactly once


def test_the_same_event_twice_and_the_same_upload_again_start_one_job(rig: IntakeRig) -> None:
    h = rig.h
    rig.put("again.png", png(), **metadata_for("intake-again"))
    body = rig.upload()

    first = only(rig.intake().handle_message(body))
    duplicate = only(rig.intake().handle_message(body))  # S3 and SQS both deliver at least once
    rig.put("again.png", png(), **metadata_for("intake-again"))  # the same bytes and instructions again
    replayed = only(rig.intake().handle_message(rig.upload()))

    assert first.video_id == duplicate.video_id == replayed.video_id
    assert rig.job_ids() == [first.video_id]
    assert len(h.stack.sim_tasks("intake-again")) == 1  # and one upstream submit


def test_the_same_event_handled_by_two_workers_at_once_starts_one_job(rig: IntakeRig) -> None:
    rig.put("race.png", png(), **metadata_for("intake-race"))
    body = rig.upload()
    results: list[Any] = []

    def worker() -> None:
        try:
            results.append(only(rig.intake().handle_message(body)))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert all(isinstance(r, Outcome) and r.result == "started" for r in results), results
    assert len({r.video_id for r in results}) == 1 and rig.job_ids() == [results[0].video_id]
    assert len(rig.h.stack.sim_tasks("intake-race")) == 1


def test_new_instructions_on_the_same_bytes_are_a_new_job(rig: IntakeRig) -> None:
    rig.put("redo.png", png(), **metadata_for("intake-redo"))
    first = only(rig.intake().handle_message(rig.upload()))
    rig.put("redo.png", png(), **metadata_for("intake-redo", seconds="8"))  # same ETag, other metadata
    second = only(rig.intake().handle_message(rig.upload()))

    assert first.video_id != second.video_id
    assert sorted(j.seconds for j in rig.h.jobs(rig.tenant)) == ["4", "8"]


def test_an_event_for_an_object_replaced_since_is_left_to_the_newer_ones_event(rig: IntakeRig) -> None:
    rig.put("old.png", png(color=(1, 2, 3)), **metadata_for("intake-old"))
    stale = rig.upload()
    rig.put("old.png", png(color=(9, 9, 9)), **metadata_for("intake-old"))
    fresh = rig.upload()

    assert only(rig.intake().handle_message(stale)).result == "superseded"
    assert only(rig.intake().handle_message(fresh)).result == "started"
    assert len(rig.job_ids()) == 1


# ------------------------------------------------------------------------------------------------ image + sidecar


SIDECAR_FIELDS = {"model": "sora-2", "seconds": "4", "size": "1280x720", "metadata": {"batch": "7"}}


def sidecar(case: str) -> dict[str, Any]:
    return {**SIDECAR_FIELDS, "prompt": f"a lighthouse [case {case}]"}


def test_image_first_then_sidecar_starts_one_image_to_video_job(rig: IntakeRig) -> None:
    rig.put("pair.png", png())  # no instructions: it waits for its sidecar
    image_event = rig.upload()
    assert only(rig.intake().handle_message(image_event)).result == "waiting_for_sidecar"
    assert rig.job_ids() == []

    rig.put_json("pair.json", sidecar("intake-pair-1"))
    started = only(rig.intake().handle_message(rig.upload()))
    late_copy = only(rig.intake().handle_message(image_event))  # the image's event again, now with its sidecar

    assert started.result == late_copy.result == "started" and started.video_id == late_copy.video_id
    (job,) = rig.h.jobs(rig.tenant)
    assert job.references and job.metadata == {"batch": "7"}
    assert (
        IntakeClaims(Table(rig.h.stack.dynamodb, rig.h.stack.table)).sidecar_use(
            rig.bucket, f"inbox/{rig.tenant.name}/pair.json", _etag(rig, "pair.json")
        )
        == "pair"
    )


def test_sidecar_first_waits_for_its_image_and_the_pair_starts_one_job(rig: IntakeRig) -> None:
    rig.put_json("pair2.json", sidecar("intake-pair-2"))
    sidecar_event = rig.upload()
    settling = only(rig.intake().handle_message(sidecar_event))
    assert settling.result == "settling" and settling.retry_after_s is not None
    assert 0 < settling.retry_after_s <= SETTLE_S and rig.job_ids() == []

    rig.put("pair2.webp", _webp())
    started = only(rig.intake().handle_message(rig.upload()))
    rig.clock.offset = SETTLE_S  # the sidecar's message comes back after its settle time
    again = only(rig.intake().handle_message(sidecar_event))

    assert started.result == again.result == "started" and started.video_id == again.video_id
    (job,) = rig.h.jobs(rig.tenant)
    assert job.references and job.intake is not None and job.intake.name == "pair2"


def test_a_sidecar_alone_starts_text_to_video_after_its_settle_time(rig: IntakeRig) -> None:
    rig.put_json("words.json", sidecar("intake-words"))
    event = rig.upload()
    assert only(rig.intake().handle_message(event)).result == "settling"

    rig.clock.offset = SETTLE_S
    started = only(rig.intake().handle_message(event))

    (job,) = rig.h.jobs(rig.tenant)
    assert started.result == "started" and job.id == started.video_id and not job.references


def test_an_image_after_its_sidecar_started_alone_is_rejected_and_starts_nothing(rig: IntakeRig) -> None:
    rig.put_json("late.json", sidecar("intake-late"))
    rig.clock.offset = SETTLE_S
    text_job = only(rig.intake().handle_message(rig.upload()))
    rig.put("late.png", png())

    rejected = only(rig.intake().handle_message(rig.upload()))

    assert rejected.result == "rejected" and rig.job_ids() == [text_job.video_id]
    error = json.loads(rig.outbox()["late.error.json"])["error"]
    assert error["code"] == "sidecar_already_used" and "late.json" in error["message"]


def test_a_sidecar_and_image_racing_from_two_workers_start_one_job(rig: IntakeRig) -> None:
    rig.put("duo.png", png())
    rig.put_json("duo.json", sidecar("intake-duo"))
    events = rig.uploads()
    results: list[Any] = []

    def worker(body: dict[str, Any]) -> None:
        try:
            results.append(only(rig.intake().handle_message(body)))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=worker, args=(body,)) for body in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert [type(r) for r in results] == [Outcome, Outcome], results
    assert {r.result for r in results} == {"started"} and len({r.video_id for r in results}) == 1
    assert len(rig.job_ids()) == 1 and len(rig.h.stack.sim_tasks("intake-duo")) == 1


# ------------------------------------------------------------------------------------------------ crashes


def pair_plan(rig: IntakeRig) -> list[tuple[str, str]]:
    """The external calls of a sidecar event that starts an image + sidecar job, in order."""
    rig.put("plan.png", png())
    rig.put_json("plan.json", sidecar("intake-plan"))
    rig.uploads()
    log = CallLog()
    rig.put_json("plan.json", sidecar("intake-plan-2"))
    assert only(rig.intake(rig.h.process(log)).handle_message(rig.upload())).result == "started"
    return list(log.calls)


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_crash_at_any_call_of_starting_a_pair_ends_with_one_job(rig: IntakeRig, when: When) -> None:
    """The intake dies at each external call of handling the sidecar's event (before the call goes out, or after
    it took effect); its message comes back to a fresh process, which must end with exactly one job."""
    plan = pair_plan(rig)
    assert any(label == "dynamodb.transact_write_items" for _, label in plan), plan
    failures = []
    for n, (_, label) in enumerate(plan):
        tenant = rig.h.new_tenant()
        case_rig = IntakeRig(rig.h, tenant, rig.bucket, rig.queue, rig.results_queue, rig.clock)
        case = f"intake-crash-{when}-{n}-{secrets.token_hex(3)}"
        case_rig.put("crash.png", png())
        case_rig.uploads()
        case_rig.put_json("crash.json", sidecar(case))
        event = case_rig.upload()
        dying = case_rig.intake(rig.h.process(CallLog(crash_at=n, when=when)))
        with contextlib.suppress(Crash):
            dying.handle_message(event)
        outcome = only(case_rig.intake().handle_message(event))  # SQS redelivers the message that was in flight
        jobs = rig.h.jobs(tenant)
        if outcome.result != "started" or [j.id for j in jobs] != [outcome.video_id]:
            failures.append(f"crash {when} #{n} ({label}): {outcome}, jobs {[j.id for j in jobs]}")
        elif len(rig.h.stack.sim_tasks(case)) > 1:
            failures.append(f"crash {when} #{n} ({label}): submitted upstream twice")
    rig.h.wipe()
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------------------------------------ rejections


def test_a_text_file_named_png_gets_only_an_error_file(rig: IntakeRig) -> None:
    rig.put("fake.png", b"hello, I am not a picture\n", **metadata_for("intake-fake"))

    outcome = only(rig.intake().handle_message(rig.upload()))

    assert outcome.result == "rejected" and rig.job_ids() == []
    outbox = rig.outbox()
    assert set(outbox) == {"fake.error.json"}
    assert json.loads(outbox["fake.error.json"]) == {
        "error": {
            "message": "Invalid file format: the 'input_reference' file (sent as image/png) is text, not an image "
            "vidrelay can use. Allowed: image/jpeg, image/png, image/webp.",
            "type": "invalid_request_error",
            "param": "input_reference",
            "code": "invalid_image_format",
        }
    }
    assert (
        rig.h.stack.s3.list_objects_v2(Bucket=rig.h.stack.bucket, Prefix=f"inputs/{rig.tenant.name}/")["KeyCount"] == 0
    )


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"prompt": "x", "seconds": 4}, "seconds", "invalid_value"),
        ({"prompt": "x", "duration": 5}, "duration", "unsupported_parameter"),
        ({"model": "sora-2"}, "prompt", "missing_required_parameter"),
        ({"prompt": "x", "webhook_url": "http://169.254.169.254/latest"}, "webhook_url", "invalid_url"),
    ],
)
def test_a_sidecar_the_api_would_refuse_gets_the_apis_error(
    rig: IntakeRig, fields: dict[str, Any], param: str, code: str
) -> None:
    rig.put_json("wrong.json", fields)
    rig.clock.offset = SETTLE_S

    assert only(rig.intake().handle_message(rig.upload())).result == "rejected"

    outbox = rig.outbox()
    assert set(outbox) == {"wrong.error.json"} and rig.job_ids() == []
    error = json.loads(outbox["wrong.error.json"])["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")


def test_metadata_names_no_create_field_are_refused_by_name(rig: IntakeRig) -> None:
    rig.put("typo.png", png(), prompt="x", secnds="4")

    assert only(rig.intake().handle_message(rig.upload())).result == "rejected"
    error = json.loads(rig.outbox()["typo.error.json"])["error"]
    assert (error["param"], error["code"]) == ("secnds", "unknown_parameter")


def test_an_upload_for_a_tenant_that_does_not_exist_starts_nothing(rig: IntakeRig) -> None:
    ghost = "ghost-" + secrets.token_hex(4)
    rig.h.stack.s3.put_object(Bucket=rig.bucket, Key=f"inbox/{ghost}/x.png", Body=png(), Metadata={"prompt": "x"})

    assert only(rig.intake().handle_message(rig.upload())).result == "rejected"

    error_key = f"outbox/{ghost}/x.error.json"
    error = json.loads(rig.h.stack.s3.get_object(Bucket=rig.bucket, Key=error_key)["Body"].read())["error"]
    assert error["code"] == "unknown_tenant" and ghost in error["message"]
    assert rig.h.stack.s3.list_objects_v2(Bucket=rig.bucket, Prefix=f"outbox/{ghost}/")["KeyCount"] == 1


def test_objects_outside_a_tenant_folder_are_ignored(rig: IntakeRig) -> None:
    rig.h.stack.s3.put_object(Bucket=rig.bucket, Key="inbox/loose.png", Body=png())

    assert only(rig.intake().handle_message(rig.upload())).result == "ignored"
    assert rig.h.stack.s3.list_objects_v2(Bucket=rig.bucket, Prefix="outbox/loose")["KeyCount"] == 0


def test_the_s3_test_event_is_ignored(rig: IntakeRig) -> None:
    body = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-01-01T00:00:00Z", "Bucket": rig.bucket}

    assert only(rig.intake().handle_message(body)).result == "test_event"


# ------------------------------------------------------------------------------------------------ rate limit


def test_a_rate_limited_upload_waits_for_the_next_window_instead_of_failing(rig: IntakeRig) -> None:
    h = rig.h
    h.tenants().set_rate_limit(rig.tenant.name, 1)
    rig.put("first.png", png(), **metadata_for("intake-rl-1"))
    rig.put("second.png", png(), **metadata_for("intake-rl-2"))
    first_event, second_event = rig.uploads()
    p = h.process()
    assert only(rig.intake(p).handle_message(first_event)).result == "started"

    waiting = only(rig.intake(p).handle_message(second_event))

    assert waiting.result == "rate_limited" and waiting.retry_after_s is not None and waiting.retry_after_s >= 1
    assert len(rig.job_ids()) == 1 and "second.error.json" not in rig.outbox()
    h.clock.advance(60)  # the next minute
    assert only(rig.intake(p).handle_message(second_event)).result == "started"
    assert len(rig.job_ids()) == 2


def _etag(rig: IntakeRig, name: str) -> str:
    head = rig.h.stack.s3.head_object(Bucket=rig.bucket, Key=f"inbox/{rig.tenant.name}/{name}")
    return str(head["ETag"]).strip('"')


def _webp() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1280, 720), (200, 80, 40)).save(out, format="WEBP", lossless=True)
    return out.getvalue()
