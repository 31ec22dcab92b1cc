"""The relay's operations: what the api, poller, downloader and notifier functions each call.

Every state change goes through `Relay.transition`, which is one conditional write followed by one event. The
event is recorded on the job before it is sent (the outbox), so a crash between the write and the publish is
repaired by the poller, which republishes it with the same event id.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import ids
from .catalog import get_model
from .config import Settings
from .errors import (
    Conflict,
    InvalidRequest,
    JobNotFound,
    NotReady,
    PaymentRequired,
    RateLimited,
    StaleJob,
    TransferError,
    Unauthorized,
    UpstreamAmbiguous,
    UpstreamError,
    UpstreamRejected,
    UpstreamResultGone,
    UpstreamUnavailable,
)
from .events import EventPublisher, envelope
from .jobs import EVENT_FOR_STATE, IN_FLIGHT, TERMINAL, IntakeOrigin, Job, State
from .requests import CreateRequest, parse_create
from .store import IdempotentReplay, JobStore, rate_limited, rate_window
from .upstream import Adapter, adapter_for, http_client

if TYPE_CHECKING:
    from .references import PreparedImage

PROGRESS_EVENT_EVERY_S = 5.0
MAX_DOWNLOAD_ATTEMPTS = 5


@dataclass(frozen=True)
class Timing:
    """Leases and grace periods. The local stack shortens them so crash tests converge in seconds."""

    submit_lease_s: float = 60.0
    # How long the poller leaves a new job to the api that created it before submitting it itself.
    submit_grace_s: float = 10.0
    download_lease_s: float = 960.0
    outbox_grace_s: float = 30.0
    max_job_age_s: float = 6 * 3600.0

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Timing:
        def get(name: str, default: float) -> float:
            return float(env.get(f"VIDRELAY_{name}", default))

        return cls(
            submit_lease_s=get("SUBMIT_LEASE_S", cls.submit_lease_s),
            submit_grace_s=get("SUBMIT_GRACE_S", cls.submit_grace_s),
            download_lease_s=get("DOWNLOAD_LEASE_S", cls.download_lease_s),
            outbox_grace_s=get("OUTBOX_GRACE_S", cls.outbox_grace_s),
            max_job_age_s=get("MAX_JOB_AGE_S", cls.max_job_age_s),
        )


def _day(field: str, value: str) -> str:
    try:
        return time.strftime("%Y-%m-%d", time.strptime(value, "%Y-%m-%d"))
    except ValueError:
        raise InvalidRequest(field, value, "a UTC day as YYYY-MM-DD") from None


@dataclass
class SweepStats:
    sweeps: int = 0
    due: int = 0
    checked: int = 0
    stale: int = 0
    errors: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


class Relay:
    def __init__(
        self,
        settings: Settings,
        *,
        store: JobStore,
        publisher: EventPublisher,
        s3: Any,
        sqs: Any,
        timing: Timing | None = None,
        adapters: Callable[[str], Adapter] = adapter_for,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.publisher = publisher
        self.s3 = s3
        self.sqs = sqs
        self.timing = timing or Timing()
        self.adapters = adapters
        self.clock = clock

    # -- transitions and events -----------------------------------------------------------------------------

    def transition(self, job: Job, state: State, **changes: Any) -> Job:
        """One conditional write (expected version) and, when the client-visible story moved on, one event."""
        if not job.event_published:
            job = self.publish_pending(job)
        now = self.clock()
        after = job.moved(state, **changes)
        event_type = EVENT_FOR_STATE[state]
        new_type = event_type != job.last_event_type
        progress_moved = (
            event_type == "video.in_progress"
            and after.progress != job.progress
            and now - job.last_progress_event_at >= PROGRESS_EVENT_EVERY_S
        )
        publish = new_type or progress_moved
        if publish:
            after = after.with_changes(
                last_event_id=ids.event_id(job.id, job.version + 1, event_type),
                last_event_type=event_type,
                event_published=False,
            )
            if event_type == "video.in_progress":
                after = after.with_changes(last_progress_event_at=now)
        if state in TERMINAL:
            # A finished job stays in the in-flight index only until its event is out.
            after = after.with_changes(next_check_at=now + self.timing.outbox_grace_s if publish else None)
        stored = self.store.save(job, after)
        return self.publish_pending(stored) if publish else stored

    def publish_pending(self, job: Job) -> Job:
        if job.event_published or not job.last_event_id:
            return job
        self.publisher.publish(
            envelope(job, retention_days=self.settings.retention_days),
            tenant=job.tenant,
            origin="intake" if job.intake is not None else None,
        )
        try:
            return self.store.mark_published(job)
        except StaleJob:
            # Someone moved the job on meanwhile; the event went out, and is idempotent by id anyway.
            return job

    # -- api ------------------------------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> str:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("Missing bearer API key in the Authorization header.")
        key = authorization[7:].strip()
        tenant = self.store.tenant_for_key(ids.hash_api_key(key)) if key else None
        if tenant is None:
            raise Unauthorized("Incorrect API key provided.")
        return tenant

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
        """`POST /v1/videos` from its body's fields and files: validated, then created. The S3 intake calls
        this too, so an upload is held to exactly the API's rules."""
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
        assert spec is not None  # validated by parse_create
        if idempotency_key is not None and len(idempotency_key) > 255:
            raise InvalidRequest("Idempotency-Key", idempotency_key, "at most 255 characters")
        if idempotency_key is not None:
            # A replay is answered before any work (no image fitted, nothing stored, not counted against the rate
            # limit); the transaction below still decides when two first tries race.
            record = self.store.get_idempotency(tenant, idempotency_key)
            if record is not None and record.request_hash == request.fingerprint():
                return self.get(tenant, record.video_id)
        limits = self.store.tenant_limits(tenant)
        rate = limits.rate_per_minute or self.settings.rate_per_minute or None
        started = self.clock()
        if rate is not None and self.store.rate_used(tenant, rate_window(started)) >= rate:
            # Full already: refused before the image is fitted and stored. The transaction is what guarantees it.
            raise rate_limited(tenant, rate, started)
        video_id = ids.new_video_id()
        # The reference image is fetched, checked and fitted before anything is written: a bad image is a 400
        # that leaves no job and sends nothing upstream.
        reference: PreparedImage | None = None
        reference_key: str | None = None
        if request.reference is not None:
            from .references import prepare_reference  # Pillow, loaded only when an image comes

            reference = prepare_reference(
                request.reference,
                size=request.size,
                allow_loopback=self.settings.allow_loopback_urls,
                formats=spec.reference_formats,
                must_match_size=spec.reference_must_match_size,
            )
            reference_key = f"inputs/{tenant}/{video_id}.{reference.extension}"
            # Kept where a later submit (the poller's retry) can read it; the bucket's lifecycle removes it.
            self.s3.put_object(
                Bucket=self.settings.results_bucket,
                Key=reference_key,
                Body=reference.data,
                ContentType=reference.content_type,
                Metadata={"video-id": video_id, "tenant": tenant},
            )
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
            reference_key=reference_key,
            reference_content_type=reference.content_type if reference else None,
            intake=intake,
            # Written without a submit lease: if the api dies before taking one, nothing can have gone upstream
            # and the poller submits the job after the grace period.
            inflight_shard=random.randrange(self.settings.inflight_shards),
            next_check_at=now + self.timing.submit_grace_s,
            last_event_id=ids.event_id(video_id, 1, "video.queued"),
            last_event_type="video.queued",
            event_published=False,
        )
        try:
            self.store.create_job(
                job,
                idempotency_key=idempotency_key,
                request_hash=request.fingerprint(),
                budget_usd=limits.budget_usd,
                rate_per_minute=rate,
            )
        except IdempotentReplay as replay:
            self._drop_reference(reference_key)
            return self.get(tenant, replay.video_id)
        except (Conflict, PaymentRequired, RateLimited):
            self._drop_reference(reference_key)
            raise
        job = self.publish_pending(job)
        try:
            # The lease is written right before the request, so "leased but unanswered" means the upstream may
            # have the task; a poller that claimed the job first wins, and then this api does not submit.
            claimed = self.store.save(job, self._submit_lease(job, self.clock()))
        except StaleJob:
            return self.store.get_job(video_id) or job  # a poller took it (or it was deleted) meanwhile
        return self.submit(claimed, reference=reference.data if reference else None)

    def _submit_lease(self, job: Job, now: float) -> Job:
        return job.with_changes(
            submit_started_at=now,
            submit_attempts=job.submit_attempts + 1,
            next_check_at=now + self.timing.submit_lease_s,
        )

    def _drop_reference(self, key: str | None) -> None:
        """Removes a reference image no job will use (best effort: the lifecycle rule catches what is left)."""
        if key is None:
            return
        try:
            self.s3.delete_object(Bucket=self.settings.results_bucket, Key=key)
        except Exception:
            from .obs import logger

            logger.warning("could not delete an unused reference image", extra={"key": key})

    def _load_reference(self, job: Job) -> bytes | None:
        """The job's prepared reference image from S3. None when it is gone for good (NoSuchKey); a transient
        S3 error propagates."""
        from botocore.exceptions import ClientError

        assert job.reference_key is not None
        try:
            response = self.s3.get_object(Bucket=self.settings.results_bucket, Key=job.reference_key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return bytes(response["Body"].read())

    def submit(self, job: Job, reference: bytes | None = None) -> Job:
        """Sends the job upstream. Only a refusal that cannot have been billed leaves it for another try.
        An image-to-video job's reference comes from S3 unless the caller already holds it (the api does)."""
        if job.reference_key is not None and reference is None:
            from botocore.exceptions import BotoCoreError, ClientError

            try:
                reference = self._load_reference(job)
            except (BotoCoreError, ClientError):
                # Storage hiccup: nothing went upstream, so the poller may simply try again later.
                return self.store.save(
                    job, job.with_changes(submit_started_at=None, next_check_at=self.clock() + self._poll_interval(job))
                )
            if reference is None:
                return self.transition(
                    job,
                    "failed",
                    error_code="reference_missing",
                    error_message="The reference image of this job is no longer stored, so it was never sent "
                    "upstream. Create the video again.",
                )
        try:
            result = self.adapters(job.family).submit(job, reference)
        except UpstreamUnavailable as exc:
            delay = max(self._poll_interval(job), exc.retry_after_s or 0.0)
            return self.store.save(job, job.with_changes(submit_started_at=None, next_check_at=self.clock() + delay))
        except UpstreamAmbiguous as exc:
            return self.transition(
                job,
                "failed",
                error_code="upstream_submit_unknown",
                error_message=f"{exc.message}; not resubmitted, since the upstream may have "
                "accepted (and billed) it. Create the video again if you want a new try.",
            )
        except UpstreamRejected as exc:
            return self.transition(job, "failed", error_code=exc.code, error_message=exc.message)
        return self.transition(
            job,
            "running" if result.state == "in_progress" else "submitted",
            upstream_task_id=result.task_id,
            submit_started_at=None,
            progress=result.progress,
            next_check_at=self.clock() + self._poll_interval(job),
        )

    def get(self, tenant: str, video_id: str) -> Job:
        job = self.store.get_job(video_id) if video_id.startswith("video_") else None
        # Another tenant's job is indistinguishable from a missing one.
        if job is None or job.tenant != tenant or job.deleted_at is not None:
            raise JobNotFound(video_id)
        return job

    def usage(self, tenant: str, first_day: str | None, last_day: str | None) -> dict[str, Any]:
        """The tenant's estimated spend per day and model between two UTC days (default: this month so far)."""
        today = time.strftime("%Y-%m-%d", time.gmtime(self.clock()))
        first = _day("from", first_day) if first_day else today[:8] + "01"
        last = _day("to", last_day) if last_day else today
        if first > last:
            raise InvalidRequest("from", first, f"a day on or before 'to' ({last})")
        rows = self.store.usage(tenant, first, last)
        return {
            "object": "usage",
            "from": first,
            "to": last,
            "total_usd": round(sum(r["estimated_usd"] for r in rows), 4),
            "jobs": sum(r["jobs"] for r in rows),
            "data": sorted(rows, key=lambda r: (r["day"], r["model"])),
        }

    def list(self, tenant: str, *, after: str | None, limit: int, order: str) -> tuple[list[Job], bool]:
        cursor = self.get(tenant, after) if after else None
        return self.store.list_jobs(tenant, after=cursor, limit=limit, newest_first=order == "desc")

    def delete(self, tenant: str, video_id: str) -> Job:
        job = self.get(tenant, video_id)
        now = self.clock()
        while True:
            try:
                if job.state in IN_FLIGHT:
                    # The seeds offer no upstream cancel; the upstream task just runs out and is never fetched.
                    job = self.transition(
                        job,
                        "canceled",
                        deleted_at=now,
                        error_code="canceled",
                        error_message="The video was deleted before it finished.",
                    )
                else:
                    job = self.store.save(job, job.with_changes(deleted_at=now))
                break
            except StaleJob:
                job = self.get(tenant, video_id)
        if job.output is not None:
            self.s3.delete_object(Bucket=job.output.bucket, Key=job.output.key)
        if job.reference_key is not None:
            self.s3.delete_object(Bucket=self.settings.results_bucket, Key=job.reference_key)
        return job

    def content_url(self, tenant: str, video_id: str, variant: str) -> str:
        job = self.get(tenant, video_id)
        if variant != "video":
            raise InvalidRequest("variant", variant, '"video" (thumbnails and spritesheets are not kept)')
        if job.state != "completed" or job.output is None:
            raise NotReady(
                f"Video '{video_id}' is {job.public_status}; content is available once it is completed.",
                param="video_id",
            )
        return str(
            self.s3.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": job.output.bucket,
                    "Key": job.output.key,
                    "ResponseContentType": "video/mp4",
                    "ResponseContentDisposition": f'attachment; filename="{job.id}.mp4"',
                },
                ExpiresIn=self.settings.presign_ttl_s,
            )
        )

    # -- poller ---------------------------------------------------------------------------------------------

    def sweep_once(self, *, workers: int = 16) -> SweepStats:
        """Checks every due in-flight job once: one Query per shard on the sparse index, no scan."""
        stats = SweepStats(sweeps=1)
        now = self.clock()
        due = [job for shard in range(self.settings.inflight_shards) for job in self.store.due_jobs(shard, now)]
        stats.due = len(due)
        if not due:
            return stats
        with ThreadPoolExecutor(max_workers=min(workers, len(due))) as pool:
            for outcome in pool.map(self._check_safely, due):
                stats.checked += 1
                stats.by_outcome[outcome] = stats.by_outcome.get(outcome, 0) + 1
                if outcome == "stale":
                    stats.stale += 1
                elif outcome == "error":
                    stats.errors += 1
        return stats

    def sweep(self, *, until: float, tick_s: float = 1.0) -> SweepStats:
        """Sweeps until `until` (the scheduled invocation's budget), so jobs are checked at their own interval
        rather than once a minute."""
        total = SweepStats(sweeps=0)
        while True:
            stats = self.sweep_once()
            total.sweeps += 1
            total.due += stats.due
            total.checked += stats.checked
            total.stale += stats.stale
            total.errors += stats.errors
            for key, value in stats.by_outcome.items():
                total.by_outcome[key] = total.by_outcome.get(key, 0) + value
            if self.clock() + tick_s >= until:
                return total
            time.sleep(tick_s)

    def _check_safely(self, job: Job) -> str:
        try:
            return self.check(job)
        except StaleJob:
            return "stale"
        except Exception:  # one bad job must not stop the sweep; it stays due and is tried next time
            from .obs import logger

            logger.exception("check failed", extra={"video_id": job.id})
            return "error"

    def check(self, job: Job) -> str:
        if not job.event_published:
            job = self.publish_pending(job)
            if job.state in TERMINAL:
                return "republished"
        if job.state in TERMINAL:
            if job.next_check_at is not None:
                self.store.mark_published(job)
            return "finished"
        now = self.clock()
        if job.state == "accepted":
            return self._check_accepted(job, now)
        if job.state == "downloading":
            return self._check_downloading(job, now)
        if now - job.created_at > self.timing.max_job_age_s:
            self.transition(
                job,
                "failed",
                error_code="upstream_timeout",
                error_message="The upstream did not finish the video in time.",
            )
            return "timeout"
        return self._poll(job, now)

    def _check_accepted(self, job: Job, now: float) -> str:
        if job.submit_started_at is not None:
            if now - job.submit_started_at < self.timing.submit_lease_s:
                self.store.reschedule(job, job.submit_started_at + self.timing.submit_lease_s)
                return "submit_in_progress"
            # The submitter died mid-request: the upstream may have the task. Never submit twice.
            self.transition(
                job,
                "failed",
                error_code="upstream_submit_unknown",
                error_message="The submit was interrupted; not resubmitted, since the upstream may "
                "have accepted (and billed) it. Create the video again for a new try.",
            )
            return "submit_unknown"
        if job.submit_attempts == 0 and now - job.created_at < self.timing.submit_grace_s:
            # The api that created it is normally submitting right now.
            self.store.reschedule(job, job.created_at + self.timing.submit_grace_s)
            return "submit_pending"
        claimed = self.store.save(job, self._submit_lease(job, now))
        self.submit(claimed)
        return "submitted"

    def _check_downloading(self, job: Job, now: float) -> str:
        if job.download_attempts >= MAX_DOWNLOAD_ATTEMPTS:
            self.transition(
                job,
                "failed",
                error_code="download_failed",
                error_message="The finished video could not be saved after several attempts.",
            )
            return "download_failed"
        # The download message was lost or its worker died: send another (the downloader is idempotent).
        job = self.store.save(
            job,
            job.with_changes(
                download_attempts=job.download_attempts + 1, next_check_at=now + self.timing.download_lease_s
            ),
        )
        self._enqueue_download(job)
        return "download_resent"

    def _poll(self, job: Job, now: float) -> str:
        try:
            result = self.adapters(job.family).poll(job)
        except UpstreamResultGone as exc:
            self.transition(
                job,
                "expired",
                error_code=exc.code,
                error_message="The upstream no longer has this video (its retention ran out).",
            )
            return "expired"
        except UpstreamUnavailable as exc:
            self.store.reschedule(job, now + max(self._poll_interval(job), exc.retry_after_s or 0.0))
            return "poll_retry"
        except UpstreamError as exc:
            self.transition(job, "failed", error_code=exc.code, error_message=exc.message)
            return "failed"
        next_check = now + self._poll_interval(job)
        if result.state == "queued":
            self.store.reschedule(job, next_check)
            return "queued"
        if result.state == "in_progress":
            if job.state == "running" and result.progress <= job.progress:
                self.store.reschedule(job, next_check)
                return "unchanged"
            self.transition(job, "running", progress=max(result.progress, job.progress), next_check_at=next_check)
            return "progress"
        if result.state == "failed":
            self.transition(
                job,
                "failed",
                error_code=result.error_code or "upstream_failed",
                error_message=result.error_message or "The upstream failed to generate the video.",
            )
            return "failed"
        job = self.transition(
            job,
            "downloading",
            progress=max(job.progress, 99),
            download_attempts=1,
            next_check_at=now + self.timing.download_lease_s,
        )
        self._enqueue_download(job)
        return "downloading"

    def _enqueue_download(self, job: Job) -> None:
        self.sqs.send_message(
            QueueUrl=self.settings.download_queue_url,
            MessageBody=json.dumps({"video_id": job.id, "attempt": job.download_attempts}),
        )

    def _poll_interval(self, job: Job) -> float:
        spec = get_model(job.model)
        base = spec.poll_interval_s if spec else 15.0
        return base * self.settings.poll_interval_scale

    # -- downloader -----------------------------------------------------------------------------------------

    def download(self, video_id: str) -> str:
        """Streams the finished MP4 into S3 and completes the job. Safe to run twice: the key is fixed, so a
        second run overwrites the same object, and only one run can complete the job."""
        from .transfer import stream_url_to_s3

        job = self.store.get_job(video_id)
        if job is None or job.state != "downloading":
            return "skipped"
        request = self.adapters(job.family).content_request(job)
        key = f"videos/{job.tenant}/{job.id}.mp4"
        try:
            result = stream_url_to_s3(
                http_client(),
                request.method,
                request.url,
                headers=request.headers,
                s3_client=self.s3,
                bucket=self.settings.results_bucket,
                key=key,
                metadata={"video-id": job.id, "tenant": job.tenant},
            )
        except TransferError as exc:
            status = getattr(exc, "status", None)
            if status == 404:
                self._finish_download(
                    video_id,
                    "expired",
                    error_code="upstream_expired",
                    error_message="The upstream no longer has this video.",
                )
                return "expired"
            if not exc.retryable:
                self._finish_download(video_id, "failed", error_code=exc.code, error_message=str(exc))
                return "failed"
            raise
        outcome = self._finish_download(
            video_id, "completed", output=result.output(), completed_at=self.clock(), progress=100
        )
        if outcome == "gone":
            # Deleted or canceled while the bytes were moving: do not keep what nobody can see.
            self.s3.delete_object(Bucket=result.bucket, Key=result.key)
        return outcome

    def _finish_download(self, video_id: str, state: State, **changes: Any) -> str:
        for _ in range(5):
            job = self.store.get_job(video_id)
            if job is None or job.state in ("canceled",) or job.deleted_at is not None:
                return "gone"
            if job.state != "downloading":
                return "skipped"
            try:
                self.transition(job, state, **changes)
                return state
            except StaleJob:
                continue
        raise StaleJob(video_id)
