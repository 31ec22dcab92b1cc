"""DynamoDB request units as the bench prices them (bench/units.py), fed with the job store's own requests: the
store writes through a client that records each request and answers as DynamoDB would, and the units are
checked against what DynamoDB bills for those writes (item sizes, transactions, index writes)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from vidrelay_core.jobs import Job
from vidrelay_core.store.codec import Table, serialize
from vidrelay_core.store.jobs import JobStore

from vidrelay.bench.units import (
    INDEX_KEYS,
    TABLE_KEY,
    WriteUnits,
    item_bytes,
    read_units,
    update_clauses,
    value_bytes,
    writes_of,
)
from vidrelay.local.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]


class _Refused(Exception):
    pass


class RecordingClient:
    """Records each write the store makes (operation name, parameters as botocore is given them)."""

    class exceptions:  # the shape of a boto3 client's exceptions
        ConditionalCheckFailedException = _Refused
        TransactionCanceledException = _Refused

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, method: str) -> Any:
        operation = "".join(part.title() for part in method.split("_"))

        def call(**params: Any) -> dict[str, Any]:
            self.requests.append((operation, params))
            return {}

        return call


def a_job(**changes: Any) -> Job:
    base = Job(
        id="video_1",
        tenant="t",
        model="sora-2",
        family="videos",
        provider="apiyi",
        prompt="a lighthouse at dusk",
        seconds="8",
        size="1280x720",
        created_at=1_800_000_000.0,
        next_check_at=1_800_000_002.0,
        inflight_shard=3,
    )
    return base.with_changes(**changes)


@pytest.fixture
def recorded() -> tuple[JobStore, RecordingClient]:
    client = RecordingClient()
    return JobStore(Table(client, "jobs")), client


def charge(units: WriteUnits, client: RecordingClient, *, applied: bool = True) -> tuple[float, float]:
    operation, params = client.requests.pop()
    return units.charge(operation, params, applied=applied)


def test_the_index_keys_are_the_templates() -> None:
    template = load_yaml((ROOT / "template.yaml").read_text())
    table = template["Resources"]["JobsTable"]["Properties"]
    assert tuple(k["AttributeName"] for k in table["KeySchema"]) == TABLE_KEY
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert {name: tuple(k["AttributeName"] for k in i["KeySchema"]) for name, i in indexes.items()} == INDEX_KEYS
    # Units of an index write assume it holds keys only (a few bytes, one unit, none when its keys stay).
    assert {i["Projection"]["ProjectionType"] for i in indexes.values()} == {"KEYS_ONLY"}


def test_a_job_s_life_is_priced_item_by_item_with_its_index_writes(recorded: tuple[JobStore, RecordingClient]) -> None:
    store, client = recorded
    units = WriteUnits()
    job = a_job()

    store.create_job(job, idempotency_key="k1", request_hash="h")
    table_units, index_units = charge(units, client)
    # A transaction: twice the units of each item (the job and its Idempotency-Key record, each under 1 KB), and
    # the new job enters both indexes.
    assert table_units == 2 * 1 + 2 * 1
    assert index_units == 2

    stored = store.save(job, replace(job, state="queued", next_check_at=job.next_check_at + 15))  # type: ignore[operator]
    assert charge(units, client) == (1, 2)  # its next check moved: a delete and a put in `inflight`

    store.reschedule(stored, stored.next_check_at + 15)  # type: ignore[operator]
    assert charge(units, client) == (1, 2)

    done = store.save(stored, replace(stored, state="completed", next_check_at=None))
    assert charge(units, client) == (1, 1)  # leaves `inflight`; `by_tenant` keys unchanged

    store.mark_published(done)
    assert charge(units, client) == (1, 0)  # nothing left to remove from the index

    store.save(done, replace(done, deleted_at=1_800_000_100.0))
    assert charge(units, client) == (1, 1)  # a deleted job leaves the tenant listing


def test_an_update_is_priced_by_the_larger_of_the_item_before_and_after(
    recorded: tuple[JobStore, RecordingClient],
) -> None:
    store, client = recorded
    units = WriteUnits()
    job = a_job(prompt="x" * 3000)
    kilobytes = math.ceil(item_bytes(serialize(store.job_item(job))) / 1024)
    assert kilobytes >= 3
    store.save(job, job)
    assert charge(units, client) == (kilobytes, 2)  # new to both indexes
    store.mark_published(job)
    assert charge(units, client) == (kilobytes, 0)  # a SET of one flag still writes the whole item


def test_a_refused_write_costs_its_units_and_changes_nothing(recorded: tuple[JobStore, RecordingClient]) -> None:
    store, client = recorded
    units = WriteUnits()
    job = a_job()
    store.save(job, job)
    assert charge(units, client, applied=False) == (1, 0)  # a failed condition writes no index
    store.save(job, job)
    assert charge(units, client) == (1, 2)  # still new to both indexes: the refused write left nothing
    store.save(job, job)
    assert charge(units, client) == (1, 0)  # same keys in both indexes


def test_update_clauses_read_set_add_and_remove() -> None:
    (write, _), *_ = writes_of(
        "UpdateItem",
        {
            "TableName": "jobs",
            "Key": {"pk": {"S": "C#1"}, "sk": {"S": "C"}},
            "UpdateExpression": "ADD usd :cost, jobs :one SET #m = if_not_exists(#m, :model), day_utc = :day REMOVE x",
            "ExpressionAttributeNames": {"#m": "model"},
            "ExpressionAttributeValues": {
                ":cost": {"N": "0.4"},
                ":one": {"N": "1"},
                ":model": {"S": "sora-2"},
                ":day": {"S": "2026-12-03"},
            },
        },
    )
    sets, removes = update_clauses(write)
    assert sets == {"usd": {"N": "0.4"}, "jobs": {"N": "1"}, "model": {"S": "sora-2"}, "day_utc": {"S": "2026-12-03"}}
    assert removes == {"x"}


def test_read_units_follow_the_item_sizes() -> None:
    small = {"pk": {"S": "JOB#1"}}
    big = {"pk": {"S": "JOB#2"}, "blob": {"S": "x" * 5000}}
    assert read_units("GetItem", {"ConsistentRead": True}, {"Item": small}) == 1.0
    assert read_units("GetItem", {}, {"Item": big}) == 1.0  # 2 x 4 KB, halved (eventually consistent)
    assert read_units("BatchGetItem", {}, {"Responses": {"t": [small, small, big]}}) == 2.0
    consistent = {"RequestItems": {"t": {"ConsistentRead": True}}}
    assert read_units("BatchGetItem", consistent, {"Responses": {"t": [small, small, big]}}) == 4.0
    assert read_units("Query", {}, {"Items": [small] * 3}) == 0.5


def test_item_sizes_follow_dynamodb_s_rules() -> None:
    assert value_bytes({"S": "héllo"}) == 6  # UTF-8 bytes
    assert value_bytes({"N": "1796281818.0225158"}) == 10  # 17 significant digits: 9 bytes + 1
    assert value_bytes({"N": "1000"}) == 2  # trailing zeros trimmed
    assert value_bytes({"N": "-0.5"}) == 3
    assert value_bytes({"BOOL": False}) == 1 and value_bytes({"NULL": True}) == 1
    assert value_bytes({"B": b"\x00\x01\x02"}) == 3
    assert value_bytes({"L": []}) == 3 and value_bytes({"M": {}}) == 3
    assert value_bytes({"M": {"ab": {"S": "xyz"}}}) == 3 + 1 + 2 + 3
    assert value_bytes({"L": [{"N": "1"}, {"S": "a"}]}) == 3 + (1 + 2) + (1 + 1)
    assert item_bytes({"pk": {"S": "JOB#1"}, "n": {"N": "7"}}) == 2 + 5 + 1 + 2
