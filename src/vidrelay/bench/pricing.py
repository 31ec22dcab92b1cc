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
# How long an AWS call waits for its answer from inside Lambda in the same region: DynamoDB's single-digit
# milliseconds (its documented latency; 10 ms taken), SQS and SNS a few tens of ms, S3 100 ms (the first-byte
# latency its performance guidelines quote, for small objects a whole request). The local stack's calls wait
# on moto instead, far slower (60-220 ms a DynamoDB call on 2 shared cores): billing that wait as Lambda time
# would price the emulator, not the relay.
CLOUD_ANSWER_S = {"dynamodb": 0.010, "sqs": 0.020, "sns": 0.020, "s3": 0.100}
CLOUD_ANSWER_DEFAULT_S = 0.100
# Lambda gives a function CPU in proportion to its memory, one vCPU at 1,769 MB: below that, CPU work takes
# 1769 / MemorySize times as long as on a core of its own.
ONE_VCPU_MB = 1769
# Lambda bills each invocation rounded up to the millisecond: at most 1 ms more per invocation.
BILLING_STEP_S = 0.001


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


def lambda_seconds(usage: Snapshot, function: str) -> float:
    """The Lambda time `function`'s invocations would bill in the cloud: their CPU time (counted per invocation
    thread, its pool threads and worker processes; on this machine's cores), stretched to the CPU share of the
    function's MemorySize, plus each AWS request's cloud answer time (CLOUD_ANSWER_S), rounded up to the billing
    step. Wall time is no measure here: on the local stack it holds moto's answers and the wait for a core
    that the stack's other functions share. Waits on other servers (upstream, webhook receiver) are not in it:
    the cloud model (costs.py) adds them."""
    record = usage.invocations[function]
    stretch = max(1.0, ONE_VCPU_MB / record.memory_mb) if record.memory_mb else 1.0
    cloud_wait = sum(
        n * CLOUD_ANSWER_S.get(service, CLOUD_ANSWER_DEFAULT_S)
        for (who, service, operation), n in usage.requests.items()
        if who == function and operation != EMPTY_RECEIVE
    )
    return usage.cpu_seconds.get(function, 0.0) * stretch + cloud_wait + record.count * BILLING_STEP_S


def lambda_gb_seconds(usage: Snapshot, function: str) -> float:
    return lambda_seconds(usage, function) * usage.invocations[function].memory_mb / 1024


def price(usage: Snapshot, *, include_empty_receives: bool = True) -> dict[str, Any]:
    """Cost per caller and per service, with the counts it was priced from. Lambda time is priced as the cloud
    would bill it (lambda_seconds); `lambda_as_measured_usd` is the same invocations at their local durations."""
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
    gb_s_rate = float(table["lambda"]["arm64_gb_second_usd"])
    as_measured = 0.0
    for function, record in usage.invocations.items():
        add(function, "lambda", record.count * float(table["lambda"]["request_usd"]))
        add(function, "lambda", lambda_gb_seconds(usage, function) * gb_s_rate)
        as_measured += record.count * float(table["lambda"]["request_usd"]) + record.gb_seconds * gb_s_rate
        if function == API_FUNCTION:  # each API request is one api invocation behind the HTTP API
            add("api_gateway", "api_gateway", record.count * float(table["api_gateway"]["http_api_request_usd"]))
    return {
        "total_usd": sum(per_service.values()),
        "by_caller_usd": dict(sorted(per_caller.items())),
        "by_service_usd": dict(sorted(per_service.items())),
        "lambda_as_measured_usd": as_measured,
    }


def scaled(cost: dict[str, Any], factor: float, digits: int = 4) -> dict[str, Any]:
    return {
        "total_usd": round(cost["total_usd"] * factor, digits),
        "by_caller_usd": {k: round(v * factor, digits) for k, v in cost["by_caller_usd"].items()},
        "by_service_usd": {k: round(v * factor, digits) for k, v in cost["by_service_usd"].items()},
        "lambda_as_measured_usd": round(cost["lambda_as_measured_usd"] * factor, digits),
    }
