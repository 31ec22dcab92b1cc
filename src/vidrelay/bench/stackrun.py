"""The figures measured on one running local stack (`vidrelay local` in this process), with every AWS request
and function invocation counted (calls.py): the idle period, the webhook latency run (which is also the run the
cost per job is counted from), the notifier's delivery throughput and, behind `--drain`, the 1,000-job drain."""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import (
    TASK_FIELDS,
    WEBHOOK_NOTES,
    WEBHOOK_SIM_SECONDS,
    WebhookLog,
    bench_prompt,
    latency_summary,
    log,
    percentile,
    run_waves,
    upstream_completions,
    warm_bench_video,
    webhook_method,
)
from .calls import CallCounter, Snapshot

PUBLISHERS = 16
# After the last event's first attempt, the notifier still records it (and queues the failed ones' retries).
SETTLE_S = 2.0
THUMBNAILER = "ThumbnailerFunction"
TERMINAL_EVENTS = ("video.completed", "video.failed", "video.expired", "video.canceled")


@dataclass
class StackSession:
    stack: Any
    info: dict[str, Any]
    counter: CallCounter


@contextmanager
def counted_stack(counter: CallCounter) -> Iterator[StackSession]:
    from vidrelay.local.stack import LocalOptions, LocalStack

    counter.install()  # before the stack makes its first client
    with tempfile.TemporaryDirectory(prefix="vidrelay-bench-state-") as state:
        # A private state dir: a running `vidrelay local` keeps its .vidrelay/local.json. No creation rate
        # limit: the drain creates 1,000 jobs in minutes.
        options = LocalOptions(port=0, sim_seconds=WEBHOOK_SIM_SECONDS, state_dir=Path(state), rate_per_minute=0)
        stack = LocalStack(options)
        log("starting the local stack")
        info = stack.start()
        warm_bench_video()
        counter.instrument_pools(stack.pools)
        try:
            yield StackSession(stack, info, counter)
        finally:
            stack.stop()


def counted_window(counter: CallCounter, seconds: float) -> tuple[Snapshot, float]:
    counter.reset()
    started = time.perf_counter()
    time.sleep(seconds)
    return counter.snapshot(), time.perf_counter() - started


# --- idle --------------------------------------------------------------------------------------------------


def measure_idle(session: StackSession, seconds: float) -> dict[str, Any]:
    time.sleep(2.0)  # let the first invocations (imports, clients) pass: a warm idle deployment is measured
    usage, elapsed = counted_window(session.counter, seconds)
    return {"seconds": round(elapsed, 1), "usage": usage}


# --- the jobs run: latency and the per-job calls ---------------------------------------------------------------


class EventLog(WebhookLog):
    """WebhookLog plus every event's arrival by type, and each job's terminal event."""

    def __init__(self) -> None:
        super().__init__()
        self.by_type: dict[str, int] = {}
        self.terminal: dict[str, float] = {}
        self.attempts: list[float] = []

    def record(self, received: Any) -> None:
        arrived = getattr(received, "received_at", 0.0) or time.time()
        kind, video_id = received.event.get("type", "?"), received.event.get("data", {}).get("id", "")
        with self._changed:
            self.attempts.append(arrived)
            self.by_type[kind] = self.by_type.get(kind, 0) + 1
            if kind in TERMINAL_EVENTS:
                self.terminal.setdefault(video_id, arrived)
        super().record(received)


def simulator_polls(simulator_url: str) -> int:
    import httpx

    requests = httpx.get(f"{simulator_url}/_sim/requests", timeout=30).json()
    return sum(1 for r in requests if r["method"] == "GET" and r["path"].count("/") == 3 and "/videos/" in r["path"])


