"""Creating a video (`POST /v1/videos`, and the S3 intake through the same door): validated, written once with
its counters and Idempotency-Key, announced, and submitted upstream inside the request (or handed to the
streamer for the streaming models)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from . import ids
from .catalog import get_model
from .config import Settings
from .contract import CreateRequest, parse_create
from .errors import (
    Conflict,
    IdempotencyKeyReused,
    IdempotentReplay,
    InvalidRequest,
    LimitReached,
    PaymentRequired,
    RateLimited,
    StaleJob,
)
from .inputs import ReferenceInputs
from .jobs import IntakeOrigin, Job
from .lifecycle import Lifecycle
from .queries import VideoQueries
from .queues import Queues
from .store.counters import CounterStore, rate_window, seconds_to_next_window, utc_day
from .store.jobs import JobStore
from .store.tenants import TenantStore
from .submission import Submitter

MAX_IDEMPOTENCY_KEY_CHARS = 255


def _key_reused() -> Conflict:
    return Conflict(
        "The Idempotency-Key was already used with a different request body within 24 hours.",
        param="Idempotency-Key",
        code="idempotency_key_reused",
    )


def rate_limited(tenant: str, limit: int, at: float) -> RateLimited:
    retry_after = seconds_to_next_window(at)
    return RateLimited(
        f"Rate limit reached: tenant '{tenant}' may create at most {limit} videos per minute. Try again in "
        f"{retry_after} s. Nothing was stored or sent upstream.",
        retry_after_s=retry_after,
    )


class CreateVideo:
    def __init__(
        self,
        settings: Settings,
        *,
        jobs: JobStore,
        tenants: TenantStore,
        counters: CounterStore,
        lifecycle: Lifecycle,
        inputs: ReferenceInputs,
        submitter: Submitter,
        queues: Queues,
        queries: VideoQueries,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.tenants = tenants
        self.counters = counters
        self.lifecycle = lifecycle
        self.inputs = inputs
        self.submitter = submitter
        self.queues = queues
        self.queries = queries
        self.clock = clock

    def create_from_fields(
        self,
        tenant: str,
        fields: dict[str, Any],
        files: dict[str, Any] | None = None,
        *,
        multipart: bool,
        idempotency_key: str | None = None,
        intake: IntakeOrigin | None = None,
    ) -> Job:
        """A create from a body's fields and files: validated, then created. The S3 intake calls this too, so an
        upload is held to exactly the API's rules."""
        request = parse_create(
            fields,
            files=files,
            multipart=multipart,
            max_prompt_chars=self.settings.max_prompt_chars,
            allow_loopback_urls=self.settings.allow_loopback_urls,
        )
        return self.create(tenant, request, idempotency_key=idempotency_key, intake=intake)

    def create(
        self,
        tenant: str,
        request: CreateRequest,
        *,
        idempotency_key: str | None = None,
        intake: IntakeOrigin | None = None,
    ) -> Job:
        spec = get_model(request.model)
        assert spec is not None  # validated with the request
        if idempotency_key is not None and len(idempotency_key) > MAX_IDEMPOTENCY_KEY_CHARS:
            raise InvalidRequest("Idempotency-Key", idempotency_key, f"at most {MAX_IDEMPOTENCY_KEY_CHARS} characters")
        if idempotency_key is not None:
            # A replay is answered before any work (no image fitted, nothing stored, not counted against the rate
            # limit); the transaction below still decides when two first tries race.
            record = self.jobs.get_idempotency(tenant, idempotency_key)
            if record is not None and record.request_hash != request.fingerprint():
                raise _key_reused()
            if record is not None:
                return self.queries.get(tenant, record.video_id)
        limits = self.tenants.limits(tenant)
        rate = limits.rate_per_minute or self.settings.rate_per_minute or None
        started = self.clock()
        if rate is not None and self.counters.rate_used(tenant, rate_window(started)) >= rate:
            # Full already: refused before the image is fitted and stored. The transaction is what guarantees it.
            raise rate_limited(tenant, rate, started)
        video_id = ids.new_video_id()
        # Reference inputs are fetched, checked and prepared before anything is written: a bad file is a 400
        # that leaves no job and sends nothing upstream.
        prepared = self.inputs.prepare(tenant, video_id, request, spec)
        references = tuple(stored for stored, _ in prepared)
        now = self.clock()
        job = Job(
            id=video_id,
            tenant=tenant,
            model=spec.id,
            family=spec.family,
            provider=spec.provider,
            prompt=request.prompt,
            seconds=request.seconds,
            size=request.size,
            created_at=now,
            updated_at=now,
            metadata=dict(request.metadata),
            webhook_url=request.webhook_url,
            webhook_events=request.webhook_events,
            cost_usd=spec.price.estimate(int(request.seconds), request.size),
            price_rule=spec.price.describe(),
            idempotency_key=idempotency_key,
            options=dict(request.options),
            references=references,
            intake=intake,
            # Written without a submit lease: if the api dies before taking one, nothing can have gone upstream
            # and the poller submits the job after the grace period.
            inflight_shard=random.randrange(self.settings.inflight_shards),
            next_check_at=now + self.settings.submit_grace_s,
            last_event_id=ids.event_id(video_id, 1, "video.queued"),
            last_event_type="video.queued",
            event_published=False,
        )
        try:
            self.jobs.create_job(
                job,
                idempotency_key=idempotency_key,
                request_hash=request.fingerprint(),
                counters=self.counters.writes_for_new_job(job, budget_usd=limits.budget_usd, rate_per_minute=rate),
            )
        except IdempotentReplay as replay:
            self.inputs.drop(references)
            return self.queries.get(tenant, replay.video_id)
        except IdempotencyKeyReused:
            self.inputs.drop(references)
            raise _key_reused() from None
        except LimitReached as refused:
            self.inputs.drop(references)
            raise self._refusal(job, refused.kind, limits.budget_usd, rate) from None
        job = self.lifecycle.publish_pending(job)
        if spec.streaming:
            # The stream lasts minutes: the streamer holds it, not this request.
            self.queues.send_stream(job)
            return job
        try:
            # A poller that claimed the job first wins, and then this api does not submit.
            claimed = self.lifecycle.save(job, self.submitter.leased(job, self.clock()))
            return self.submitter.submit(claimed, references=prepared)
        except StaleJob:
            # Something else moved the job while this request worked on it (a poller's sweep, a delete): the
            # answer is the job as it is now, never an error: the job exists, and a client retrying on a 5xx
            # would make a second, billed one.
            return self.jobs.get_job(video_id) or job

    def _refusal(self, job: Job, kind: str, budget_usd: float | None, rate: int | None) -> Exception:
        if kind == "rate" and rate is not None:
            return rate_limited(job.tenant, rate, job.created_at)
        month = utc_day(job.created_at)[:7]
        spent = self.counters.month_spend(job.tenant, month)
        return PaymentRequired(
            f"The monthly budget of ${budget_usd or 0:.2f} is reached: ${spent:.2f} is spent in {month} "
            f"and this video would add ${job.cost_usd:.2f}. Nothing was sent upstream.",
            param=None,
        )
