"""The relay's operations: what the api, poller, downloader and notifier functions each call.

Every state change goes through `Relay.transition`, which is one conditional write followed by one event. The
event is recorded on the job before it is sent (the outbox), so a crash between the write and the publish is
repaired by the poller, which republishes it with the same event id.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from . import ids
from .catalog import get_model
from .config import Settings
from .contract import MAX_REFERENCE_BYTES_PER_JOB, CreateRequest, ReferenceInput, parse_create
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
from .jobs import EVENT_FOR_STATE, IN_FLIGHT, TERMINAL, IntakeOrigin, Job, State, StoredReference
from .store import IdempotentReplay, JobStore, rate_limited, rate_window
from .upstream import Adapter, StreamingAdapter, adapters_for, http_client
from .upstream.base import StreamUpdate

if TYPE_CHECKING:
    from .catalog import ModelSpec

PROGRESS_EVENT_EVERY_S = 5.0
MAX_DOWNLOAD_ATTEMPTS = 5
# Tries of a transient download failure inside one invocation, before it is left to SQS redelivery.
TRANSIENT_DOWNLOAD_RETRIES = 2
# A refused submit moves to the next account only while this much time has passed since the first try: the api
# answers within 29 s and a submit lease lasts 60 s, so a try must not start when it could outrun either.
FAILOVER_BUDGET_S = 8.0


@dataclass(frozen=True)
class Timing:
    """Leases and grace periods. The local stack shortens them so crash tests converge in seconds."""

    submit_lease_s: float = 60.0
    # How long the poller leaves a new job to the api that created it before submitting it itself.
    submit_grace_s: float = 10.0
    download_lease_s: float = 960.0
    outbox_grace_s: float = 30.0
    max_job_age_s: float = 6 * 3600.0
    # A streaming job's worker renews this lease while it reads; a lease run out means the worker died.
    stream_lease_s: float = 120.0
    # Seed 003: Veo's /content "returns 400 occasionally right after status flips to completed; retry after 4 sec".
    content_retry_delay_s: float = 4.0

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
            stream_lease_s=get("STREAM_LEASE_S", cls.stream_lease_s),
            content_retry_delay_s=get("CONTENT_RETRY_DELAY_S", cls.content_retry_delay_s),
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
        adapters: Callable[[str], Sequence[Adapter]] = adapters_for,
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
            if record is not None:
                raise Conflict(
                    "The Idempotency-Key was already used with a different request body within 24 hours.",
                    param="Idempotency-Key",
                    code="idempotency_key_reused",
                )
        limits = self.store.tenant_limits(tenant)
        rate = limits.rate_per_minute or self.settings.rate_per_minute or None
        started = self.clock()
        if rate is not None and self.store.rate_used(tenant, rate_window(started)) >= rate:
            # Full already: refused before the image is fitted and stored. The transaction is what guarantees it.
            raise rate_limited(tenant, rate, started)
        video_id = ids.new_video_id()
        # Reference inputs are fetched, checked and prepared before anything is written: a bad file is a 400
        # that leaves no job and sends nothing upstream.
        prepared = self._prepare_references(tenant, video_id, request, spec)
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
            self._drop_references(references)
            return self.get(tenant, replay.video_id)
        except (Conflict, PaymentRequired, RateLimited):
            self._drop_references(references)
            raise
        job = self.publish_pending(job)
        if spec.streaming:
            # The stream lasts minutes: the streamer holds it, not this request.
            self._enqueue_stream(job)
            return job
        try:
            # The lease is written right before the request, so "leased but unanswered" means the upstream may
            # have the task; a poller that claimed the job first wins, and then this api does not submit.
            claimed = self.store.save(job, self._submit_lease(job, self.clock()))
        except StaleJob:
            return self.store.get_job(video_id) or job  # a poller took it (or it was deleted) meanwhile
        return self.submit(claimed, references=[(stored, data) for stored, data in prepared])

    def _prepare_references(
        self, tenant: str, video_id: str, request: CreateRequest, spec: ModelSpec
    ) -> list[tuple[StoredReference, bytes]]:
        """Each reference checked and prepared for the model, then kept under inputs/ where a later submit (the
        poller's retry, the streamer) can read it; the bucket's lifecycle removes it."""
        if not request.references:
            return []
        from .references import prepare_reference  # Pillow, loaded only when a reference comes

        prepared: list[tuple[StoredReference, bytes]] = []
        try:
            for number, given in enumerate(request.references, start=1):
                rule = spec.reference(given.field)
                assert rule is not None  # validated by parse_create
                reference = self._read_s3_reference(tenant, given, rule.max_bytes)
                ready = prepare_reference(
                    reference,
                    size=request.size,
                    allow_loopback=self.settings.allow_loopback_urls,
                    formats=rule.formats,
                    must_match_size=rule.must_match_size,
                    max_bytes=rule.max_bytes,
                )
                stored = StoredReference(
                    field=reference.field,
                    key=f"inputs/{tenant}/{video_id}/{number}-{reference.field}.{ready.extension}",
                    content_type=ready.content_type,
                    kind="video" if ready.content_type.startswith("video/") else "image",
                    bytes=len(ready.data),
                    width=ready.width,
                    height=ready.height,
                )
                self.s3.put_object(
                    Bucket=self.settings.results_bucket,
                    Key=stored.key,
                    Body=ready.data,
                    ContentType=ready.content_type,
                    Metadata={"video-id": video_id, "tenant": tenant},
                )
                prepared.append((stored, ready.data))
                total = sum(len(data) for _, data in prepared)
                if total > MAX_REFERENCE_BYTES_PER_JOB:
                    raise InvalidRequest(
                        given.field,
                        f"{total} bytes",
                        message=f"Invalid value for '{given.field}': the references of one video add up to {total} "
                        f"bytes; at most {MAX_REFERENCE_BYTES_PER_JOB} are accepted.",
                        code="file_too_large",
                    )
        except BaseException:
            self._drop_references(tuple(stored for stored, _ in prepared))
            raise
        return prepared

    def _read_s3_reference(self, tenant: str, reference: ReferenceInput, max_bytes: int) -> ReferenceInput:
        """An `s3://` reference becomes the object's bytes, if the object is the tenant's own: an upload made with
        POST /v1/uploads, or a file under its inbox/ in the intake bucket. Anything else is a 400, whether it
        exists or not (another tenant's object must not be probed)."""
        url = reference.url
        if url is None or not url.startswith("s3://"):
            return reference
        param = f"{reference.field}.{'video_url' if reference.video_url else 'image_url'}"
        bucket, _, key = url[5:].partition("/")
        own = (bucket == self.settings.results_bucket and key.startswith(f"uploads/{tenant}/")) or (
            bool(self.settings.intake_bucket)
            and bucket == self.settings.intake_bucket
            and key.startswith(f"inbox/{tenant}/")
        )
        allowed = f"an upload from POST /v1/uploads (s3://{self.settings.results_bucket}/uploads/{tenant}/...)"
        if self.settings.intake_bucket:
            allowed += f" or s3://{self.settings.intake_bucket}/inbox/{tenant}/..."
        if not own:
            raise InvalidRequest(param, url, allowed, code="invalid_s3_uri")
        from botocore.exceptions import ClientError

        try:
            head = self.s3.head_object(Bucket=bucket, Key=key)
            if int(head["ContentLength"]) > max_bytes:
                raise InvalidRequest(
                    param,
                    url,
                    message=f"The object {url} is {head['ContentLength']} bytes; at most {max_bytes} are accepted.",
                    code="file_too_large",
                )
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            # Without s3:ListBucket S3 answers a missing key 403; either way it is nothing this tenant can use.
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound", "403", "AccessDenied"):
                raise InvalidRequest(
                    param, url, message=f"No object at {url}: upload it first.", code="object_not_found"
                ) from None
            raise
        content_type = head.get("ContentType")
        return ReferenceInput(fit=reference.fit, data=bytes(body), content_type=content_type, field=reference.field)

    def create_upload(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        """A presigned PUT for a reference file too big for API Gateway's inline body (about 6 MB). The URL is
        signed for exactly the declared size and type, so S3 itself refuses anything else."""
        filename = body.get("filename")
        if not isinstance(filename, str) or not 1 <= len(filename) <= 200:
            raise InvalidRequest("filename", filename, "the file's name, 1 to 200 characters")
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename).lstrip(".") or "file"
        content_type = body.get("content_type")
        allowed_types = ("image/jpeg", "image/png", "image/webp", "video/mp4")
        if content_type not in allowed_types:
            raise InvalidRequest("content_type", content_type, ", ".join(allowed_types))
        size = body.get("bytes")
        limit = self.settings.max_upload_bytes
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= limit:
            raise InvalidRequest("bytes", size, f"the file's size in bytes, an integer from 1 to {limit}")
        unknown = sorted(set(body) - {"filename", "content_type", "bytes"})
        if unknown:
            raise InvalidRequest(
                unknown[0], body[unknown[0]], "only filename, content_type and bytes", code="unknown_parameter"
            )
        upload_id = ids.new_upload_id()
        key = f"uploads/{tenant}/{upload_id}/{safe}"
        ttl = self.settings.upload_url_ttl_s
        url = self.s3.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.settings.results_bucket,
                "Key": key,
                "ContentType": content_type,
                "ContentLength": size,
            },
            ExpiresIn=ttl,
        )
        return {
            "id": upload_id,
            "object": "upload",
            "filename": filename,
            "content_type": content_type,
            "bytes": size,
            "method": "PUT",
            "upload_url": str(url),
            # A presigned PUT is valid only with exactly the headers it was signed with.
            "headers": {"Content-Type": content_type},
            "s3_uri": f"s3://{self.settings.results_bucket}/{key}",
            "expires_at": int(self.clock() + ttl),
        }

    def _submit_lease(self, job: Job, now: float) -> Job:
        return job.with_changes(
            submit_started_at=now,
            submit_attempts=job.submit_attempts + 1,
            next_check_at=now + self.timing.submit_lease_s,
        )

    def _drop_references(self, references: Sequence[StoredReference]) -> None:
        """Removes reference inputs no job will use (best effort: the lifecycle rule catches what is left)."""
        for stored in references:
            try:
                self.s3.delete_object(Bucket=self.settings.results_bucket, Key=stored.key)
            except Exception:
                from .obs import logger

                logger.warning("could not delete an unused reference input", extra={"key": stored.key})

    def _load_references(self, job: Job) -> list[tuple[StoredReference, bytes]] | None:
        """The job's prepared references from S3. None when one is gone for good (NoSuchKey); a transient S3
        error propagates."""
        from botocore.exceptions import ClientError

        loaded: list[tuple[StoredReference, bytes]] = []
        for stored in job.references:
            try:
                response = self.s3.get_object(Bucket=self.settings.results_bucket, Key=stored.key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                    return None
                raise
            loaded.append((stored, bytes(response["Body"].read())))
        return loaded

    def _references_for(
        self, job: Job, given: Sequence[tuple[StoredReference, bytes]] | None
    ) -> tuple[list[tuple[StoredReference, bytes]] | None, Job | None]:
        """The references to send (from the caller or S3), or the job as it ends when they cannot be had:
        rescheduled after a storage hiccup (nothing went upstream), failed when they are gone for good."""
        if given is not None or not job.references:
            return list(given or ()), None
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            loaded = self._load_references(job)
        except (BotoCoreError, ClientError):
            return None, self.store.save(
                job, job.with_changes(submit_started_at=None, next_check_at=self.clock() + self._poll_interval(job))
            )
        if loaded is None:
            return None, self.transition(
                job,
                "failed",
                error_code="reference_missing",
                error_message="A reference input of this job is no longer stored, so it was never sent "
                "upstream. Create the video again.",
            )
        return loaded, None

    def _adapter(self, job: Job) -> Adapter:
        """The adapter of the account that took the job: polls and downloads go where the task is."""
        adapters = self.adapters(job.family)
        if job.upstream_account is None:
            return adapters[0]
        found = next((a for a in adapters if a.account.name == job.upstream_account), None)
        if found is None:
            # Asking another account about this task would answer 404 and expire a video that exists: wait until
            # the account is configured again (the job ends at its maximum age otherwise).
            raise UpstreamUnavailable(
                f"the upstream account {job.upstream_account!r} that has this task is not configured",
                code="upstream_account_missing",
            )
        return found

    def submit(self, job: Job, references: Sequence[tuple[StoredReference, bytes]] | None = None) -> Job:
        """Sends the job upstream, to each account in failover order while the refusals are ones that cannot
        have been billed. Only such a refusal from every account leaves the job for another try."""
        loaded, ended = self._references_for(job, references)
        if ended is not None or loaded is None:
            return ended or job
        unavailable: UpstreamUnavailable | None = None
        started = self.clock()
        for adapter in self.adapters(job.family):
            if unavailable is not None and self.clock() - started > FAILOVER_BUDGET_S:
                # A slow refusal used up the time a caller (api: 29 s, poller sweep) can give another try; the
                # job stays accepted and the next check starts again, rather than be cut off mid-request.
                break
            try:
                result = adapter.submit(job, loaded)
            except UpstreamUnavailable as exc:
                unavailable = exc
                continue
            except UpstreamAmbiguous as exc:
                return self.transition(
                    job,
                    "failed",
                    upstream_account=adapter.account.name,
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
                upstream_account=adapter.account.name,
                submit_started_at=None,
                progress=result.progress,
                next_check_at=self.clock() + self._poll_interval(job),
            )
        delay = max(self._poll_interval(job), (unavailable.retry_after_s if unavailable else None) or 0.0)
        return self.store.save(job, job.with_changes(submit_started_at=None, next_check_at=self.clock() + delay))

    # -- streamer -------------------------------------------------------------------------------------------

    def _enqueue_stream(self, job: Job) -> None:
        self.sqs.send_message(QueueUrl=self.settings.stream_queue_url, MessageBody=json.dumps({"video_id": job.id}))

    def stream(self, video_id: str) -> str:
        """Drives a streaming job (seed 000) from its one request to the download: holds the stream, writes
        progress (the event throttle applies) and renews its lease as it reads, and hands the link to the
        downloader. Safe to run twice: only the worker whose conditional write takes the lease streams."""
        job = self.store.get_job(video_id)
        if job is None or job.state != "accepted" or job.submit_started_at is not None or job.deleted_at:
            return "skipped"
        now = self.clock()
        try:
            job = self.store.save(
                job,
                job.with_changes(
                    submit_started_at=now,
                    submit_attempts=job.submit_attempts + 1,
                    next_check_at=now + self.timing.stream_lease_s,
                ),
            )
        except StaleJob:
            return "skipped"
        loaded, ended = self._references_for(job, None)
        if ended is not None or loaded is None:
            return ended.state if ended else "skipped"
        unavailable: UpstreamUnavailable | None = None
        for adapter in self.adapters(job.family):
            if unavailable is not None and self.clock() - now > FAILOVER_BUDGET_S:
                break  # the lease taken above must outlast every try made under it
            try:
                return self._follow(job, cast(StreamingAdapter, adapter), loaded)
            except UpstreamUnavailable as exc:
                unavailable = exc  # refused before anything started: the next account may take it
            except StaleJob:
                return "stale"  # deleted, or declared lost by the poller, while streaming: stop reading
        delay = max(self._poll_interval(job), (unavailable.retry_after_s if unavailable else None) or 0.0)
        self.store.save(job, job.with_changes(submit_started_at=None, next_check_at=self.clock() + delay))
        return "retry"

    def _follow(self, job: Job, adapter: StreamingAdapter, references: list[tuple[StoredReference, bytes]]) -> str:
        """Reads one stream to its end. Raises UpstreamUnavailable only before the upstream accepted anything."""
        lease_s = self.timing.stream_lease_s
        last_write = self.clock()
        started = False
        try:
            for update in adapter.stream(job, references):
                now = self.clock()
                if not started:
                    started = True
                    job = self.transition(
                        job,
                        "running",
                        upstream_task_id=update.task_id or f"stream-{job.id}",
                        upstream_account=adapter.account.name,
                        submit_started_at=None,
                        progress=0,
                        next_check_at=now + lease_s,
                    )
                    last_write = now
                if update.content_url is not None or update.failed is not None:
                    return self._finish_stream(job, update)
                progress = update.progress if update.progress is not None else job.progress
                moved = progress > job.progress and now - last_write >= PROGRESS_EVENT_EVERY_S
                if moved or now - last_write >= lease_s / 3:
                    job, last_write = self._renew_stream(job, progress, now), now
        except UpstreamAmbiguous as exc:
            self.transition(
                job,
                "failed",
                upstream_account=adapter.account.name,
                error_code="upstream_stream_interrupted",
                error_message=f"{exc.message}; not resubmitted, since the upstream may already have billed it. "
                "Create the video again for a new try.",
            )
            return "interrupted"
        except UpstreamRejected as exc:
            self.transition(job, "failed", error_code=exc.code, error_message=exc.message)
            return "failed"
        self.transition(
            job,
            "failed",
            error_code="upstream_stream_interrupted",
            error_message="The stream ended without a video link; not resubmitted, since the upstream may "
            "already have billed it.",
        )
        return "interrupted"

    def _renew_stream(self, job: Job, progress: int, now: float) -> Job:
        """Writes progress and renews the stream's lease. A storage hiccup must not end a stream the upstream
        is billing: it is logged and the next chunk tries again (the lease has room for several)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.transition(
                job, "running", progress=max(progress, job.progress), next_check_at=now + self.timing.stream_lease_s
            )
        except (BotoCoreError, ClientError):
            from .obs import logger

            logger.warning("could not renew the stream lease; still reading", extra={"video_id": job.id})
            return job

    def _finish_stream(self, job: Job, update: StreamUpdate) -> str:
        usage = dict(update.usage or {})
        if update.failed is not None:
            self.transition(
                job,
                "failed",
                usage=usage,
                error_code="upstream_failed",
                error_message=f"The upstream failed to generate the video: {update.failed}",
            )
            return "failed"
        job = self.transition(
            job,
            "downloading",
            result_url=update.content_url,
            usage=usage,
            progress=max(job.progress, 99),
            download_attempts=1,
            next_check_at=self.clock() + self.timing.download_lease_s,
        )
        self._enqueue_download(job)
        return "downloading"

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
        for stored in job.references:
            self.s3.delete_object(Bucket=self.settings.results_bucket, Key=stored.key)
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
        spec = get_model(job.model)
        streaming = spec is not None and spec.streaming
        if job.submit_started_at is not None:
            # A streamer may wait for the first chunk as long as its read timeout; its lease covers that.
            lease_s = self.timing.stream_lease_s if streaming else self.timing.submit_lease_s
            if now - job.submit_started_at < lease_s:
                self.store.reschedule(job, job.submit_started_at + lease_s)
                return "submit_in_progress"
            # The submitter died mid-request: the upstream may have the task. Never submit twice.
            self.transition(
                job,
                "failed",
                error_code="upstream_stream_interrupted" if streaming else "upstream_submit_unknown",
                error_message=f"The {'stream' if streaming else 'submit'} was interrupted; not resubmitted, since "
                "the upstream may have accepted (and billed) it. Create the video again for a new try.",
            )
            return "submit_unknown"
        if job.submit_attempts == 0 and now - job.created_at < self.timing.submit_grace_s:
            # The api that created it is normally submitting right now.
            self.store.reschedule(job, job.created_at + self.timing.submit_grace_s)
            return "submit_pending"
        if now - job.created_at > self.timing.max_job_age_s:
            self.transition(
                job,
                "failed",
                error_code="upstream_unavailable",
                error_message="No upstream account took the video in time; it was never sent.",
            )
            return "timeout"
        if streaming:
            # Its stream message was lost, or the last try was refused: hand it to the streamer again (only the
            # streamer that takes the lease reads, so a duplicate message is harmless).
            self.store.reschedule(job, now + max(self.timing.stream_lease_s, self._poll_interval(job)))
            self._enqueue_stream(job)
            return "stream_resent"
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
        spec = get_model(job.model)
        if spec is not None and spec.streaming:
            # Nothing to poll: the streamer renews the lease while it reads, so a due job lost its worker.
            self.transition(
                job,
                "failed",
                error_code="upstream_stream_interrupted",
                error_message="The stream stopped before the video link arrived (its worker ended); not "
                "resubmitted, since the upstream may already have billed it.",
            )
            return "stream_lost"
        try:
            result = self._adapter(job).poll(job)
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
            result_url=result.content_url,
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
        request = self._adapter(job).content_request(job)
        key = f"videos/{job.tenant}/{job.id}.mp4"
        spec = get_model(job.model)
        not_ready_retries = spec.content_not_ready_retries if spec else 0
        not_ready_left = not_ready_retries
        transient_left = TRANSIENT_DOWNLOAD_RETRIES
        try:
            while True:
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
                    break
                except TransferError as exc:
                    # Seed 003: Veo's /content answers 400 for a few seconds after `completed`; that is a wait,
                    # not a failure. A transient error (5xx, reset, cut body) is tried again here too, rather
                    # than after the queue's 16-minute visibility timeout; past that the message comes back.
                    if getattr(exc, "status", None) == 400 and not_ready_retries:
                        if not_ready_left == 0:
                            # Still not ready: try again later (SQS, then the poller), as for any transient error.
                            raise TransferError(
                                f"the content still answers 400 after {not_ready_retries} tries"
                            ) from exc
                        not_ready_left -= 1
                    elif exc.retryable and transient_left > 0:
                        transient_left -= 1
                    else:
                        raise
                    time.sleep(self.timing.content_retry_delay_s)
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