def measure_jobs(session: StackSession, jobs: int) -> dict[str, Any]:
    from vidrelay.receiver import Receiver

    hooks = EventLog()
    receiver = Receiver(secret=session.info["webhook_secret"], on_event=hooks.record).start()
    polls_before = simulator_polls(session.info["simulator_url"])
    session.counter.reset()
    started = time.perf_counter()
    try:
        submitted = run_waves(session.info, receiver.url, hooks, jobs)
        # The run ends when its deliveries have: nothing still on its way to the receiver.
        settle_until = time.monotonic() + 10
        last = len(hooks.attempts)
        while time.monotonic() < settle_until:
            time.sleep(1.0)
            if len(hooks.attempts) == last:
                break
            last = len(hooks.attempts)
        # ...and when each completed job's previews are derived: the thumbnailer, set off by the same event as
        # the webhook, may still be decoding on a loaded machine, and its calls are the job's too.
        thumbnails_until = time.monotonic() + 60
        while session.counter.invocation_count(THUMBNAILER) < len(hooks.completed):
            if time.monotonic() >= thumbnails_until:
                break
            time.sleep(0.5)
        usage = session.counter.snapshot()
        elapsed = time.perf_counter() - started
        completions = upstream_completions(session.info["simulator_url"])
        polls = simulator_polls(session.info["simulator_url"]) - polls_before
    finally:
        receiver.stop()
    latencies = [
        hooks.completed[video_id] * 1000 - completions[prompt]
        for prompt, video_id in submitted.items()
        if video_id in hooks.completed and prompt in completions
    ]
    return {
        "latency": {
            "notes": WEBHOOK_NOTES,
            "method": webhook_method(jobs),
            "jobs": jobs,
            "webhooks_received": len(latencies),
            "other_events_received": hooks.other,
            **latency_summary(latencies),
        },
        "usage": usage,
        "seconds": elapsed,
        "jobs": jobs,
        "upstream_polls": polls,
        "events_received": dict(hooks.by_type),
    }


# --- delivery throughput ---------------------------------------------------------------------------------------


def completed_job(session: StackSession) -> Any:
    """One finished job of the jobs run, as the store holds it: the synthetic events are its events."""
    import boto3
    from vidrelay_core.store.codec import Table
    from vidrelay_core.store.jobs import JobStore

    table = Table(boto3.client("dynamodb"), session.info["jobs_table"])
    store = JobStore(table)
    import httpx

    headers = {"Authorization": f"Bearer {session.info['api_key']}"}
    page = httpx.get(f"{session.info['api_url']}/videos?limit=20", headers=headers, timeout=30).json()
    for video in page["data"]:
        if video["status"] == "completed":
            job = store.get_job(video["id"])
            if job is not None:
                return job
    raise RuntimeError("no completed job to make delivery events from")


def publish_events(session: StackSession, job: Any, receiver_url: str, count: int) -> tuple[float, float]:
    """Publishes `count` distinct video.completed events for `job` (each its own event id, webhook to the
    receiver) to the events topic, PUBLISHERS at a time; answers when the first was published and how long
    publishing them all took."""
    import os

    import boto3
    from vidrelay_core.events import EventPublisher

    publisher = EventPublisher(os.environ["VIDRELAY_EVENTS_TOPIC_ARN"], sns=boto3.client("sns"))
    variants = [
        replace(job, webhook_url=receiver_url, webhook_events=(), last_event_id=f"evt_bench{uuid.uuid4().hex}")
        for _ in range(count)
    ]
    first = time.time()
    with ThreadPoolExecutor(max_workers=PUBLISHERS) as pool:
        list(pool.map(lambda j: publisher.publish(j, retention_days=30), variants))
    return first, time.time() - first


def measure_throughput(session: StackSession, events: int, *, fail_half: bool, timeout_s: float) -> dict[str, Any]:
    from vidrelay.receiver import Receiver

    job = completed_job(session)
    first_attempt: dict[str, float] = {}
    arrivals: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def record(received: Any) -> None:
        with lock:
            arrivals.append(received.received_at)
            first_attempt.setdefault(received.headers.get("webhook-id", ""), received.received_at)
            if len(first_attempt) >= events:
                done.set()

    statuses: list[int | tuple[int, dict[str, str]]] = [500, 200] * (events * 4) if fail_half else []
    receiver = Receiver(secret=session.info["webhook_secret"], statuses=statuses, on_event=record).start()
    try:
        session.counter.reset()
        published_at, publish_s = publish_events(session, job, receiver.url, events)
        done.wait(timeout_s)
        ended = time.time()
        time.sleep(SETTLE_S)
        usage = session.counter.snapshot()
        with lock:
            settled = len(arrivals)
    finally:
        receiver.stop()
    with lock:
        window_end = max(first_attempt.values(), default=ended) if len(first_attempt) >= events else ended
        in_window = [t for t in arrivals if t <= window_end]
    seconds = max(window_end - published_at, 1e-6)
    notifier = usage.only(lambda who: who in ("NotifierFunction", "event_source_mapping:NotifierFunction"))
    requests = sum(n for (_, _, op), n in notifier.requests.items() if op != "ReceiveMessage(empty)")
    by_operation: dict[str, int] = {}
    for (_, service, operation), n in notifier.requests.items():
        by_operation[f"{service}.{operation}"] = by_operation.get(f"{service}.{operation}", 0) + n
    return {
        "receiver": "fails every other request (500), answers 200 otherwise" if fail_half else "answers 200",
        "events_published": events,
        "events_attempted": len(first_attempt),
        "attempts": len(in_window),
        "seconds": round(seconds, 2),
        "attempts_per_s": round(len(in_window) / seconds, 1),
        "published_in_s": round(publish_s, 2),
        "attempts_until_calls_counted": settled,
        "aws_calls_per_attempt": round(requests / settled, 2) if settled else None,
        "dynamodb_units_per_attempt": {
            kind: round(sum(v for (_, k), v in notifier.units.items() if k == kind) / max(1, settled), 2)
            for kind in ("read", "write", "index_write")
        },
        "notifier_calls": dict(sorted(by_operation.items())),
        "notifier_invocations": notifier.invocations["NotifierFunction"].count
        if "NotifierFunction" in notifier.invocations
        else 0,
    }


