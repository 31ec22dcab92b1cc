"""Prices counted AWS usage from the list prices kept in src/vidrelay/prices.json (us-east-1, no free tier)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from .calls import EMPTY_RECEIVE, Snapshot

PRICES_PATH = Path(__file__).resolve().parent.parent / "prices.json"
S3_PUT_CLASS = {
    "PutObject",
    "UploadPart",
    "CreateMultipartUpload",
    "CompleteMultipartUpload",
    "CopyObject",
    "UploadPartCopy",
    "ListObjects",
    "ListObjectsV2",
    "ListParts",
    "ListMultipartUploads",
}
S3_FREE = {"DeleteObject", "DeleteObjects", "AbortMultipartUpload"}
API_FUNCTION = "ApiFunction"
UNIT_RATE = {"read": "read", "write": "write", "index_write": "write"}


@lru_cache(maxsize=1)
def prices() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(PRICES_PATH.read_text())
    return loaded


def request_price(service: str, operation: str) -> float:
    table = prices()
    if service == "sqs":
        return float(table["sqs"]["standard_request_usd"])
    if service == "sns":
        return float(table["sns"]["publish_usd"]) if operation == "Publish" else 0.0
    if service == "s3":
        if operation in S3_FREE:
            return 0.0
        key = "put_copy_post_list_request_usd" if operation in S3_PUT_CLASS else "get_and_other_request_usd"
        return float(table["s3"][key])
    return 0.0  # DynamoDB is priced by request units, not requests


def price(usage: Snapshot, *, include_empty_receives: bool = True) -> dict[str, Any]:
    """Cost per caller and per service, with the counts it was priced from."""
    table = prices()
    per_caller: dict[str, float] = {}
    per_service: dict[str, float] = {}

    def add(who: str, service: str, usd: float) -> None:
        per_caller[who] = per_caller.get(who, 0.0) + usd
        per_service[service] = per_service.get(service, 0.0) + usd

    for (who, service, operation), n in usage.requests.items():
        if operation == EMPTY_RECEIVE and not include_empty_receives:
            continue
        add(who, service, n * request_price(service, operation))
    for (who, kind), units in usage.units.items():
        # An index's write is billed as a write request unit of the table.
        rate = table["dynamodb"][f"on_demand_{UNIT_RATE[kind]}_request_unit_usd"]
        add(who, "dynamodb", units * float(rate))
    for function, record in usage.invocations.items():
        add(function, "lambda", record.count * float(table["lambda"]["request_usd"]))
        add(function, "lambda", record.gb_seconds * float(table["lambda"]["arm64_gb_second_usd"]))
        if function == API_FUNCTION:  # each API request is one api invocation behind the HTTP API
            add("api_gateway", "api_gateway", record.count * float(table["api_gateway"]["http_api_request_usd"]))
    return {
        "total_usd": sum(per_service.values()),
        "by_caller_usd": dict(sorted(per_caller.items())),
        "by_service_usd": dict(sorted(per_service.items())),
    }


def scaled(cost: dict[str, Any], factor: float, digits: int = 4) -> dict[str, Any]:
    return {
        "total_usd": round(cost["total_usd"] * factor, digits),
        "by_caller_usd": {k: round(v * factor, digits) for k, v in cost["by_caller_usd"].items()},
        "by_service_usd": {k: round(v * factor, digits) for k, v in cost["by_service_usd"].items()},
    }
