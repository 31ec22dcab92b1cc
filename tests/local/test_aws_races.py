"""The local stack's AWS endpoint loses no acknowledged write and answers no 5xx under concurrent DynamoDB load.

Several threads race each other over HTTP through boto3, as the local stack's functions do: plain writes, failing
transactions (whose rollback used to put back a stale copy of the table) and succeeding transactions. Every write
DynamoDB acknowledged is then looked for. Retries are off, so a 5xx reaches the test instead of being hidden by a
second attempt.

Set VIDRELAY_TEST_UNSERIALISED_AWS=1 to run the same races against moto as it is, and see them fail.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from vidrelay.local.aws import LocalAws

pytestmark = pytest.mark.slow

REGION = "us-east-1"
# Enough items that a transaction's copy of the table takes a while, as the jobs table's does under load.
BACKGROUND_ITEMS = 200
# A worker makes one request (or one kind of request) against the table; `n` counts its calls.
Worker = Callable[[Any, str, str, int, "Tally"], None]
# The claim every failing transaction checks: it exists, so `attribute_not_exists` always fails.
TAKEN = {"pk": {"S": "claim"}, "sk": {"S": "taken"}}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    unserialised = os.environ.get("VIDRELAY_TEST_UNSERIALISED_AWS") == "1"
    aws = LocalAws(serialise_dynamodb=not unserialised).start()
    try:
        yield aws.url
    finally:
        aws.stop()


def client(endpoint: str) -> Any:
    config = Config(retries={"total_max_attempts": 1}, max_pool_connections=4, read_timeout=30)
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=config,
    )


def new_table(endpoint: str) -> str:
    """A table shaped like the jobs table (pk/sk and an index), filled with background items."""
    name = "race-" + uuid.uuid4().hex[:8]
    dynamodb = client(endpoint)
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "shard")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-shard",
                "KeySchema": [
                    {"AttributeName": "shard", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    dynamodb.put_item(TableName=name, Item=TAKEN)
    for n in range(BACKGROUND_ITEMS):
        dynamodb.put_item(
            TableName=name,
            Item={"pk": {"S": f"background-{n % 20}"}, "sk": {"S": f"{n:05d}"}, "body": {"S": "x" * 200}},
        )
    return name


@dataclass
class Tally:
    """What the racing threads saw: acknowledged writes per partition, and every outcome by kind."""

    acknowledged: dict[str, set[str]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, partition: str, sort_key: str) -> None:
        with self._lock:
            self.acknowledged.setdefault(partition, set()).add(sort_key)

    def count(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] += 1

    def server_errors(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome.startswith("5"))


def outcome_of(exc: ClientError) -> str:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return f"{status} {exc.response.get('Error', {}).get('Code', '?')}"


RACE_CAP_S = 60.0


def race(
    endpoint: str, table: str, workers: dict[str, Worker], seconds: float, enough: dict[str, int] | None = None
) -> Tally:
    """Runs every worker in its own thread, each with its own client, again and again until `seconds` passed and
    the tally holds `enough` of each outcome named (on a loaded machine that takes longer; at most a minute)."""
    tally = Tally()
    start = time.monotonic()
    failures: list[BaseException] = []

    def going() -> bool:
        elapsed = time.monotonic() - start
        if elapsed < seconds:
            return True
        with tally._lock:
            short = any(tally.outcomes[outcome] < n for outcome, n in (enough or {}).items())
        return short and elapsed < RACE_CAP_S

    def loop(name: str, work: Worker) -> None:
        dynamodb = client(endpoint)
        n = 0
        try:
            while going():
                try:
                    work(dynamodb, table, name, n, tally)
                except ClientError as exc:
                    tally.count(outcome_of(exc))
                n += 1
        except BaseException as exc:  # surfaced by the test: a worker must not die silently
            failures.append(exc)

    threads = [threading.Thread(target=loop, args=(name, work), name=name) for name, work in workers.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    return tally


def stored(endpoint: str, table: str, partition: str) -> set[str]:
    pages = (
        client(endpoint)
        .get_paginator("query")
        .paginate(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": partition}},
            ConsistentRead=True,
        )
    )
    return {item["sk"]["S"] for page in pages for item in page["Items"]}


# -- the workers --------------------------------------------------------------------------------------------------


def plain_write(dynamodb: Any, table: str, name: str, n: int, tally: Tally) -> None:
    """A put, an update or a conditional put of a new item: each one acknowledged must be there at the end."""
    sort_key = f"{n:06d}"
    key = {"pk": {"S": name}, "sk": {"S": sort_key}}
    match n % 3:
        case 0:
            dynamodb.put_item(TableName=table, Item={**key, "shard": {"S": name}})
        case 1:
            dynamodb.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET #shard = :shard",
                ExpressionAttributeNames={"#shard": "shard"},
                ExpressionAttributeValues={":shard": {"S": name}},
            )
        case _:
            dynamodb.put_item(
                TableName=table,
                Item={**key, "shard": {"S": name}},
                ConditionExpression="attribute_not_exists(pk)",
            )
    tally.ack(name, sort_key)
    tally.count("ok write")


def failing_transaction(dynamodb: Any, table: str, name: str, n: int, tally: Tally) -> None:
    """A put of a new item plus a claim that is already taken: always canceled, so nothing of it may remain."""
    try:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": name}, "sk": {"S": f"{n:06d}"}}}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": TAKEN,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        tally.count("canceled transaction")
        return
    tally.count("failing transaction committed")


def succeeding_transaction(dynamodb: Any, table: str, name: str, n: int, tally: Tally) -> None:
    """Two new items in one transaction: once acknowledged, both must be there."""
    sort_key = f"{n:06d}"
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": table,
                    "Item": {"pk": {"S": name}, "sk": {"S": sort_key}, "shard": {"S": name}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Put": {"TableName": table, "Item": {"pk": {"S": name + "-pair"}, "sk": {"S": sort_key}}}},
        ]
    )
    tally.ack(name, sort_key)
    tally.ack(name + "-pair", sort_key)
    tally.count("ok transaction")


def index_read(dynamodb: Any, table: str, name: str, n: int, tally: Tally) -> None:
    """A query on the index (as the poller's sweep does): it reads every item of the table."""
    dynamodb.query(
        TableName=table,
        IndexName="by-shard",
        KeyConditionExpression="#shard = :shard",
        ExpressionAttributeNames={"#shard": "shard"},
        ExpressionAttributeValues={":shard": {"S": "writer-0"}},
        Limit=5,
    )
    tally.count("ok read")


# -- the tests ----------------------------------------------------------------------------------------------------


def test_failing_transactions_racing_plain_writes_lose_no_acknowledged_write(endpoint: str) -> None:
    # Given a table with background items, and threads writing it while others run transactions that fail
    table = new_table(endpoint)
    workers = {f"writer-{i}": plain_write for i in range(4)}
    workers.update({f"failing-{i}": failing_transaction for i in range(3)})

    # When they race for ten seconds
    tally = race(endpoint, table, workers, seconds=10, enough={"ok write": 101, "canceled transaction": 51})

    # Then every acknowledged write is stored, and no canceled transaction left anything behind
    lost = {
        partition: sorted(keys - stored(endpoint, table, partition)) for partition, keys in tally.acknowledged.items()
    }
    lost_count = sum(len(keys) for keys in lost.values())
    print(f"outcomes: {dict(tally.outcomes)}; lost {lost_count} of {sum(map(len, tally.acknowledged.values()))}")
    assert tally.outcomes["ok write"] > 100 and tally.outcomes["canceled transaction"] > 50, tally.outcomes
    assert lost_count == 0, {p: keys[:5] for p, keys in lost.items() if keys}
    assert all(not stored(endpoint, table, f"failing-{i}") for i in range(3))
    assert tally.outcomes["failing transaction committed"] == 0
    assert tally.server_errors() == 0, tally.outcomes


def test_concurrent_transactions_answer_no_server_error(endpoint: str) -> None:
    # Given threads running transactions that succeed and transactions that fail, among plain writes and index reads
    table = new_table(endpoint)
    workers = {f"succeeding-{i}": succeeding_transaction for i in range(3)}
    workers.update({f"failing-{i}": failing_transaction for i in range(2)})
    workers.update({f"writer-{i}": plain_write for i in range(2)})
    workers["reader"] = index_read

    # When they race for six seconds
    tally = race(endpoint, table, workers, seconds=6, enough={"ok transaction": 51, "canceled transaction": 51})

    # Then nothing answered 5xx, every acknowledged transaction is stored whole, and nothing else went wrong
    print(f"outcomes: {dict(tally.outcomes)}")
    assert tally.server_errors() == 0, tally.outcomes
    assert tally.outcomes["ok transaction"] > 50 and tally.outcomes["canceled transaction"] > 50, tally.outcomes
    unexpected = {o: n for o, n in tally.outcomes.items() if not o.startswith(("ok ", "canceled"))}
    assert not unexpected, tally.outcomes
    for partition, keys in tally.acknowledged.items():
        assert keys <= stored(endpoint, table, partition), partition
