"""Per-tenant counters: usage per day and model, the month's spend (the budget), creations per minute (the rate
limit) and endpoint test sends per minute. The first three are updated inside a new job's own transaction
(JobStore.create_job), conditionally where a limit applies, so concurrent creates can never overshoot one."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..jobs import Job
from .codec import Table
from .jobs import CounterWrite

RATE_WINDOW_S = 60


def rate_window(at: float) -> int:
    """The start of the fixed one-minute window `at` falls in."""
    return int(at // RATE_WINDOW_S) * RATE_WINDOW_S


def seconds_to_next_window(at: float) -> int:
    return max(1, math.ceil(rate_window(at) + RATE_WINDOW_S - at))


def utc_day(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class UsageRow:
    day: str
    model: str
    estimated_usd: float
    jobs: int


def _usd(value: float) -> Decimal:
    return Decimal(repr(round(value, 6)))


class CounterStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def writes_for_new_job(
        self, job: Job, *, budget_usd: float | None, rate_per_minute: int | None
    ) -> list[CounterWrite]:
        """The counter updates a new job's transaction carries. With a monthly budget the spend update is
        conditional on the room left; with a rate limit, the minute's count on being under it."""
        cost = _usd(job.cost_usd or 0.0)
        day = utc_day(job.created_at)
        writes = [
            CounterWrite(
                "usage",
                {
                    "Key": {"pk": f"TENANT#{job.tenant}", "sk": f"USAGE#{day}#{job.model}"},
                    "UpdateExpression": "ADD usd :cost, jobs :one SET model = :model, day_utc = :day",
                    "ExpressionAttributeValues": {":cost": cost, ":one": 1, ":model": job.model, ":day": day},
                },
            )
        ]
        spend: dict[str, Any] = {
            "Key": {"pk": f"TENANT#{job.tenant}", "sk": f"SPEND#{day[:7]}"},
            "UpdateExpression": "ADD usd :cost",
            "ExpressionAttributeValues": {":cost": cost},
        }
        if budget_usd is not None:
            spend["ConditionExpression"] = "attribute_not_exists(usd) OR usd <= :room"
            spend["ExpressionAttributeValues"][":room"] = _usd(budget_usd) - cost
        writes.append(CounterWrite("spend", spend))
        if rate_per_minute is not None:
            window = rate_window(job.created_at)
            writes.append(
                CounterWrite(
                    "rate",
                    {
                        "Key": {"pk": f"TENANT#{job.tenant}", "sk": f"RATE#{window}"},
                        "UpdateExpression": "ADD created :one SET expires_at_ttl = :ttl",
                        "ConditionExpression": "attribute_not_exists(created) OR created < :limit",
                        "ExpressionAttributeValues": {
                            ":one": 1,
                            ":limit": rate_per_minute,
                            ":ttl": window + 2 * RATE_WINDOW_S,
                        },
                    },
                )
            )
        return writes

    def rate_used(self, tenant: str, window: int) -> int:
        """How many jobs the tenant created in the minute starting at `window`."""
        item = self._table.get({"pk": f"TENANT#{tenant}", "sk": f"RATE#{window}"})
        return int(item["created"]) if "created" in item else 0

    def month_spend(self, tenant: str, month: str) -> float:
        item = self._table.get({"pk": f"TENANT#{tenant}", "sk": f"SPEND#{month}"})
        return float(item["usd"]) if "usd" in item else 0.0

    def usage(self, tenant: str, first_day: str, last_day: str) -> list[UsageRow]:
        """Per day and model, for the days in [first_day, last_day] (YYYY-MM-DD)."""
        items = self._table.query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":pk": f"TENANT#{tenant}",
                ":lo": f"USAGE#{first_day}#",
                ":hi": f"USAGE#{last_day}#\uffff",
            },
        )
        return [UsageRow(str(i["day_utc"]), str(i["model"]), float(i["usd"]), int(i["jobs"])) for i in items]

    def take_test_send(self, tenant: str, limit: int, at: float) -> bool:
        """Counts one endpoint test send in the tenant's minute; False when the minute already had `limit`."""
        window = rate_window(at)
        return self._table.conditional(
            "update_item",
            Key={"pk": f"TENANT#{tenant}", "sk": f"TESTS#{window}"},
            UpdateExpression="ADD sent :one SET expires_at_ttl = :ttl",
            ConditionExpression="attribute_not_exists(sent) OR sent < :limit",
            ExpressionAttributeValues={":one": 1, ":limit": limit, ":ttl": window + 2 * RATE_WINDOW_S},
        )
