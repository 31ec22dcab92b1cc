"""The local endpoint's TransactWriteItems (local/transactions.py) keeps DynamoDB's all-or-nothing: a cancelled
transaction writes nothing and leaves every other item as it was, a refused write undoes the ones before it, and
the cancellation reasons are the ones DynamoDB gives, item by item."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from vidrelay.local.aws import LocalAws


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    aws = LocalAws().start()
    try:
        yield boto3.client(
            "dynamodb",
            endpoint_url=aws.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
    finally:
        aws.stop()


@pytest.fixture
def table(dynamodb: Any) -> str:
    name = "tx-" + uuid.uuid4().hex[:8]
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    for n in range(20):
        dynamodb.put_item(TableName=name, Item=item(f"bg{n}", v="0"))
    return name


def item(pk: str, **attrs: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "x"}, **{k: {"S": v} for k, v in attrs.items()}}


def key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "x"}}


def refused(dynamodb: Any, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The error response of a transaction the endpoint refuses."""
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(TransactItems=items)
    response: dict[str, Any] = raised.value.response
    return response


def everything(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    return sorted(dynamodb.scan(TableName=table)["Items"], key=lambda i: i["pk"]["S"])


def test_a_transaction_applies_every_write(dynamodb: Any, table: str) -> None:
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": table,
                    "Item": item("new", v="1"),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": table,
                    "Key": key("bg1"),
                    "UpdateExpression": "SET v = :v",
                    "ConditionExpression": "v = :old",
                    "ExpressionAttributeValues": {":v": {"S": "2"}, ":old": {"S": "0"}},
                }
            },
            {"Delete": {"TableName": table, "Key": key("bg2")}},
            {"ConditionCheck": {"TableName": table, "Key": key("bg3"), "ConditionExpression": "attribute_exists(pk)"}},
        ]
    )
    found = {i["pk"]["S"]: i.get("v", {}).get("S") for i in everything(dynamodb, table)}
    assert (found["new"], found["bg1"], "bg2" in found, found["bg3"]) == ("1", "2", False, "0")


def test_a_failed_condition_cancels_everything_with_the_reasons_item_by_item(dynamodb: Any, table: str) -> None:
    before = everything(dynamodb, table)
    error = refused(
        dynamodb,
        [
            {"Put": {"TableName": table, "Item": item("new", v="1")}},
            {
                "Update": {
                    "TableName": table,
                    "Key": key("bg1"),
                    "UpdateExpression": "SET v = :v",
                    "ConditionExpression": "v = :old",
                    "ExpressionAttributeValues": {":v": {"S": "2"}, ":old": {"S": "not this"}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ],
    )
    assert error["Error"]["Code"] == "TransactionCanceledException"
    reasons = error["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"]["v"] == {"S": "0"}  # ALL_OLD: the item as it was
    assert everything(dynamodb, table) == before


def test_a_refused_write_undoes_the_writes_before_it(dynamodb: Any, table: str) -> None:
    before = everything(dynamodb, table)
    error = refused(
        dynamodb,
        [
            {"Put": {"TableName": table, "Item": item("new", v="1")}},
            {"Update": {"TableName": table, "Key": key("bg1"), "UpdateExpression": "SET v = :v"}},
            {"Delete": {"TableName": table, "Key": key("bg2")}},
        ],
    )
    # The update names a value it does not give: refused when it is applied, after the put was.
    assert error["Error"]["Code"] in ("ValidationException", "TransactionCanceledException")
    assert everything(dynamodb, table) == before


def test_two_writes_to_one_item_are_refused(dynamodb: Any, table: str) -> None:
    before = everything(dynamodb, table)
    error = refused(
        dynamodb,
        [
            {"Put": {"TableName": table, "Item": item("bg1", v="9")}},
            {"Delete": {"TableName": table, "Key": key("bg1")}},
        ],
    )
    assert error["Error"]["Code"] == "ValidationException"
    assert everything(dynamodb, table) == before


def test_a_cancelled_transaction_leaves_the_table_itself_in_place(dynamodb: Any, table: str) -> None:
    # moto's own version put back a deep copy of the whole table (and took one for every transaction): here the
    # table and its untouched items are the very same objects afterwards.
    from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends

    from vidrelay.local import transactions

    assert DynamoDBBackend.transact_write_items is transactions.transact_write_items
    backend = dynamodb_backends["123456789012"]["us-east-1"]
    held_table = backend.tables[table]
    held_item = backend.get_item(table, key("bg5"))
    missing = {"TableName": table, "Key": key("nope"), "ConditionExpression": "attribute_exists(pk)"}
    refused(dynamodb, [{"Put": {"TableName": table, "Item": item("new", v="1")}}, {"ConditionCheck": missing}])
    assert backend.tables[table] is held_table
    assert backend.get_item(table, key("bg5")) is held_item