THROUGHPUT_METHOD = (
    "On the running local stack (4 notifier containers, each SQS batch of 10 handled side by side, as the "
    "template's event source mapping says), N distinct video.completed events of one finished job (each with its "
    "own event id and the job's webhook_url pointed at a fresh local receiver) are published to the events topic "
    f"{PUBLISHERS} at a time (published_in_s: how long that took; the figure is the notifier's only while it is "
    "clearly longer): the real path (SNS → webhook queue → notifier fan-out → signed POST). attempts_per_s = webhook "
    "POSTs the receiver got / (the last event's first attempt - the first publish). With the failing receiver "
    "(every other request answers 500) the window is the same (until every event had its first attempt); the "
    "retries inside it count as attempts. aws_calls_per_attempt = the requests the notifier and its event source "
    f"mapping made until {SETTLE_S:.0f} s after that window (empty receives left out: the polling floor) / the "
    "attempts received by then."
)


# --- the drain ----------------------------------------------------------------------------------------------


def measure_drain(session: StackSession, jobs: int, clients: int, timeout_s: float) -> dict[str, Any]:
    import httpx

    from vidrelay.receiver import Receiver

    hooks = EventLog()
    receiver = Receiver(secret=session.info["webhook_secret"], on_event=hooks.record).start()
    run_id = uuid.uuid4().hex[:8]
    headers = {"Authorization": f"Bearer {session.info['api_key']}"}
    submitted: dict[str, str] = {}
    failed: dict[str, int] = {}
    lock = threading.Lock()

    def create(n: int) -> None:
        prompt = bench_prompt(run_id, f"drain-{n}")
        try:
            with httpx.Client(base_url=session.info["api_url"], headers=headers, timeout=60) as api:
                answer = api.post("/videos", json={**TASK_FIELDS, "prompt": prompt, "webhook_url": receiver.url})
                answer.raise_for_status()
        except httpx.HTTPError as exc:
            # A create the loaded API did not answer in time is part of the figure, not the end of the run.
            with lock:
                failed[type(exc).__name__] = failed.get(type(exc).__name__, 0) + 1
            return
        with lock:
            submitted[prompt] = answer.json()["id"]

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=clients) as pool:
            list(pool.map(create, range(jobs)))
        created_s = time.perf_counter() - started
        log(f"drain: {jobs} jobs created in {created_s:.0f} s")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(hooks.terminal) < len(submitted):
            time.sleep(1.0)
        completions = upstream_completions(session.info["simulator_url"])
    finally:
        receiver.stop()
    lags = [
        (hooks.terminal[video_id] * 1000 - completions[prompt]) / 1000
        for prompt, video_id in submitted.items()
        if video_id in hooks.terminal and prompt in completions
    ]
    return {
        "method": (
            f"{jobs} jobs (sora-2, 4 s, 1280x720, each with webhook_url to a receiver answering 200) created by "
            f"{clients} concurrent clients against the local API (sim_seconds={WEBHOOK_SIM_SECONDS}); lag = the "
            "job's terminal event received - the simulator's completed_at for its task."
        ),
        "jobs": jobs,
        "created_in_s": round(created_s, 1),
        "creates_failed": failed,
        "terminal_events_received": len(hooks.terminal),
        "missing": len(submitted) - len(hooks.terminal),
        "lag_p50_s": round(percentile(lags, 50), 2) if lags else None,
        "lag_p99_s": round(percentile(lags, 99), 2) if lags else None,
        "lag_max_s": round(max(lags), 2) if lags else None,
        "events_received": dict(hooks.by_type),
    }
