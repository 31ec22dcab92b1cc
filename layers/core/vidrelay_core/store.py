"""The job store: the only code that touches DynamoDB.

One table (see template.yaml, JobsTable) holds several kinds of item, told apart by the `pk` prefix:
  JOB#<video id> / JOB               a job; carries the sparse `inflight` index keys while in flight
  IDEM#<tenant>#<key> / IDEM         an Idempotency-Key record (24 h)
  KEY#<sha256 of api key> / KEY      an API key's hash and its tenant
  TENANT#<tenant> / PROFILE          a tenant's profile (webhook signing secret, budget, rate limit)
  TENANT#<tenant> / RATE#<minute>    job creations in one minute, for the rate limit (TTL)
  INTAKE#<bucket>/<key>#<etag> / SIDECAR  how one version of an intake sidecar was used (TTL)
  DELIVERY#<event id> / <target id>  the webhook delivery ledger
(endpoints and per-video deliveries: see webhook_store.py)
Every job write is conditional on the version read, so a stale writer loses instead of moving a job backwards.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from .errors import Conflict, PaymentRequired, RateLimited, StaleJob
from .jobs import TERMINAL, IntakeOrigin, Job, Output, StoredReference

IDEMPOTENCY_TTL_S = 24 * 3600
RATE_WINDOW_S = 60
# A sidecar's use is remembered well past any redelivery of its S3 event (SQS keeps a message 14 days at most).
SIDECAR_CLAIM_TTL_S = 30 * 86_400


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def _legacy_reference(data: dict[str, Any]) -> tuple[StoredReference, ...]:
    """A job written before references became a list kept its one image as `reference_key`: read it as such, so
    an in-flight image-to-video job is never resubmitted without its image after an upgrade."""
    key = data.get("reference_key")
    if not key:
        return ()
    content_type = str(data.get("reference_content_type") or "image/png")
    return (StoredReference("input_reference", str(key), content_type, "image", 0),)


def _job_key(job_id: str) -> dict[str, str]:
    return {"pk": f"JOB#{job_id}", "sk": "JOB"}


def _created_key(job: Job) -> str:
    return f"{int(job.created_at * 1000):013d}#{job.id}"


def rate_window(at: float) -> int:
    """The start of the fixed one-minute window `at` falls in."""
    return int(at // RATE_WINDOW_S) * RATE_WINDOW_S


def rate_limited(tenant: str, limit: int, at: float) -> RateLimited:
    retry_after = max(1, math.ceil(rate_window(at) + RATE_WINDOW_S - at))
    return RateLimited(
        f"Rate limit reached: tenant '{tenant}' may create at most {limit} videos per minute. Try again in "
        f"{retry_after} s. Nothing was stored or sent upstream.",
        retry_after_s=retry_after,
    )


@dataclass(frozen=True)
class TenantLimits:
    budget_usd: float | None = None
    rate_per_minute: int | None = None


@dataclass(frozen=True)
class IdempotencyRecord:
    video_id: str
    request_hash: str


class IdempotentReplay(Exception):
    def __init__(self, video_id: str) -> None:
        super().__init__(video_id)
        self.video_id = video_id


class JobStore:
    def __init__(self, table_name: str, *, client: Any = None, retention_days: int = 30) -> None:
        if client is None:
            import boto3

            client = boto3.client("dynamodb")
        # The low-level client, not a boto3 resource: clients are thread-safe and the poller checks jobs from
        # a thread pool.
        self._client = client
        self._table = _Table(client, table_name)
        self._retention_s = retention_days * 86_400

    @property
    def client(self) -> Any:
        """The DynamoDB client, for the other store of the same table (webhook_store) to share."""
        return self._client

    # -- jobs -----------------------------------------------------------------------------------------------

    def job_item(self, job: Job) -> dict[str, Any]:
        fields = asdict(job)
        fields["webhook_events"] = list(job.webhook_events)
        fields["references"] = [asdict(r) for r in job.references]
        item: dict[str, Any] = {**_job_key(job.id), **{k: v for k, v in fields.items() if v is not None}}
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
        return _to_dynamo(item)

    @staticmethod
    def job_from_item(item: dict[str, Any]) -> Job:
        data = _from_dynamo(item)
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
        )

    def create_job(
        self,
        job: Job,
        *,
        idempotency_key: str | None = None,
        request_hash: str = "",
        budget_usd: float | None = None,
        rate_per_minute: int | None = None,
    ) -> Job:
        """Writes a new job in one transaction with its Idempotency-Key record (when a key is given) and its
        usage: the tenant's per-day-and-model counter and month spend. With a monthly budget the spend write is
        conditional, so concurrent creates cannot overshoot it: the whole transaction fails instead. A rate
        limit works the same way, on a counter of the tenant's creations in the job's minute."""
        now = time.time()
        cost = Decimal(repr(round(job.cost_usd or 0.0, 6)))
        day = datetime.fromtimestamp(job.created_at, tz=UTC).strftime("%Y-%m-%d")
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table.name,
                    "Item": self._serialize(self.job_item(job)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self._table.name,
                    "Key": self._serialize({"pk": f"TENANT#{job.tenant}", "sk": f"USAGE#{day}#{job.model}"}),
                    "UpdateExpression": "ADD usd :cost, jobs :one SET model = :model, day_utc = :day",
                    "ExpressionAttributeValues": self._serialize(
                        {":cost": cost, ":one": 1, ":model": job.model, ":day": day}
                    ),
                }
            },
        ]
        spend_values: dict[str, Any] = {":cost": cost}
        spend: dict[str, Any] = {
            "TableName": self._table.name,
            "Key": self._serialize({"pk": f"TENANT#{job.tenant}", "sk": f"SPEND#{day[:7]}"}),
            "UpdateExpression": "ADD usd :cost",
        }
        if budget_usd is not None:
            spend["ConditionExpression"] = "attribute_not_exists(usd) OR usd <= :room"
            spend_values[":room"] = Decimal(repr(round(budget_usd, 6))) - cost
        spend["ExpressionAttributeValues"] = self._serialize(spend_values)
        items.append({"Update": spend})
        window = rate_window(job.created_at)
        if rate_per_minute is not None:
            items.append(
                {
                    "Update": {
                        "TableName": self._table.name,
                        "Key": self._serialize({"pk": f"TENANT#{job.tenant}", "sk": f"RATE#{window}"}),
                        "UpdateExpression": "ADD created :one SET expires_at_ttl = :ttl",
                        "ConditionExpression": "attribute_not_exists(created) OR created < :limit",
                        "ExpressionAttributeValues": self._serialize(
                            {":one": 1, ":limit": rate_per_minute, ":ttl": window + 2 * RATE_WINDOW_S}
                        ),
                    }
                }
            )
        if idempotency_key is not None:
            idem_item = {
                "pk": f"IDEM#{job.tenant}#{idempotency_key}",
                "sk": "IDEM",
                "video_id": job.id,
                "request_hash": request_hash,
                "created_at": Decimal(repr(now)),
                "expires_at_ttl": int(now + IDEMPOTENCY_TTL_S),
            }
            items.append(
                {
                    "Put": {
                        "TableName": self._table.name,
                        "Item": self._serialize(idem_item),
                        # An expired record (TTL deletes lazily) may be overwritten.
                        "ConditionExpression": "attribute_not_exists(pk) OR expires_at_ttl < :now",
                        "ExpressionAttributeValues": self._serialize({":now": int(now)}),
                    }
                }
            )
        try:
            self._client.transact_write_items(TransactItems=items)
        except self._client.exceptions.TransactionCanceledException as exc:
            if idempotency_key is not None:
                record = self.get_idempotency(job.tenant, idempotency_key)
                if record is not None and record.request_hash != request_hash:
                    raise Conflict(
                        "The Idempotency-Key was already used with a different request body within 24 hours.",
                        param="Idempotency-Key",
                        code="idempotency_key_reused",
                    ) from exc
                if record is not None:
                    raise IdempotentReplay(record.video_id) from exc
            if budget_usd is not None:
                spent = self.month_spend(job.tenant, day[:7])
                if spent + float(cost) > budget_usd:
                    raise PaymentRequired(
                        f"The monthly budget of ${budget_usd:.2f} is reached: ${spent:.2f} is spent in {day[:7]} "
                        f"and this video would add ${float(cost):.2f}. Nothing was sent upstream.",
                        param=None,
                    ) from exc
            if rate_per_minute is not None and self.rate_used(job.tenant, window) >= rate_per_minute:
                raise rate_limited(job.tenant, rate_per_minute, job.created_at) from exc
            raise
        return job

    def rate_used(self, tenant: str, window: int) -> int:
        """How many jobs the tenant created in the minute starting at `window`."""
        key = {"pk": f"TENANT#{tenant}", "sk": f"RATE#{window}"}
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
        return int(item["created"]) if item and "created" in item else 0

    def month_spend(self, tenant: str, month: str) -> float:
        key = {"pk": f"TENANT#{tenant}", "sk": f"SPEND#{month}"}
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
        return float(item["usd"]) if item and "usd" in item else 0.0

    def usage(self, tenant: str, first_day: str, last_day: str) -> list[dict[str, Any]]:
        """Per day and model: estimated USD and job count, for the days in [first_day, last_day] (YYYY-MM-DD)."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":pk": f"TENANT#{tenant}",
                ":lo": f"USAGE#{first_day}#",
                ":hi": f"USAGE#{last_day}#\uffff",
            },
        }
        while True:
            page = self._table.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [
            {
                "day": str(i["day_utc"]),
                "model": str(i["model"]),
                "estimated_usd": float(i["usd"]),
                "jobs": int(i["jobs"]),
            }
            for i in items
        ]

    def set_budget(self, tenant: str, budget_usd: float | None) -> None:
        key = {"pk": f"TENANT#{tenant}", "sk": "PROFILE"}
        if budget_usd is None:
            self._table.update_item(Key=key, UpdateExpression="REMOVE budget_usd_month")
        else:
            self._table.update_item(
                Key=key,
                UpdateExpression="SET budget_usd_month = :b",
                ExpressionAttributeValues={":b": Decimal(repr(budget_usd))},
            )

    def set_rate_limit(self, tenant: str, per_minute: int | None) -> None:
        key = {"pk": f"TENANT#{tenant}", "sk": "PROFILE"}
        if per_minute is None:
            self._table.update_item(Key=key, UpdateExpression="REMOVE rate_per_minute")
        else:
            self._table.update_item(
                Key=key, UpdateExpression="SET rate_per_minute = :r", ExpressionAttributeValues={":r": per_minute}
            )

    def tenant_limits(self, tenant: str) -> TenantLimits:
        """The tenant's monthly budget and own rate limit (None: not set), from one read of its profile."""
        item = self._table.get_item(Key={"pk": f"TENANT#{tenant}", "sk": "PROFILE"}).get("Item") or {}
        budget, rate = item.get("budget_usd_month"), item.get("rate_per_minute")
        return TenantLimits(
            budget_usd=float(budget) if budget is not None else None,
            rate_per_minute=int(rate) if rate is not None else None,
        )

    def tenant_exists(self, tenant: str) -> bool:
        item = self._table.get_item(
            Key={"pk": f"TENANT#{tenant}", "sk": "PROFILE"}, ProjectionExpression="pk", ConsistentRead=True
        ).get("Item")
        return item is not None

    def tenant_budget(self, tenant: str) -> float | None:
        item = self._table.get_item(Key={"pk": f"TENANT#{tenant}", "sk": "PROFILE"}).get("Item")
        return float(item["budget_usd_month"]) if item and item.get("budget_usd_month") is not None else None

    def get_idempotency(self, tenant: str, key: str) -> IdempotencyRecord | None:
        item = self._table.get_item(Key={"pk": f"IDEM#{tenant}#{key}", "sk": "IDEM"}, ConsistentRead=True).get("Item")
        if not item or int(item.get("expires_at_ttl", 0)) < time.time():
            return None
        return IdempotencyRecord(video_id=str(item["video_id"]), request_hash=str(item["request_hash"]))

    def get_job(self, job_id: str) -> Job | None:
        item = self._table.get_item(Key=_job_key(job_id), ConsistentRead=True).get("Item")
        return self.job_from_item(item) if item else None

    def save(self, before: Job, after: Job) -> Job:
        """Writes `after` if the stored job is still `before` (same version). Returns the stored job."""
        stored = replace(after, version=before.version + 1, updated_at=time.time())
        try:
            self._table.put_item(
                Item=self.job_item(stored),
                ConditionExpression="version = :v",
                ExpressionAttributeValues={":v": before.version},
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            raise StaleJob(f"{before.id} moved past version {before.version}") from exc
        return stored

    def mark_published(self, job: Job) -> Job:
        """Records that the job's last event reached SNS. A finished job then leaves the in-flight index.
        Not a new version: it changes nothing a client sees, and must not race the next transition."""
        update = "SET event_published = :t"
        if job.state in TERMINAL:
            update += " REMOVE inflight_shard, next_check_at"
        try:
            self._table.update_item(
                Key=_job_key(job.id),
                UpdateExpression=update,
                ConditionExpression="version = :v",
                ExpressionAttributeValues={":t": True, ":v": job.version},
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            raise StaleJob(job.id) from exc
        done = replace(job, event_published=True)
        return replace(done, next_check_at=None) if job.state in TERMINAL else done

    def reschedule(self, job: Job, next_check_at: float) -> Job:
        """Moves the job's next check without a new version (nothing a client sees changed)."""
        try:
            self._table.update_item(
                Key=_job_key(job.id),
                UpdateExpression="SET next_check_at = :n, inflight_shard = :s",
                ConditionExpression="version = :v",
                ExpressionAttributeValues={
                    ":n": Decimal(repr(next_check_at)),
                    ":s": f"S{job.inflight_shard}",
                    ":v": job.version,
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            raise StaleJob(job.id) from exc
        return replace(job, next_check_at=next_check_at)

    def due_jobs(self, shard: int, now: float, *, limit: int = 200) -> list[Job]:
        """In-flight jobs of one shard whose next check is due: a Query on the sparse index, never a scan."""
        jobs: list[Job] = []
        kwargs: dict[str, Any] = {
            "IndexName": "inflight",
            "KeyConditionExpression": "inflight_shard = :s AND next_check_at <= :now",
            "ExpressionAttributeValues": {":s": f"S{shard}", ":now": Decimal(repr(now))},
            "Limit": limit,
        }
        while len(jobs) < limit:
            page = self._table.query(**kwargs)
            jobs.extend(self.job_from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return jobs[:limit]

    def list_jobs(self, tenant: str, *, after: Job | None, limit: int, newest_first: bool) -> tuple[list[Job], bool]:
        kwargs: dict[str, Any] = {
            "IndexName": "by_tenant",
            "KeyConditionExpression": "tenant_pk = :t",
            "ExpressionAttributeValues": {":t": f"TENANT#{tenant}"},
            "ScanIndexForward": not newest_first,
            "Limit": limit + 1,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = {
                **_job_key(after.id),
                "tenant_pk": f"TENANT#{tenant}",
                "created_key": _created_key(after),
            }
        jobs: list[Job] = []
        while len(jobs) <= limit:
            page = self._table.query(**kwargs)
            jobs.extend(self.job_from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return jobs[:limit], len(jobs) > limit

    # -- tenants and keys -----------------------------------------------------------------------------------

    def put_api_key(self, key_hash: str, tenant: str) -> None:
        self._table.put_item(
            Item={"pk": f"KEY#{key_hash}", "sk": "KEY", "tenant": tenant, "created_at": int(time.time())}
        )

    def tenant_for_key(self, key_hash: str) -> str | None:
        item = self._table.get_item(Key={"pk": f"KEY#{key_hash}", "sk": "KEY"}).get("Item")
        if not item or item.get("revoked_at"):
            return None
        return str(item["tenant"])

    def put_tenant(self, tenant: str, *, webhook_secret: str) -> None:
        self._table.put_item(
            Item={
                "pk": f"TENANT#{tenant}",
                "sk": "PROFILE",
                "tenant": tenant,
                "webhook_secret": webhook_secret,
            }
        )

    def ensure_tenant(self, tenant: str, *, webhook_secret: str) -> bool:
        """Creates the tenant's profile unless it exists (its secret is never replaced). True when created."""
        try:
            self._table.put_item(
                Item={"pk": f"TENANT#{tenant}", "sk": "PROFILE", "tenant": tenant, "webhook_secret": webhook_secret},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def create_api_key(self, key_id: str, key_hash: str, tenant: str, *, now: float) -> None:
        """The key's lookup item (by hash, what the API reads) and its registry entry (by id, what `vidrelay
        keys` lists and revokes), written together."""
        lookup = {"pk": f"KEY#{key_hash}", "sk": "KEY", "tenant": tenant, "key_id": key_id, "created_at": int(now)}
        entry = {
            "pk": "KEYS",
            "sk": f"KEY#{key_id}",
            "key_id": key_id,
            "key_hash": key_hash,
            "tenant": tenant,
            "created_at": int(now),
        }
        self._client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": self._table.name, "Item": self._serialize(item), "ConditionExpression": cond}}
                for item, cond in ((lookup, "attribute_not_exists(pk)"), (entry, "attribute_not_exists(pk)"))
            ]
        )

    def list_api_keys(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": "KEYS"},
            "ConsistentRead": True,
        }
        while True:
            page = self._table.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(items, key=lambda i: (str(i["tenant"]), int(i["created_at"])))
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def revoke_api_key(self, key_id: str, *, now: float) -> dict[str, Any] | None:
        """Marks the key revoked in both items; the API refuses it from the next request on. None if unknown."""
        entry = self._table.get_item(Key={"pk": "KEYS", "sk": f"KEY#{key_id}"}, ConsistentRead=True).get("Item")
        if entry is None:
            return None
        values = self._serialize({":now": int(now)})
        self._client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": self._table.name,
                        "Key": self._serialize(key),
                        "UpdateExpression": "SET revoked_at = if_not_exists(revoked_at, :now)",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": values,
                    }
                }
                for key in ({"pk": f"KEY#{entry['key_hash']}", "sk": "KEY"}, {"pk": "KEYS", "sk": f"KEY#{key_id}"})
            ]
        )
        return {**entry, "revoked_at": int(now)}

    def tenant_webhook_secret(self, tenant: str) -> str | None:
        item = self._table.get_item(Key={"pk": f"TENANT#{tenant}", "sk": "PROFILE"}).get("Item")
        return str(item["webhook_secret"]) if item and item.get("webhook_secret") else None

    # -- webhook delivery ledger ----------------------------------------------------------------------------

    def delivery_succeeded(self, event_id: str, target_id: str) -> bool:
        item = self._table.get_item(Key={"pk": f"DELIVERY#{event_id}", "sk": target_id}, ConsistentRead=True).get(
            "Item"
        )
        return bool(item and item.get("status") == "succeeded")

    def claim_delivery(self, event_id: str, target_id: str, *, lease_s: float) -> bool:
        """Takes a short lease on one (event, target) delivery, so two copies of a message never POST at once.
        False when it already succeeded or another worker holds a live lease."""
        now = time.time()
        try:
            self._table.update_item(
                Key={"pk": f"DELIVERY#{event_id}", "sk": target_id},
                UpdateExpression="SET lease_until = :until, attempts = if_not_exists(attempts, :zero) + :one, "
                "expires_at_ttl = :ttl",
                ConditionExpression="(attribute_not_exists(#s) OR #s <> :ok) AND "
                "(attribute_not_exists(lease_until) OR lease_until < :now)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":until": Decimal(repr(now + lease_s)),
                    ":now": Decimal(repr(now)),
                    ":zero": 0,
                    ":one": 1,
                    ":ok": "succeeded",
                    ":ttl": int(now + 30 * 86_400),
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def finish_delivery(
        self, event_id: str, target_id: str, *, succeeded: bool, status: int | None, error: str | None
    ) -> None:
        self._table.update_item(
            Key={"pk": f"DELIVERY#{event_id}", "sk": target_id},
            UpdateExpression="SET #s = :s, last_status = :code, last_error = :err, lease_until = :zero",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":s": "succeeded" if succeeded else "retrying",
                ":code": status if status is not None else 0,
                ":err": error or "",
                ":zero": 0,
            },
        )

    # -- S3 intake ------------------------------------------------------------------------------------------

    def claim_sidecar(self, bucket: str, key: str, etag: str, use: str) -> str:
        """Records how one version of an intake sidecar is used: alone ("text") or with its image ("pair").
        The first claim wins and is never changed, so a sidecar that started a text-to-video job cannot also
        start one with an image that arrived late. Returns the use that holds: `use` itself when this claim won
        or repeated it, the other one when it lost."""
        now = time.time()
        answer = self._table.update_item(
            Key={"pk": f"INTAKE#{bucket}/{key}#{etag}", "sk": "SIDECAR"},
            UpdateExpression="SET #u = if_not_exists(#u, :u), expires_at_ttl = if_not_exists(expires_at_ttl, :ttl)",
            ExpressionAttributeNames={"#u": "use"},
            ExpressionAttributeValues={":u": use, ":ttl": int(now + SIDECAR_CLAIM_TTL_S)},
            ReturnValues="ALL_NEW",
        )
        return str(answer["Attributes"]["use"])

    def sidecar_use(self, bucket: str, key: str, etag: str) -> str | None:
        item = self._table.get_item(
            Key={"pk": f"INTAKE#{bucket}/{key}#{etag}", "sk": "SIDECAR"}, ConsistentRead=True
        ).get("Item")
        return str(item["use"]) if item else None

    # -- helpers --------------------------------------------------------------------------------------------

    @staticmethod
    def _serialize(item: dict[str, Any]) -> dict[str, Any]:
        return {k: _SERIALIZER.serialize(v) for k, v in item.items()}


_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


class _Table:
    """The few Table calls the store makes, over the thread-safe client, with Python values in and out."""

    def __init__(self, client: Any, name: str) -> None:
        self._client = client
        self.name = name

    @staticmethod
    def _ser(values: dict[str, Any]) -> dict[str, Any]:
        return {k: _SERIALIZER.serialize(v) for k, v in values.items()}

    @staticmethod
    def _de(item: dict[str, Any]) -> dict[str, Any]:
        return {k: _DESERIALIZER.deserialize(v) for k, v in item.items()}

    def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        for name in ("Key", "Item", "ExpressionAttributeValues", "ExclusiveStartKey"):
            if name in kwargs:
                kwargs[name] = self._ser(kwargs[name])
        response: dict[str, Any] = getattr(self._client, method)(TableName=self.name, **kwargs)
        if "Item" in response:
            response["Item"] = self._de(response["Item"])
        if "Attributes" in response:
            response["Attributes"] = self._de(response["Attributes"])
        if "Items" in response:
            response["Items"] = [self._de(i) for i in response["Items"]]
        if "LastEvaluatedKey" in response:
            response["LastEvaluatedKey"] = self._de(response["LastEvaluatedKey"])
        return response

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("get_item", **kwargs)

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("put_item", **kwargs)

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("update_item", **kwargs)

    def query(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("query", **kwargs)

    def delete_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("delete_item", **kwargs)
