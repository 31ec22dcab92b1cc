"""One DynamoDB codec for every store: Python values in and out of the low-level client, paginated queries, and
conditional writes that answer True/False instead of raising.

The low-level client, not a boto3 resource: clients are thread-safe, and the poller checks jobs from a pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
_VALUE_ARGUMENTS = ("Key", "Item", "ExpressionAttributeValues", "ExclusiveStartKey")


def to_dynamo(value: Any) -> Any:
    """Floats become Decimals (DynamoDB has no float), None values of maps are left out."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    """Decimals back to int or float, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


def number(value: float) -> Decimal:
    """A time or amount as DynamoDB stores it (milliseconds are plenty)."""
    return Decimal(repr(round(value, 3)))


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZER.serialize(v) for k, v in item.items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    """Python values of an item; a binary attribute as the bytes it holds (boto3 would wrap them in Binary)."""
    return {k: v["B"] if "B" in v else _DESERIALIZER.deserialize(v) for k, v in item.items()}


class Table:
    """The calls the stores make on one table, with Python values in and out."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        for argument in _VALUE_ARGUMENTS:
            if argument in kwargs:
                kwargs[argument] = serialize(kwargs[argument])
        response: dict[str, Any] = getattr(self.client, method)(TableName=self.name, **kwargs)
        for argument in ("Item", "Attributes"):
            if argument in response:
                response[argument] = deserialize(response[argument])
        return response

    def get(self, key: dict[str, Any], *, consistent: bool = True, projection: str | None = None) -> dict[str, Any]:
        """The item, or {} when there is none."""
        kwargs: dict[str, Any] = {"Key": key, "ConsistentRead": consistent}
        if projection is not None:
            kwargs["ProjectionExpression"] = projection
        return dict(self._call("get_item", **kwargs).get("Item") or {})

    def put(self, item: dict[str, Any], **kwargs: Any) -> None:
        self._call("put_item", Item=item, **kwargs)

    def update(self, key: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._call("update_item", Key=key, **kwargs)

    def delete(self, key: dict[str, Any], **kwargs: Any) -> None:
        self._call("delete_item", Key=key, **kwargs)

    def conditional(self, method: str, **kwargs: Any) -> bool:
        """A conditional put/update/delete: False when its condition failed, instead of raising."""
        try:
            self._call(method, **kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def query(self, *, limit: int | None = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Items of a Query, page after page (boto3's paginator), until `limit` items (when given) were read."""
        if "ExpressionAttributeValues" in kwargs:
            kwargs["ExpressionAttributeValues"] = serialize(kwargs["ExpressionAttributeValues"])
        if "ExclusiveStartKey" in kwargs:
            kwargs["ExclusiveStartKey"] = serialize(kwargs["ExclusiveStartKey"])
        if limit is not None:
            kwargs["PaginationConfig"] = {"MaxItems": limit, "PageSize": kwargs.pop("Limit", limit)}
        pages = self.client.get_paginator("query").paginate(TableName=self.name, **kwargs)
        for page in pages:
            for item in page.get("Items", []):
                yield deserialize(item)

    def batch_get(self, keys: list[dict[str, Any]], *, consistent: bool = False) -> list[dict[str, Any]]:
        """The items of `keys` that exist, in no particular order: 100 keys a call (DynamoDB's limit), keys
        DynamoDB left unprocessed (throttling) asked for again."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):
            pending: dict[str, Any] = {
                self.name: {"Keys": [serialize(k) for k in keys[start : start + 100]], "ConsistentRead": consistent}
            }
            for _ in range(8):
                answer = self.client.batch_get_item(RequestItems=pending)
                found.extend(deserialize(item) for item in answer.get("Responses", {}).get(self.name, []))
                pending = answer.get("UnprocessedKeys") or {}
                if not pending:
                    break
            else:
                raise RuntimeError(f"BatchGetItem left keys unprocessed after 8 tries on {self.name}")
        return found

    def transact(self, items: list[dict[str, Any]]) -> list[str]:
        """Writes `items` (each {"Put"|"Update"|...: {...}} with Python values; TableName filled in) in one
        transaction. Returns [] when it went through, else the cancellation reason code of each item in order
        ("None" for an item that was fine, "ConditionalCheckFailed" for one whose condition failed...)."""
        requests = []
        for entry in items:
            (operation, spec), *_ = entry.items()
            spec = {"TableName": self.name, **spec}
            for argument in _VALUE_ARGUMENTS:
                if argument in spec:
                    spec[argument] = serialize(spec[argument])
            requests.append({operation: spec})
        try:
            self.client.transact_write_items(TransactItems=requests)
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons") or []
            codes = [str(reason.get("Code", "None")) for reason in reasons]
            if "ConditionalCheckFailed" not in codes:
                raise  # canceled for a reason no condition explains (a conflict, a throttle): the caller retries
            return codes
        return []
