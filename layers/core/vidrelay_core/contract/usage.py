"""`GET /v1/usage`: estimated spend per UTC day and model."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field, field_validator

from .base import ApiModel, RequestModel, given, invalid

if TYPE_CHECKING:
    from ..queries import Usage


def _day(value: Any) -> Any:
    if not given(value):
        return None
    try:
        return time.strftime("%Y-%m-%d", time.strptime(str(value), "%Y-%m-%d"))
    except ValueError:
        raise invalid(value, "a UTC day as YYYY-MM-DD") from None


class UsageQuery(RequestModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str | None = Field(
        default=None, alias="from", description="First UTC day, YYYY-MM-DD (default: the 1st of this month)"
    )
    to: str | None = Field(default=None, description="Last UTC day, YYYY-MM-DD (default: today)")

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        return _day(value)

    @classmethod
    def wire_names(cls) -> frozenset[str]:
        return frozenset({"from", "to"})


class UsageRow(ApiModel):
    day: str = Field(examples=["2026-11-24"])
    model: str
    estimated_usd: float
    jobs: int


class UsageReport(ApiModel):
    model_config = ConfigDict(populate_by_name=True)

    object: Literal["usage"]
    from_: str = Field(alias="from")
    to: str
    total_usd: float
    jobs: int
    data: list[UsageRow]

    @classmethod
    def from_usage(cls, usage: Usage) -> UsageReport:
        rows = [UsageRow(day=r.day, model=r.model, estimated_usd=r.estimated_usd, jobs=r.jobs) for r in usage.rows]
        return cls.model_validate(
            {
                "object": "usage",
                "from": usage.first_day,
                "to": usage.last_day,
                "total_usd": usage.total_usd,
                "jobs": usage.jobs,
                "data": rows,
            }
        )
