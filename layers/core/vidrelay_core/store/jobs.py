"""Jobs and their Idempotency-Key records.

Every job write is conditional on the version read, so a stale writer loses (StaleJob) instead of moving a job
backwards. A new job is written in one transaction with its Idempotency-Key record and the counters that may
refuse it (counters.py), so a budget, a rate limit or a reused key can never leave half a job behind.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..errors import IdempotencyKeyReused, IdempotentReplay, LimitReached, StaleJob
from ..jobs import TERMINAL, IntakeOrigin, Job, Output, Preview, StoredReference
from .codec import Table, from_dynamo, number, to_dynamo

IDEMPOTENCY_TTL_S = 24 * 3600


@dataclass(frozen=True)
class IdempotencyRecord:
    video_id: str
    request_hash: str


@dataclass(frozen=True)
class DueKey:
    video_id: str
    next_check_at: float


@dataclass(frozen=True)
class CounterWrite:
    """One counter update that rides in a new job's transaction. `kind` names it when its condition refuses."""

    kind: str
    update: dict[str, Any]


def job_key(job_id: str) -> dict[str, str]:
    return {"pk": f"JOB#{job_id}", "sk": "JOB"}


def _created_key(job: Job) -> str:
    return f"{int(job.created_at * 1000):013d}#{job.id}"


def _legacy_reference(data: dict[str, Any]) -> tuple[StoredReference, ...]:
    """A job written before references became a list kept its one image as `reference_key`: read it as such, so
    an in-flight image-to-video job is never resubmitted without its image after an upgrade."""
    key = data.get("reference_key")
    if not key:
        return ()
    content_type = str(data.get("reference_content_type") or "image/png")
    return (StoredReference("input_reference", str(key), content_type, "image", 0),)


