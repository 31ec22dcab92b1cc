"""Webhook endpoints and the per-(event, target) delivery ledger (records: ledger.py).

  TENANT#<tenant> / ENDPOINT#<we_id>                 a webhook endpoint (url, filter, signing secrets)
  JOB#<video id>  / DELIVERY#<event id>#<target id>  one delivery: state, schedule, every attempt

Deliveries sit in their video's partition, so `GET /v1/videos/{id}/deliveries` is one Query and they expire with
the job.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from typing import Any

from ..ledger import Claim, Delivery, DeliveryState, Endpoint
from .codec import Table, from_dynamo, number, to_dynamo

# Never before the whole schedule (about 3 days, up to 10 with long Retry-After answers) is over.
MIN_DELIVERY_RETENTION_S = 15 * 86_400


def _endpoint_key(tenant: str, endpoint_id: str) -> dict[str, str]:
    return {"pk": f"TENANT#{tenant}", "sk": f"ENDPOINT#{endpoint_id}"}


def _delivery_key(video_id: str, event_id: str, target_id: str) -> dict[str, str]:
    return {"pk": f"JOB#{video_id}", "sk": f"DELIVERY#{event_id}#{target_id}"}


def _from_delivery_key(item: dict[str, Any]) -> tuple[str, str, str]:
    """(video id, event id, target id) from the keys: neither id holds a '#' (ids.py, ledger.JOB_TARGET)."""
    _, event_id, target_id = str(item["sk"]).split("#", 2)
    return str(item["pk"]).removeprefix("JOB#"), event_id, target_id


# A delivery's record is written at least twice per event (created taken, then finished): kept under 1 KB it is
# one write unit each instead of two. The event body is most of it, so it is stored deflated (a completed event's
# 1 KB of JSON becomes about 550 bytes) and the ids the keys already hold are not stored again.
BODY_LEVEL = 6


def _packed_body(body: str) -> bytes:
    return zlib.compress(body.encode(), BODY_LEVEL)


def _unpacked_body(item: dict[str, Any]) -> str:
    packed = item.get("event_body_z")
    if packed is None:
        return str(item["event_body"])  # a record written before bodies were stored deflated
    return zlib.decompress(packed).decode()


class WebhookStore:
    def __init__(self, table: Table, *, retention_days: int = 30) -> None:
        self._table = table
        self._retention_s = retention_days * 86_400

    def _query_all(self, pk: str, prefix: str) -> list[dict[str, Any]]:
        """Every item of partition `pk` whose sort key starts with `prefix`, strongly consistent."""
        return list(
            self._table.query(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={":pk": pk, ":prefix": prefix},
                ConsistentRead=True,
            )
        )

    def _conditional(self, **kwargs: Any) -> bool:
        return self._table.conditional("update_item", **kwargs)

    # -- endpoints ------------------------------------------------------------------------------------------

    def put_endpoint(self, endpoint: Endpoint) -> None:
        item = {
            **_endpoint_key(endpoint.tenant, endpoint.id),
            "id": endpoint.id,
            "tenant": endpoint.tenant,
            "url": endpoint.url,
            "event_types": list(endpoint.event_types),
            "description": endpoint.description,
            "secret": endpoint.secret,
            "created_at": endpoint.created_at,
        }
        self._table.put(to_dynamo(item), ConditionExpression="attribute_not_exists(pk)")

    def get_endpoint(self, tenant: str, endpoint_id: str) -> Endpoint | None:
        item = self._table.get(_endpoint_key(tenant, endpoint_id))
        return _endpoint(item) if item else None

    def list_endpoints(self, tenant: str) -> list[Endpoint]:
        found = [_endpoint(item) for item in self._query_all(f"TENANT#{tenant}", "ENDPOINT#")]
        return sorted(found, key=lambda e: e.created_at)

    def endpoint_interests(self, tenant: str) -> list[tuple[str, ...]]:
        """The event types of each enabled endpoint (empty: every type), read without the endpoints' secrets or
        URLs: the functions that publish events may read these attributes only (template.yaml)."""
        items = self._table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": f"TENANT#{tenant}", ":prefix": "ENDPOINT#"},
            ProjectionExpression="pk, sk, event_types, disabled_at",
            ConsistentRead=True,
        )
        return [tuple(item.get("event_types") or ()) for item in items if item.get("disabled_at") is None]

    def delete_endpoint(self, tenant: str, endpoint_id: str) -> bool:
        return self._table.conditional(
            "delete_item", Key=_endpoint_key(tenant, endpoint_id), ConditionExpression="attribute_exists(pk)"
        )

    def rotate_secret(self, tenant: str, endpoint_id: str, *, old: str, new: str, grace_until: float) -> bool:
        """Conditional on the secret read, so two rotations at once cannot both keep 'their' previous secret."""
        return self._conditional(
            Key=_endpoint_key(tenant, endpoint_id),
            UpdateExpression="SET secret = :new, previous_secret = :old, previous_secret_until = :until",
            ConditionExpression="secret = :old",
            ExpressionAttributeValues={":new": new, ":old": old, ":until": number(grace_until)},
        )

    def disable_endpoint(self, tenant: str, endpoint_id: str, *, reason: str, now: float) -> bool:
        return self._conditional(
            Key=_endpoint_key(tenant, endpoint_id),
            UpdateExpression="SET disabled_at = :now, disabled_reason = :reason",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(disabled_at)",
            ExpressionAttributeValues={":now": number(now), ":reason": reason},
        )

    # -- deliveries -----------------------------------------------------------------------------------------

    def create_delivery(self, delivery: Delivery, *, lease_s: float | None = None) -> Claim | None:
        """Writes a new delivery, already taken for its first attempt when `lease_s` is given (one write instead of
        a create and a claim). None when it exists already (the same event fanned out twice)."""
        claim = Claim(replace(delivery, state="delivering") if lease_s is not None else delivery)
        item = {
            **_delivery_key(delivery.video_id, delivery.event_id, delivery.target_id),
            "tenant": delivery.tenant,
            "event_type": delivery.event_type,
            "event_body_z": _packed_body(delivery.event_body),
            "url": delivery.url,
            "state": delivery.state,
            "attempt_count": delivery.attempt_count,
            "next_attempt_at": delivery.next_attempt_at,
            "created_at": delivery.created_at,
            "attempts": [],
            "manual_attempts": 0,
            # Never before the whole schedule (about 3 days, up to 10 with long Retry-After answers) is over.
            "expires_at_ttl": int(delivery.created_at + max(self._retention_s, MIN_DELIVERY_RETENTION_S)),
        }
        if lease_s is not None:
            item.update(state="delivering", lease_until=number(delivery.created_at + lease_s), lease_token=claim.token)
        created = self._table.conditional(
            "put_item", Item=to_dynamo(item), ConditionExpression="attribute_not_exists(pk)"
        )
        return claim if created else None

    def get_delivery(self, video_id: str, event_id: str, target_id: str) -> Delivery | None:
        item = self._table.get(_delivery_key(video_id, event_id, target_id))
        return _delivery(item) if item else None

    def list_deliveries(self, video_id: str) -> list[Delivery]:
        found = [_delivery(item) for item in self._query_all(f"JOB#{video_id}", "DELIVERY#")]
        return sorted(found, key=lambda d: (d.created_at, d.event_id, d.target_id))

    def claim(self, delivery: Delivery, *, now: float, lease_s: float) -> Claim | None:
        """Takes the delivery for one attempt: it must be due, pending and still at the attempt count read (an
        attempt whose worker died is first recorded by `abandon`)."""
        claim = Claim(delivery)
        taken = self._conditional(
            Key=_delivery_key(delivery.video_id, delivery.event_id, delivery.target_id),
            UpdateExpression="SET #state = :delivering, lease_until = :until, lease_token = :token",
            ConditionExpression="attempt_count = :count AND #state = :pending AND next_attempt_at <= :now",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":delivering": "delivering",
                ":pending": "pending",
                ":until": number(now + lease_s),
                ":token": claim.token,
                ":count": delivery.attempt_count,
                ":now": number(now),
            },
        )
        return claim if taken else None

    def finish(
        self,
        claim: Claim,
        *,
        state: DeliveryState,
        attempt: dict[str, Any],
        next_attempt_at: float | None = None,
        manual: bool = False,
        dead_lettered: bool = False,
    ) -> bool:
        """Records the attempt and the delivery's new state, only if this worker's lease is still the one held."""
        return self._record_attempt(
            claim.delivery,
            condition="lease_token = :token",
            token=claim.token,
            state=state,
            attempt=attempt,
            next_attempt_at=next_attempt_at or 0.0,
            manual=manual,
            dead_lettered=dead_lettered,
        )

    def abandon(
        self,
        delivery: Delivery,
        *,
        attempt: dict[str, Any],
        state: DeliveryState,
        next_attempt_at: float,
        dead_lettered: bool = False,
    ) -> bool:
        """Records an attempt whose worker died (its lease ran out) and schedules the next, once: conditional on
        the lease that ran out, so two workers finding it cannot both count it."""
        return self._record_attempt(
            delivery,
            condition="#state = :delivering AND lease_token = :token AND attempt_count = :count",
            token=delivery.lease_token or "",
            state=state,
            attempt=attempt,
            next_attempt_at=next_attempt_at,
            manual=delivery.manual_attempts > 0,
            dead_lettered=dead_lettered,
            extra_values={":delivering": "delivering", ":count": delivery.attempt_count},
        )

    def _record_attempt(
        self,
        delivery: Delivery,
        *,
        condition: str,
        token: str,
        state: DeliveryState,
        attempt: dict[str, Any],
        next_attempt_at: float,
        manual: bool,
        dead_lettered: bool,
        extra_values: dict[str, Any] | None = None,
    ) -> bool:
        """One attempt appended, the count and state moved on and the lease released, in one conditional write."""
        update = (
            "SET #state = :state, attempt_count = attempt_count + :one, attempts = list_append(attempts, :attempt), "
            "next_attempt_at = :next, dead_lettered = :dead REMOVE lease_until, lease_token"
        )
        if manual:
            update = update.replace("SET ", "SET manual_attempts = manual_attempts - :one, ", 1)
        return self._conditional(
            Key=_delivery_key(delivery.video_id, delivery.event_id, delivery.target_id),
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":state": state,
                ":one": 1,
                ":attempt": [to_dynamo(attempt)],
                ":next": number(next_attempt_at),
                ":dead": dead_lettered,
                ":token": token,
                **(extra_values or {}),
            },
        )

    def mark_dead_letter_sent(self, delivery: Delivery) -> None:
        self._table.update(
            _delivery_key(delivery.video_id, delivery.event_id, delivery.target_id),
            UpdateExpression="SET dead_letter_sent = :yes",
            ExpressionAttributeValues={":yes": True},
        )

    def request_redelivery(self, delivery: Delivery, *, now: float) -> bool:
        """Makes a finished delivery due once more (one attempt, outside the schedule)."""
        return self._conditional(
            Key=_delivery_key(delivery.video_id, delivery.event_id, delivery.target_id),
            UpdateExpression="SET #state = :pending, next_attempt_at = :now, manual_attempts = manual_attempts + :one",
            ConditionExpression="#state IN (:succeeded, :failed) AND attempt_count = :count",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":pending": "pending",
                ":now": number(now),
                ":one": 1,
                ":succeeded": "succeeded",
                ":failed": "failed",
                ":count": delivery.attempt_count,
            },
        )


def _endpoint(item: dict[str, Any]) -> Endpoint:
    def number(name: str) -> float | None:
        return float(item[name]) if item.get(name) is not None else None

    return Endpoint(
        id=str(item["id"]),
        tenant=str(item["tenant"]),
        url=str(item["url"]),
        event_types=tuple(item.get("event_types") or ()),
        description=str(item.get("description") or ""),
        secret=str(item["secret"]),
        created_at=float(item["created_at"]),
        previous_secret=item.get("previous_secret"),
        previous_secret_until=number("previous_secret_until"),
        disabled_at=number("disabled_at"),
        disabled_reason=item.get("disabled_reason"),
    )


def _delivery(item: dict[str, Any]) -> Delivery:
    video_id, event_id, target_id = _from_delivery_key(item)
    return Delivery(
        tenant=str(item["tenant"]),
        video_id=video_id,
        event_id=event_id,
        target_id=target_id,
        event_type=str(item["event_type"]),
        event_body=_unpacked_body(item),
        url=str(item.get("url") or ""),
        state=item["state"],
        attempt_count=int(item["attempt_count"]),
        next_attempt_at=float(item.get("next_attempt_at") or 0),
        created_at=float(item["created_at"]),
        attempts=tuple(from_dynamo(a) for a in item.get("attempts") or ()),
        lease_until=float(item["lease_until"]) if item.get("lease_until") is not None else None,
        lease_token=item.get("lease_token"),
        manual_attempts=int(item.get("manual_attempts") or 0),
        dead_lettered=bool(item.get("dead_lettered")),
        dead_letter_sent=bool(item.get("dead_letter_sent")),
    )
