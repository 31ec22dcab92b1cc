"""In-memory stand-ins for the adapters the use cases talk to (the job store, the tenants and counters, the event
publisher, the queues, an upstream account), so the use cases' own rules can be read and tested without moto.

Each fake keeps the one guarantee the real adapter gives that the use cases rely on: the job store's writes are
conditional on the version read (StaleJob otherwise), a new job's counters refuse it (LimitReached) when a limit
is reached, and the Idempotency-Key record answers a replay.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from vidrelay_core.errors import IdempotencyKeyReused, IdempotentReplay, LimitReached, StaleJob, UpstreamUnavailable
from vidrelay_core.events import envelope
from vidrelay_core.jobs import TERMINAL, Job
from vidrelay_core.store.jobs import CounterWrite, DueKey, IdempotencyRecord
from vidrelay_core.store.tenants import TenantLimits
from vidrelay_core.upstream.base import Account, ContentRequest, PollResult, StreamUpdate, SubmitResult


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeJobStore:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.items: dict[str, Job] = {}
        self.idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
        self.refuse: str | None = None  # a counter kind that refuses the next new job
        self.writes = 0
        # Called right before a save is applied: lets a test make "something else" move the job first.
        self.before_save: Any = None

    def create_job(
        self,
        job: Job,
        *,
        idempotency_key: str | None = None,
        request_hash: str = "",
        counters: Sequence[CounterWrite] = (),
    ) -> Job:
        if idempotency_key is not None and (job.tenant, idempotency_key) in self.idempotency:
            taken = self.idempotency[(job.tenant, idempotency_key)]
            if taken.request_hash != request_hash:
                raise IdempotencyKeyReused(idempotency_key)
            raise IdempotentReplay(taken.video_id)
        if self.refuse is not None and self.refuse in {c.kind for c in counters}:
            raise LimitReached(self.refuse)
        self.items[job.id] = job
        if idempotency_key is not None:
            self.idempotency[(job.tenant, idempotency_key)] = IdempotencyRecord(job.id, request_hash)
        self.writes += 1
        return job

    def _current(self, job: Job) -> Job:
        stored = self.items.get(job.id)
        if stored is None or stored.version != job.version:
            raise StaleJob(f"{job.id} moved past version {job.version}")
        return stored

    def save(self, before: Job, after: Job) -> Job:
        if self.before_save is not None:
            hook, self.before_save = self.before_save, None
            hook(before)
        self._current(before)
        stored = replace(after, version=before.version + 1, updated_at=self.clock())
        self.items[stored.id] = stored
        self.writes += 1
        return stored

    def mark_published(self, job: Job) -> Job:
        self._current(job)
        done = replace(job, event_published=True)
        if job.state in TERMINAL:
            done = replace(done, next_check_at=None)
        self.items[job.id] = done
        return done

    def reschedule(self, job: Job, next_check_at: float) -> Job:
        self._current(job)
        moved = replace(job, next_check_at=next_check_at)
        self.items[job.id] = moved
        return moved

    def get_job(self, job_id: str) -> Job | None:
        return self.items.get(job_id)

    def get_idempotency(self, tenant: str, key: str) -> IdempotencyRecord | None:
        return self.idempotency.get((tenant, key))

    def due_keys(self, shard: int, until: float, *, limit: int = 10_000) -> list[DueKey]:
        due = self.due_jobs(shard, until, limit=limit)
        return [DueKey(j.id, j.next_check_at or 0.0) for j in due]

    def get_jobs(self, job_ids: Sequence[str]) -> dict[str, Job]:
        return {i: self.items[i] for i in job_ids if i in self.items}

    def due_jobs(self, shard: int, now: float, *, limit: int = 200) -> list[Job]:
        due = [
            j
            for j in self.items.values()
            if j.next_check_at is not None and j.next_check_at <= now and j.inflight_shard == shard
        ]
        return sorted(due, key=lambda j: j.next_check_at or 0)[:limit]

    def list_jobs(self, tenant: str, *, after: Job | None, limit: int, newest_first: bool) -> tuple[list[Job], bool]:
        jobs = sorted(
            (j for j in self.items.values() if j.tenant == tenant and j.deleted_at is None),
            key=lambda j: (j.created_at, j.id),
            reverse=newest_first,
        )
        if after is not None:
            jobs = jobs[[j.id for j in jobs].index(after.id) + 1 :]
        return jobs[:limit], len(jobs) > limit


@dataclass
class FakeTenants:
    limits_by_tenant: dict[str, TenantLimits] = field(default_factory=dict)

    def limits(self, tenant: str) -> TenantLimits:
        return self.limits_by_tenant.get(tenant, TenantLimits())


@dataclass
class FakeCounters:
    used: dict[tuple[str, int], int] = field(default_factory=dict)
    spent: dict[tuple[str, str], float] = field(default_factory=dict)

    def writes_for_new_job(self, job: Job, *, budget_usd: float | None, rate_per_minute: int | None) -> list[Any]:
        writes = [CounterWrite("usage", {}), CounterWrite("spend", {})]
        return writes + ([CounterWrite("rate", {})] if rate_per_minute is not None else [])

    def rate_used(self, tenant: str, window: int) -> int:
        return self.used.get((tenant, window), 0)

    def month_spend(self, tenant: str, month: str) -> float:
        return self.spent.get((tenant, month), 0.0)


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.webhooks: list[bool] = []  # each event's `webhooks` attribute
        self.fail_next = False

    def publish(self, job: Job, *, retention_days: int, webhooks: bool = True) -> dict[str, Any]:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("SNS is unreachable")
        event = envelope(job, retention_days=retention_days)
        self.events.append(event)
        self.webhooks.append(webhooks)
        return event

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]


class FakeEndpointInterests:
    """The event types of the tenant's enabled endpoints (empty tuple: every type), and how often they were read."""

    def __init__(self, interests: list[tuple[str, ...]]) -> None:
        self.interests = interests
        self.reads = 0

    def endpoint_interests(self, tenant: str) -> list[tuple[str, ...]]:
        self.reads += 1
        return list(self.interests)