class JobStore:
    def __init__(self, table: Table, *, retention_days: int = 30) -> None:
        self._table = table
        self._retention_s = retention_days * 86_400

    # -- the codec of a job ---------------------------------------------------------------------------------

    def job_item(self, job: Job) -> dict[str, Any]:
        fields = asdict(job)
        fields["webhook_events"] = list(job.webhook_events)
        fields["references"] = [asdict(r) for r in job.references]
        fields["previews"] = [asdict(p) for p in job.previews]
        item: dict[str, Any] = {**job_key(job.id), **{k: v for k, v in fields.items() if v is not None}}
        item.pop("next_check_at", None)
        item.pop("inflight_shard", None)
        item["shard"] = job.inflight_shard
        if job.deleted_at is None:
            # The tenant listing index; a deleted job drops out of it at once.
            item["tenant_pk"] = f"TENANT#{job.tenant}"
            item["created_key"] = _created_key(job)
        if job.next_check_at is not None:
            item["inflight_shard"] = f"S{job.inflight_shard}"
            item["next_check_at"] = job.next_check_at
        if job.is_terminal:
            item["expires_at_ttl"] = int((job.completed_at or job.updated_at or time.time()) + self._retention_s)
        return dict(to_dynamo(item))

    @staticmethod
    def job_from_item(item: dict[str, Any]) -> Job:
        data = from_dynamo(item)
        output = data.get("output")
        return Job(
            id=data["id"],
            tenant=data["tenant"],
            model=data["model"],
            family=data["family"],
            provider=data["provider"],
            prompt=data["prompt"],
            seconds=data["seconds"],
            size=data["size"],
            created_at=float(data["created_at"]),
            state=data["state"],
            version=int(data["version"]),
            progress=int(data.get("progress", 0)),
            updated_at=float(data.get("updated_at", 0.0)),
            completed_at=data.get("completed_at"),
            upstream_task_id=data.get("upstream_task_id"),
            submit_started_at=data.get("submit_started_at"),
            submit_attempts=int(data.get("submit_attempts", 0)),
            download_attempts=int(data.get("download_attempts", 0)),
            error_code=data.get("error_code"),
            error_message=data.get("error_message"),
            metadata=dict(data.get("metadata", {})),
            webhook_url=data.get("webhook_url"),
            webhook_events=tuple(data.get("webhook_events", ())),
            output=Output(**output) if output else None,
            cost_usd=float(data.get("cost_usd", 0.0)),
            price_rule=dict(data.get("price_rule", {})),
            idempotency_key=data.get("idempotency_key"),
            options={str(k): str(v) for k, v in data.get("options", {}).items()},
            references=tuple(StoredReference(**r) for r in data.get("references", ())) or _legacy_reference(data),
            upstream_account=data.get("upstream_account"),
            result_url=data.get("result_url"),
            usage={str(k): int(v) for k, v in data.get("usage", {}).items()},
            last_event_id=data.get("last_event_id"),
            last_event_type=data.get("last_event_type"),
            event_published=bool(data.get("event_published", True)),
            last_progress_event_at=float(data.get("last_progress_event_at", 0.0)),
            inflight_shard=int(data.get("shard", 0)),
            next_check_at=data.get("next_check_at"),
            deleted_at=data.get("deleted_at"),
            intake=IntakeOrigin(**data["intake"]) if data.get("intake") else None,
            retry_stage=data.get("retry_stage"),
            retry_attempts=int(data.get("retry_attempts", 0)),
            retrying_since=data.get("retrying_since"),
            last_error_code=data.get("last_error_code"),
            last_error_message=data.get("last_error_message"),
            previews=tuple(Preview(**p) for p in data.get("previews", ())),
            preview_error_code=data.get("preview_error_code"),
            preview_error_message=data.get("preview_error_message"),
        )

    # -- writes -------------------------------------------------------------------------------------------------

    def create_job(
        self,
        job: Job,
        *,
        idempotency_key: str | None = None,
        request_hash: str = "",
        counters: Sequence[CounterWrite] = (),
    ) -> Job:
        """Writes a new job in one transaction with its Idempotency-Key record (when a key is given) and the
        counter updates given. Raises IdempotentReplay / IdempotencyKeyReused when the key is taken, and
        LimitReached(kind) when a counter's condition refused the job."""
        now = time.time()
        writes: list[tuple[str, dict[str, Any]]] = [
            ("job", {"Put": {"Item": self.job_item(job), "ConditionExpression": "attribute_not_exists(pk)"}}),
            *((counter.kind, {"Update": counter.update}) for counter in counters),
        ]
        if idempotency_key is not None:
            record = {
                "pk": f"IDEM#{job.tenant}#{idempotency_key}",
                "sk": "IDEM",
                "video_id": job.id,
                "request_hash": request_hash,
                "created_at": number(now),
                "expires_at_ttl": int(now + IDEMPOTENCY_TTL_S),
            }
            writes.append(
                (
                    "idempotency",
                    {
                        "Put": {
                            "Item": record,
                            # An expired record (TTL deletes lazily) may be overwritten.
                            "ConditionExpression": "attribute_not_exists(pk) OR expires_at_ttl < :now",
                            "ExpressionAttributeValues": {":now": int(now)},
                        }
                    },
                )
            )
        codes = self._table.transact([request for _, request in writes])
        refused = [kind for (kind, _), code in zip(writes, codes, strict=False) if code == "ConditionalCheckFailed"]
        if "idempotency" in refused and idempotency_key is not None:
            taken = self.get_idempotency(job.tenant, idempotency_key)
            if taken is not None and taken.request_hash != request_hash:
                raise IdempotencyKeyReused(idempotency_key)
            if taken is not None:
                raise IdempotentReplay(taken.video_id)
        for kind in refused:
            if kind not in ("job", "idempotency"):
                raise LimitReached(kind)
        if refused:
            # The job id or a key record expired between the read and the write: a race lost, safe to try again.
            raise StaleJob(f"{job.id} could not be created ({', '.join(refused)})")
        return job

    def save(self, before: Job, after: Job) -> Job:
        """Writes `after` if the stored job is still `before` (same version). Returns the stored job."""
        stored = replace(after, version=before.version + 1, updated_at=time.time())
        if not self._table.conditional(
            "put_item",
            Item=self.job_item(stored),
            ConditionExpression="version = :v",
            ExpressionAttributeValues={":v": before.version},
        ):
            raise StaleJob(f"{before.id} moved past version {before.version}")
        return stored

    def mark_published(self, job: Job) -> Job:
        """Records that the job's last event reached SNS. A finished job then leaves the in-flight index.
        Not a new version: it changes nothing a client sees, and must not race the next transition."""
        update = "SET event_published = :t"
        if job.state in TERMINAL:
            update += " REMOVE inflight_shard, next_check_at"
        if not self._table.conditional(
            "update_item",
            Key=job_key(job.id),
            UpdateExpression=update,
            ConditionExpression="version = :v",
            ExpressionAttributeValues={":t": True, ":v": job.version},
        ):
            raise StaleJob(job.id)
        done = replace(job, event_published=True)
        return replace(done, next_check_at=None) if job.state in TERMINAL else done

    def record_previews(
        self, job_id: str, previews: tuple[Preview, ...], *, error_code: str | None, error_message: str | None
    ) -> bool:
        """Records what was derived from a completed job's MP4 (or why nothing could be), once. Not a new
        version, as for mark_published: the job's state is untouched, and a version bump would make the
        downloader's closing mark_published lose its race and the poller republish video.completed. False when
        the job is no longer there to take them (deleted meanwhile) or already has them."""
        values: dict[str, Any] = {":completed": "completed", ":previews": [asdict(p) for p in previews]}
        update = "SET previews = :previews"
        if error_code is not None:
            update += ", preview_error_code = :code, preview_error_message = :message"
            values.update({":code": error_code, ":message": error_message or error_code})
        return self._table.conditional(
            "update_item",
            Key=job_key(job_id),
            UpdateExpression=update,
            ConditionExpression=(
                "#state = :completed AND attribute_not_exists(deleted_at) AND attribute_not_exists(preview_error_code)"
                " AND (attribute_not_exists(previews) OR size(previews) = :none)"
            ),
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=dict(to_dynamo({**values, ":none": 0})),
        )

    def reschedule(self, job: Job, next_check_at: float) -> Job:
        """Moves the job's next check without a new version (nothing a client sees changed)."""
        if not self._table.conditional(
            "update_item",
            Key=job_key(job.id),
            UpdateExpression="SET next_check_at = :n, inflight_shard = :s",
            ConditionExpression="version = :v",
            ExpressionAttributeValues={
                ":n": to_dynamo(next_check_at),
                ":s": f"S{job.inflight_shard}",
                ":v": job.version,
            },
        ):
            raise StaleJob(job.id)
        return replace(job, next_check_at=next_check_at)

    # -- reads --------------------------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> Job | None:
        item = self._table.get(job_key(job_id))
        return self.job_from_item(item) if item else None

    def get_idempotency(self, tenant: str, key: str) -> IdempotencyRecord | None:
        item = self._table.get({"pk": f"IDEM#{tenant}#{key}", "sk": "IDEM"})
        if not item or int(item.get("expires_at_ttl", 0)) < time.time():
            return None
        return IdempotencyRecord(video_id=str(item["video_id"]), request_hash=str(item["request_hash"]))

    def due_keys(self, shard: int, until: float, *, limit: int = 10_000) -> list[DueKey]:
        """In-flight jobs of one shard whose next check is at or before `until`: a Query on the sparse index, never
        a scan. The index holds keys only (KEYS_ONLY): rescheduling a job writes a few bytes to it, not the job."""
        items = self._table.query(
            IndexName="inflight",
            KeyConditionExpression="inflight_shard = :s AND next_check_at <= :until",
            ExpressionAttributeValues={":s": f"S{shard}", ":until": to_dynamo(until)},
            limit=limit,
        )
        return [DueKey(str(item["pk"]).removeprefix("JOB#"), float(item["next_check_at"])) for item in items]

    def get_jobs(self, job_ids: Sequence[str]) -> dict[str, Job]:
        """The jobs that exist among `job_ids`, by id (eventually consistent: a stale one only loses its next
        conditional write)."""
        items = self._table.batch_get([job_key(job_id) for job_id in dict.fromkeys(job_ids)])
        jobs = (self.job_from_item(item) for item in items)
        return {job.id: job for job in jobs}

    def due_jobs(self, shard: int, now: float, *, limit: int = 10_000) -> list[Job]:
        """In-flight jobs of one shard whose next check is due, soonest first."""
        keys = self.due_keys(shard, now, limit=limit)
        found = self.get_jobs([key.video_id for key in keys])
        return [found[key.video_id] for key in keys if key.video_id in found]

    def list_jobs(self, tenant: str, *, after: Job | None, limit: int, newest_first: bool) -> tuple[list[Job], bool]:
        """One page of the tenant's jobs, and whether more follow. The index holds keys only: the page is read
        from the table."""
        kwargs: dict[str, Any] = {
            "IndexName": "by_tenant",
            "KeyConditionExpression": "tenant_pk = :t",
            "ExpressionAttributeValues": {":t": f"TENANT#{tenant}"},
            "ScanIndexForward": not newest_first,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = {
                **job_key(after.id),
                "tenant_pk": f"TENANT#{tenant}",
                "created_key": _created_key(after),
            }
        ids = [str(item["pk"]).removeprefix("JOB#") for item in self._table.query(limit=limit + 1, **kwargs)]
        found = self.get_jobs(ids[:limit])
        # A job deleted between the two reads is left out of the page.
        page = [found[i] for i in ids[:limit] if i in found and found[i].deleted_at is None]
        return page, len(ids) > limit
