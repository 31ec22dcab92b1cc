"""Tenants and their API keys.

A key is stored only as its SHA-256 hash: once as the lookup item the API reads (KEY#<hash>), once in the
registry `vidrelay keys` lists and revokes (KEYS / KEY#<id>), written and revoked together.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .codec import Table


@dataclass(frozen=True)
class TenantLimits:
    budget_usd: float | None = None
    rate_per_minute: int | None = None


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    tenant: str
    created_at: int
    revoked_at: int | None = None


def _profile(tenant: str) -> dict[str, str]:
    return {"pk": f"TENANT#{tenant}", "sk": "PROFILE"}


def _api_key(item: dict[str, Any]) -> ApiKey:
    revoked = item.get("revoked_at")
    return ApiKey(
        key_id=str(item["key_id"]),
        tenant=str(item["tenant"]),
        created_at=int(item["created_at"]),
        revoked_at=int(revoked) if revoked is not None else None,
    )


class TenantStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    # -- profiles -----------------------------------------------------------------------------------------------

    def put_tenant(self, tenant: str, *, webhook_secret: str) -> None:
        self._table.put({**_profile(tenant), "tenant": tenant, "webhook_secret": webhook_secret})

    def ensure_tenant(self, tenant: str, *, webhook_secret: str) -> bool:
        """Creates the tenant's profile unless it exists (its secret is never replaced). True when created."""
        return self._table.conditional(
            "put_item",
            Item={**_profile(tenant), "tenant": tenant, "webhook_secret": webhook_secret},
            ConditionExpression="attribute_not_exists(pk)",
        )

    def tenant_exists(self, tenant: str) -> bool:
        return bool(self._table.get(_profile(tenant), projection="pk"))

    def webhook_secret(self, tenant: str) -> str | None:
        item = self._table.get(_profile(tenant), consistent=False)
        return str(item["webhook_secret"]) if item.get("webhook_secret") else None

    def limits(self, tenant: str) -> TenantLimits:
        """The tenant's monthly budget and own rate limit (None: not set), from one read of its profile."""
        item = self._table.get(_profile(tenant), consistent=False)
        budget, rate = item.get("budget_usd_month"), item.get("rate_per_minute")
        return TenantLimits(
            budget_usd=float(budget) if budget is not None else None,
            rate_per_minute=int(rate) if rate is not None else None,
        )

    def set_budget(self, tenant: str, budget_usd: float | None) -> None:
        if budget_usd is None:
            self._table.update(_profile(tenant), UpdateExpression="REMOVE budget_usd_month")
        else:
            self._table.update(
                _profile(tenant),
                UpdateExpression="SET budget_usd_month = :b",
                ExpressionAttributeValues={":b": Decimal(repr(budget_usd))},
            )

    def set_rate_limit(self, tenant: str, per_minute: int | None) -> None:
        if per_minute is None:
            self._table.update(_profile(tenant), UpdateExpression="REMOVE rate_per_minute")
        else:
            self._table.update(
                _profile(tenant),
                UpdateExpression="SET rate_per_minute = :r",
                ExpressionAttributeValues={":r": per_minute},
            )

    # -- API keys -----------------------------------------------------------------------------------------------

    def tenant_for_key(self, key_hash: str) -> str | None:
        item = self._table.get({"pk": f"KEY#{key_hash}", "sk": "KEY"}, consistent=False)
        if not item or item.get("revoked_at"):
            return None
        return str(item["tenant"])

    def put_api_key(self, key_hash: str, tenant: str) -> None:
        """A lookup item alone, without a registry entry (test tenants)."""
        self._table.put({"pk": f"KEY#{key_hash}", "sk": "KEY", "tenant": tenant, "created_at": int(time.time())})

    def create_api_key(self, key_id: str, key_hash: str, tenant: str, *, now: float) -> None:
        """The key's lookup item (by hash, what the API reads) and its registry entry (by id), written together."""
        lookup = {"pk": f"KEY#{key_hash}", "sk": "KEY", "tenant": tenant, "key_id": key_id, "created_at": int(now)}
        entry: dict[str, Any] = {"pk": "KEYS", "sk": f"KEY#{key_id}", "key_id": key_id, "key_hash": key_hash}
        entry.update(tenant=tenant, created_at=int(now))
        refused = self._table.transact(
            [{"Put": {"Item": item, "ConditionExpression": "attribute_not_exists(pk)"}} for item in (lookup, entry)]
        )
        if refused:
            raise RuntimeError(f"API key {key_id} (or its hash) exists already")

    def list_api_keys(self) -> list[ApiKey]:
        items = self._table.query(KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": "KEYS"})
        return sorted((_api_key(i) for i in items), key=lambda k: (k.tenant, k.created_at))

    def revoke_api_key(self, key_id: str, *, now: float) -> tuple[ApiKey, bool] | None:
        """Marks the key revoked in both items; the API refuses it from the next request on. Returns the key as it
        is now and whether this call revoked it (False: it was revoked already), or None for an unknown key."""
        entry = self._table.get({"pk": "KEYS", "sk": f"KEY#{key_id}"})
        if not entry:
            return None
        if entry.get("revoked_at") is not None:
            return _api_key(entry), False
        keys = ({"pk": f"KEY#{entry['key_hash']}", "sk": "KEY"}, {"pk": "KEYS", "sk": f"KEY#{key_id}"})
        self._table.transact(
            [
                {
                    "Update": {
                        "Key": key,
                        "UpdateExpression": "SET revoked_at = if_not_exists(revoked_at, :now)",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {":now": int(now)},
                    }
                }
                for key in keys
            ]
        )
        return _api_key({**entry, "revoked_at": int(now)}), True
