"""Exactly once, end to end: "a function killed between any two steps, or an SQS message delivered twice, ends with
one job, one S3 object and one `video.completed` event id".

Everything external is real (moto over HTTP, the simulator over HTTP, a webhook receiver); the only thing the
tests inject is death: a proxy raises `Crash` at one external call, before it goes out or right after it took
effect. Then a fresh process (new use cases with new clients) takes over, as Lambda would after a crash:
the message that was in flight comes back, the poller keeps sweeping, and a client whose create got no answer
retries it with the same Idempotency-Key.

Designed exception (CreateVideo.create / Poller._check_accepted): the api writes the job, publishes `video.queued`,
then takes a submit lease (`submit_started_at`) right before it sends the submit. A crash before the lease leaves a
job that provably never went upstream: the client's retry returns it and the poller submits it after the grace
period, so it completes. A crash after the lease but before the upstream's answer is recorded leaves the poller
unable to tell whether the submit went out (and was billed), so once the lease has run out it fails the job with
`upstream_submit_unknown` rather than submit a second time. Those crash points must end with one job,
`failed`/`upstream_submit_unknown`, no S3 object, no `video.completed` event, one `video.failed` event id, and at
most one upstream submit.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from vidrelay_core.bodies import parse_body
from vidrelay_core.errors import Conflict, InvalidRequest, PayloadTooLarge, Unauthorized, VidrelayError
from vidrelay_core.store.codec import Table
from vidrelay_core.store.webhooks import WebhookStore
from vidrelay_core.wiring import Components

from .conftest import CallLog, Crash, Drift, Harness, Tenant, When

Plan = list[tuple[str, str]]  # (phase, label) of every external call of the happy path, in order


@dataclass(frozen=True)
class Expect:
    state: str
    error_code: str | None
    submits: int  # upstream tasks the simulator must hold for the job


COMPLETED = Expect("completed", None, 1)


def check_outcome(h: Harness, tenant: Tenant, case: str, expect: Expect, *, open_uploads: int = 0) -> list[str]:
    """Everything "exactly once" promises, as a list of broken promises (empty when all hold). `open_uploads`: how
    many multipart uploads a crash may have left behind (the bucket's AbortIncompleteUploads rule removes them;
    a process that dies cannot abort them itself)."""
    problems: list[str] = []
    jobs = h.jobs(tenant)
    job_items = [i for i in h.items(tenant) if i["pk"]["S"].startswith("JOB#") and i["sk"]["S"] == "JOB"]
    if len(jobs) != 1 or len(job_items) != 1:
        return [f"{len(jobs)} jobs listed / {len(job_items)} job items stored, want exactly 1"]
    job = jobs[0]
    if (job.state, job.error_code) != (expect.state, expect.error_code):
        problems.append(f"job ended {job.state}/{job.error_code}, want {expect.state}/{expect.error_code}")
    if job.next_check_at is not None or not job.event_published:
        problems.append(f"job not settled: {h.describe(job)}")

    objects = h.objects(tenant)
    if expect.state == "completed":
        if job.output is None or [o["Key"] for o in objects] != [job.output.key]:
            problems.append(f"S3 holds {[o['Key'] for o in objects]}, want exactly the job's output")
        elif objects[0]["Size"] != job.output.bytes:
            problems.append(f"S3 object has {objects[0]['Size']} bytes, the job says {job.output.bytes}")
    elif objects:
        problems.append(f"S3 holds {[o['Key'] for o in objects]} for a {job.state} job")
    if len(h.open_uploads(tenant)) > open_uploads:
        problems.append(f"{len(h.open_uploads(tenant))} multipart uploads left open, at most {open_uploads} allowed")

    tasks = h.stack.sim_tasks(case)
    if len(tasks) != expect.submits:
        problems.append(f"the upstream got {len(tasks)} submits, want {expect.submits}")

    deliveries = h.stack.receiver.for_case(case)
    for d in deliveries:
        if not d.verified or d.webhook_id != d.event["id"] or d.event["data"]["id"] != job.id:
            problems.append(f"bad delivery {d.webhook_id} for {d.event['data']['id']} (verified={d.verified})")
    types_by_id: dict[str, set[str]] = {}
    for d in deliveries:
        types_by_id.setdefault(d.webhook_id, set()).add(d.event["type"])
    if any(len(t) > 1 for t in types_by_id.values()):
        problems.append(f"one event id carried several types: {types_by_id}")
    ids = {k: {d.webhook_id for d in deliveries if d.event["type"] == f"video.{k}"} for k in ("completed", "failed")}
    final = "completed" if expect.state == "completed" else "failed"
    other = "failed" if final == "completed" else "completed"
    if ids[final] != {job.last_event_id}:
        problems.append(f"video.{final} delivered with ids {sorted(ids[final])}, want exactly {job.last_event_id}")
    if ids[other]:
        problems.append(f"video.{other} delivered too: {sorted(ids[other])}")
    # The delivery ledger: one delivery per event, each finished successfully, and nothing delivered off the books.
    ledger = WebhookStore(Table(h.stack.dynamodb, h.stack.table)).list_deliveries(job.id)
    if sorted(d.event_id for d in ledger) != sorted(types_by_id):
        problems.append(f"ledger has {sorted(d.event_id for d in ledger)}, the receiver got {sorted(types_by_id)}")
    unfinished = [(d.event_type, d.state) for d in ledger if d.state != "succeeded"]
    if unfinished:
        problems.append(f"deliveries not succeeded: {unfinished}")
    return problems


def new_case(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


# ------------------------------------------------------------------------------------------------ happy path


def happy_path_plan(h: Harness) -> Plan:
    """Runs the pipeline without crashing until two runs in a row make the same external calls, and returns them;
    cached for the session. One run is not enough: a message an earlier test left delayed or in flight can turn
    up in the run's queue (one extra `get_item` in the notifier), and a plan with one call too many puts every
    crash point after it at the wrong call."""
    if "plan" not in h.stack.cache:
        runs: list[Plan] = []
        while len(runs) < 2 or runs[-1] != runs[-2]:
            if len(runs) == 4:
                shown = "\n".join(f"run {i + 1}: {run}" for i, run in enumerate(runs))
                raise AssertionError(f"no two runs of the happy path in a row made the same calls:\n{shown}")
            runs.append(record_happy_path(h))
            h.drain()
            h.wipe()
        h.stack.cache["plan"] = runs[-1]
    plan: Plan = h.stack.cache["plan"]
    return plan


def record_happy_path(h: Harness) -> Plan:
    tenant = h.new_tenant()
    case = new_case("plan")
    p = h.process()
    h.run_happy_path(p, tenant, case, idempotency_key=case)
    # The fixed order of invocations must leave nothing to do: no retry, no lease to wait out.
    assert h.settled(tenant), [h.describe(j) for j in h.jobs(tenant)]
    problems = check_outcome(h, tenant, case, COMPLETED)
    assert not problems, problems
    return list(p.log.calls)


def test_happy_path_calls_every_service_once_per_step(harness: Harness) -> None:
    plan = happy_path_plan(harness)
    labels = [label for _, label in plan]
    # One submit, one content download, one S3 write, one download message, three events (queued, in_progress,
    # completed), each fanned out into one delivery that is attempted at once and succeeds: no delivery message.
    assert labels.count("http.POST /v1/videos") == 1
    assert labels.count("http.GET /v1/videos/{id}/content") == 1
    assert labels.count("s3.put_object") == 1
    assert labels.count("sns.publish") == 3
    assert plan.count(("poller", "sqs.send_message")) == 1
    assert plan.count(("notifier", "sqs.send_message")) == 0
    assert labels.count("http.POST /hooks/{case}") == 3
    assert {phase for phase, _ in plan} == {"api", "notifier", "poller", "downloader"}


# ------------------------------------------------------------------------------------------------ crashes


def expected_after_crash(plan: Plan, n: int, when: When) -> Expect:
    """What the design promises for a crash at call `n` (see the module docstring)."""
    if plan[n][0] != "api":
        return COMPLETED
    api = [i for i, (phase, _) in enumerate(plan) if phase == "api"]
    post = next(i for i in api if plan[i][1] == "http.POST /v1/videos")
    lease = max(i for i in api if i < post and plan[i][1] == "dynamodb.put_item")
    answer = next(i for i in api if i > post and plan[i][1] == "dynamodb.put_item")

    def done(i: int) -> bool:  # had call i taken effect when the process died?
        return n > i or (n == i and when == "after")

    if not done(lease) or done(answer):
        # Before the submit lease nothing can have gone upstream: the client's retry or the poller submits the
        # job. After the answer was recorded, the job simply goes on.
        return COMPLETED
    # Leased but unanswered: the upstream may have the task (and bill it), so it is never sent twice.
    return Expect("failed", "upstream_submit_unknown", 1 if done(post) else 0)


def crash_case(h: Harness, plan: Plan, n: int, when: When) -> list[str]:
    tenant = h.new_tenant()
    case = new_case(f"crash-{when}-{n}")
    dying = h.process(CallLog(crash_at=n, when=when), warm=True)
    with contextlib.suppress(Crash):  # the process dies at call n; what it did until then stays done
        h.run_happy_path(dying, tenant, case, idempotency_key=case)
    crashed = dying.log.crashed
    problems: list[str] = []
    if crashed is None:
        return [f"the run made only {len(dying.log.calls)} calls and never reached call #{n}"]
    # Outside the api every crash point must end completed, so a run whose calls came in another order (queue
    # order under load) is still a valid case: its crash is simply at a neighbouring call of the same phase.
    if crashed[1:] != plan[n] and not (crashed[1] == plan[n][0] != "api"):
        raise Drift(f"the run crashed at {crashed[1:]}, where the plan has {plan[n]}")
    # Restart: a new process with new clients. A client whose create got no answer retries it with the same
    # Idempotency-Key.
    fresh = h.process()
    if crashed[1] == "api":
        retried = fresh.parts.create.create(tenant.name, h.request(case), idempotency_key=case)
        listed = h.jobs(tenant)
        if [j.id for j in listed] != [retried.id]:
            problems.append(f"the retried create answered {retried.id}, but the tenant has {[j.id for j in listed]}")
    h.converge(fresh, tenant)
    return problems + check_outcome(h, tenant, case, expected_after_crash(plan, n, when))


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("when", ["before", "after"])
def test_crash_at_every_external_call_ends_exactly_once(harness: Harness, when: When) -> None:
    plan = happy_path_plan(harness)
    failures: list[str] = []
    outcomes: dict[str, int] = {}
    drifts = 0
    started = time.monotonic()
    for n, (phase, label) in enumerate(plan):
        expect = expected_after_crash(plan, n, when)
        outcomes[expect.state] = outcomes.get(expect.state, 0) + 1
        for attempt in range(6):
            try:
                problems = crash_case(harness, plan, n, when)
            except Drift as exc:
                problems = [f"{exc} (attempt {attempt + 1})"]
                drifts += 1
                harness.drain()  # forget the drifted run: no job or message of it may reach the next one
                harness.wipe()
                continue
            except AssertionError as exc:
                problems = [str(exc)]
            break
        harness.wipe()
        if problems:
            failures.append(f"crash {when} call #{n} ({phase}: {label}): " + "; ".join(problems))
    print(f"{len(plan)} crash points ({when}) in {time.monotonic() - started:.1f}s, {drifts} re-run for timing drift")
    assert not failures, f"{len(failures)} of {len(plan)} crash points broke exactly-once:\n" + "\n".join(failures)
    # The matrix really covers both designed outcomes.
    assert outcomes["completed"] > outcomes.get("failed", 0) > 0, outcomes


MULTIPART_WRITES = ("s3.create_multipart_upload", "s3.upload_part", "s3.complete_multipart_upload")
PAD_9_MIB = " [sim:content_pad=9437184]"  # two parts of the downloader's 8 MiB multipart upload


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("write", MULTIPART_WRITES)
def test_crash_inside_a_multipart_download_ends_exactly_once(harness: Harness, write: str, when: When) -> None:
    """The S3 write the small happy-path video never makes: a 9 MiB video goes up in parts, from worker threads."""
    h = harness
    tenant = h.new_tenant()
    case = new_case(f"mpu-{when}")
    p = h.process()
    p.parts.create.create(tenant.name, h.request(case, prompt="a long harbour pan" + PAD_9_MIB), idempotency_key=case)
    h.wait_sim(case, "completed")
    h.clock.advance(1.0)
    p.parts.poller.sweep_once()  # -> downloading, message queued
    # A downloader that dies at its first call of `write` (a part upload runs on a worker thread).
    dying = h.process(CallLog(crash_on=write, when=when))
    with pytest.raises(Crash):
        h.consume_downloads(dying)
    assert dying.log.crashed is not None and dying.log.crashed[2] == write
    h.converge(h.process(), tenant)
    # An upload the dead worker had started and not completed stays open until the lifecycle rule aborts it.
    started = write != "s3.create_multipart_upload" or when == "after"
    completed = write == "s3.complete_multipart_upload" and when == "after"
    problems = check_outcome(h, tenant, case, COMPLETED, open_uploads=1 if started and not completed else 0)
    assert not problems, problems
    job = h.jobs(tenant)[0]
    assert job.output is not None and job.output.bytes == 9437184


# ------------------------------------------------------------------------------------------------ duplicates


def _both(fn: Any, arg: Any) -> list[Any]:
    """Calls fn(arg) from two threads at once; returns results (or exceptions) in finishing order."""
    results: list[Any] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            result: Any = fn(arg)
        except Exception as exc:
            result = exc
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["sequential", "concurrent", "concurrent-multipart"])
def test_every_sqs_message_delivered_twice_ends_exactly_once(harness: Harness, mode: str) -> None:
    h = harness
    stack = h.stack
    tenant = h.new_tenant()
    case = new_case(f"dup-{mode}")
    concurrent = mode.startswith("concurrent")
    multipart = mode.endswith("multipart")
    # The receiver refuses each event's first attempt, so every delivery needs its delivery message (retried at
    # once: the retry schedule scaled down to nothing).
    stack.receiver.statuses[f"/hooks/{case}"] = [503, 503, 503]
    p = h.process(settings={"webhook_retry_scale": 1e-6})
    log = p.log
    prompt = "a lighthouse at dusk" + (PAD_9_MIB if multipart else "")
    job = p.parts.create.create(tenant.name, h.request(case, prompt=prompt), idempotency_key=case)
    h.wait_sim(case, "completed")
    h.clock.advance(1.0)
    p.parts.poller.sweep_once()
    assert p.parts.jobs.get_job(job.id).state == "downloading"  # type: ignore[union-attr]

    def twice(fn: Any, arg: Any, *rendezvous: str) -> list[Any]:
        """Two copies of one message: handled by two workers at once, or by one worker after the other."""
        if not concurrent:
            return [fn(arg), fn(arg)]
        for label in rendezvous:
            log.rendezvous(label)
        return _both(fn, arg)

    # Downloader: the one download message, twice. Concurrently, both workers pass the state check and write to
    # S3 before either can complete the job, and both then try the conditional write that completes it.
    [message] = h.receive_all(stack.download_queue)
    video_id = json.loads(message["Body"])["video_id"]
    first_write = "s3.create_multipart_upload" if multipart else "s3.put_object"
    mark = len(log.calls)
    outcomes = twice(p.parts.downloader.download, video_id, first_write, "dynamodb.put_item")
    if concurrent:
        assert log.labels(first_write, since=mark) == 2, "both copies must have streamed into S3"
        assert log.labels("dynamodb.put_item", since=mark) == 2, "both copies must have tried to complete the job"
    assert sorted(map(str, outcomes)) == ["completed", "skipped"], outcomes
    h.delete(stack.download_queue, message)
    # And a late third copy, through the router like any message.
    stack.sqs.send_message(QueueUrl=stack.download_queue, MessageBody=message["Body"])
    assert h.consume_downloads(p) == ["skipped"]

    # Notifier, events: each event message twice. Fan-out creates the delivery once (a conditional put that also
    # takes it for its first attempt, which the receiver refuses), and each copy may send a delivery message.
    events = h.receive_all(stack.webhook_queue)
    assert sorted(h.body_of(m)["type"] for m in events) == ["video.completed", "video.in_progress", "video.queued"]
    for message in events:
        results = twice(lambda body: h.handle_webhook_message(p, body), h.body_of(message), "dynamodb.put_item")
        assert all(r.done for r in results), results
        h.delete(stack.webhook_queue, message)
    # Notifier, deliveries: each delivery message twice. Concurrently, both workers read the delivery due and
    # try to claim it at once: one attempt is made, the other copy is done or told to look again later.
    h.clock.advance(1.0)  # every retry falls due
    deliveries = h.receive_all(stack.webhook_queue)
    assert len(deliveries) >= 3
    for message in deliveries:
        body = h.body_of(message)
        assert "delivery" in body, body
        results = twice(lambda b: h.handle_webhook_message(p, b), body, "dynamodb.update_item")
        assert all(not isinstance(r, Exception) for r in results), results
        assert any(r.done for r in results), results
        h.delete(stack.webhook_queue, message)
    # Late copies of every message, events and deliveries alike, through the router.
    for message in events + deliveries:
        stack.sqs.send_message(QueueUrl=stack.webhook_queue, MessageBody=message["Body"])
    h.converge(p, tenant)

    problems = check_outcome(h, tenant, case, COMPLETED)
    assert not problems, problems
    received = stack.receiver.for_case(case)
    per_id: dict[str, int] = {}
    refused = [d for d in received if d.status == 503]
    assert len(refused) == 3, refused  # the three first attempts, and no other attempt was refused
    for d in received:
        if d.status == 200:
            per_id[d.webhook_id] = per_id.get(d.webhook_id, 0) + 1
    assert sorted(per_id.values()) == [1, 1, 1], f"every event accepted exactly once: {per_id}"
    if multipart:
        final = p.parts.jobs.get_job(job.id)
        assert final is not None and final.output is not None and final.output.bytes == 9437184


# ------------------------------------------------------------------------------------------------ bad input


def api_create(parts: Components, authorization: str, content_type: str, body: bytes, key: str | None = None) -> Any:
    """What functions/api/app.py does for POST /v1/videos, minus the HTTP framing."""
    tenant = parts.auth.tenant(authorization)
    parsed = parse_body(content_type, body)
    return parts.create.create_from_fields(
        tenant, parsed.fields, parsed.files, multipart=parsed.multipart, idempotency_key=key
    )


JSON = "application/json"
BAD_INPUT: dict[str, tuple[str, bytes, str | None, type[VidrelayError]]] = {
    "unknown-model": (JSON, b'{"prompt": "x", "model": "sora-9"}', None, InvalidRequest),
    "missing-prompt": (JSON, b'{"model": "sora-2"}', None, InvalidRequest),
    "blank-prompt": (JSON, b'{"prompt": "   "}', None, InvalidRequest),
    "prompt-too-long": (JSON, json.dumps({"prompt": "x" * 4001}).encode(), None, InvalidRequest),
    "seconds-as-int": (JSON, b'{"prompt": "x", "seconds": 4}', None, InvalidRequest),
    "seconds-not-allowed": (JSON, b'{"prompt": "x", "seconds": "10"}', None, InvalidRequest),
    "size-not-allowed": (JSON, b'{"prompt": "x", "size": "640x480"}', None, InvalidRequest),
    "unknown-field": (JSON, b'{"prompt": "x", "duration": 5}', None, InvalidRequest),
    "private-webhook": (JSON, b'{"prompt": "x", "webhook_url": "http://10.0.0.7/hook"}', None, InvalidRequest),
    "metadata-webhook": (JSON, b'{"prompt": "x", "webhook_url": "http://169.254.169.254/"}', None, InvalidRequest),
    "file-webhook": (JSON, b'{"prompt": "x", "webhook_url": "file:///etc/passwd"}', None, InvalidRequest),
    "unknown-event": (JSON, b'{"prompt": "x", "webhook_events": ["video.done"]}', None, InvalidRequest),
    "metadata-not-strings": (JSON, b'{"prompt": "x", "metadata": {"k": 1}}', None, InvalidRequest),
    "image-to-video": (JSON, b'{"prompt": "x", "input_reference": "https://example.com/a.png"}', None, InvalidRequest),
    "not-json": (JSON, b"prompt=x", None, InvalidRequest),
    "json-array": (JSON, b'["prompt", "x"]', None, InvalidRequest),
    "empty-body": (JSON, b"", None, InvalidRequest),
    "wrong-content-type": ("text/plain", b"x", None, InvalidRequest),
    "multipart-no-boundary": ("multipart/form-data", b"x", None, InvalidRequest),
    "body-too-large": (JSON, b" " * (6 * 1024 * 1024 + 1), None, PayloadTooLarge),
    "idempotency-key-too-long": (JSON, b'{"prompt": "x"}', "k" * 256, InvalidRequest),
    "bad-api-key": (JSON, b'{"prompt": "x"}', None, Unauthorized),
}


@pytest.mark.parametrize("name", list(BAD_INPUT))
def test_bad_input_stores_nothing_and_never_reaches_the_upstream(harness: Harness, name: str) -> None:
    h = harness
    content_type, body, key, error = BAD_INPUT[name]
    tenant = h.new_tenant()
    h.stack.sim_reset()
    p = h.process()
    authorization = "Bearer " + ("sk-wrong" if name == "bad-api-key" else tenant.api_key)
    with pytest.raises(error):
        api_create(p.parts, authorization, content_type, body, key)
    assert h.items(tenant) == []
    assert h.stack.sim_requests() == []
    # Reading the API key is all it may have done: no write, no event, no message.
    assert {label for _, label in p.log.calls} <= {"dynamodb.get_item"}, p.log.calls
    assert h.settled(tenant) is False  # no job at all
    assert h.receive(h.stack.webhook_queue) == []
    assert h.receive(h.stack.download_queue) == []


def test_reused_idempotency_key_with_another_body_creates_nothing(harness: Harness) -> None:
    h = harness
    tenant = h.new_tenant()
    case = new_case("idem")
    p = h.process()
    relay = p.parts
    auth = "Bearer " + tenant.api_key
    body = json.dumps({"prompt": f"a lighthouse [case {case}]", "webhook_url": h.stack.receiver.url(case)}).encode()
    first = api_create(relay, auth, JSON, body, key=case)
    with pytest.raises(Conflict):
        api_create(relay, auth, JSON, body.replace(b"lighthouse", b"harbour"), key=case)
    # The same body again is a replay: the same job, nothing new upstream.
    assert api_create(relay, auth, JSON, body, key=case).id == first.id
    items = h.items(tenant)
    assert sorted(i["pk"]["S"].split("#")[0] for i in items) == ["IDEM", "JOB"]
    assert len(h.stack.sim_tasks(case)) == 1
    h.converge(p, tenant)
    assert not check_outcome(h, tenant, case, COMPLETED)