class FakeQueues:
    def __init__(self) -> None:
        self.downloads: list[str] = []
        self.streams: list[str] = []

    def send_download(self, job: Job) -> None:
        self.downloads.append(job.id)

    def send_stream(self, job: Job) -> None:
        self.streams.append(job.id)


class FakeInputs:
    """No references: text-to-video jobs only."""

    def prepare(self, *args: Any) -> list[Any]:
        return []

    def load(self, job: Job) -> list[Any]:
        return []

    def drop(self, references: Any) -> None:
        return None


class FakeAdapter:
    """One upstream account whose answers the test scripts: each `submits` / `polls` entry is a result to return
    or an exception to raise, in order."""

    def __init__(self, name: str, *, submits: Sequence[Any] = (), polls: Sequence[Any] = ()) -> None:
        self.account = Account(family="videos", base_url=f"https://{name}.example", api_key="sk-test", name=name)
        self.submits = list(submits)
        self.polls = list(polls)
        self.submitted: list[str] = []
        self.polled: list[str] = []

    def submit(self, job: Job, references: Any = ()) -> SubmitResult:
        self.submitted.append(job.id)
        answer = self.submits.pop(0) if self.submits else SubmitResult(task_id=f"task-{job.id}", state="queued")
        if isinstance(answer, BaseException):
            raise answer
        assert isinstance(answer, SubmitResult)
        return answer

    def poll(self, job: Job) -> PollResult:
        self.polled.append(job.id)
        answer = self.polls.pop(0) if self.polls else PollResult(state="queued", progress=0, raw_status="queued")
        if isinstance(answer, BaseException):
            raise answer
        assert isinstance(answer, PollResult)
        return answer

    def content_request(self, job: Job) -> ContentRequest:
        return ContentRequest(method="GET", url=f"{self.account.base_url}/content/{job.upstream_task_id}", headers={})

    def stream(self, job: Job, references: Any = ()) -> Iterator[StreamUpdate]:
        raise TypeError("the polling fake has no stream")


def refused(status: int = 503, retry_after_s: float | None = None) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        f"upstream answered {status}", code="upstream_unavailable", status=status, retry_after_s=retry_after_s
    )
