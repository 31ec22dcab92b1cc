"""DynamoDB request units of the local stack's requests, as on-demand DynamoDB bills them.

A write is billed by the larger of the item's size before and after it (1 KB a unit, twice in a transaction),
and each global secondary index whose keys it changes costs a write of its own: one when the item enters or
leaves the index, two when its index keys move (a delete and a put). Neither is on the request, so
`WriteUnits` remembers, for every item the run wrote, the size of each attribute and the index key attributes:
units come from what the table holds, not from guesses. Items written before the count began are taken as
absent (a run starts from empty tables)."""

from __future__ import annotations

import base64
import json
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# The jobs table's key and its indexes' keys (template.yaml; tests/unit/test_bench.py checks them). Both
# indexes project keys only, so a write that leaves an index's keys alone writes nothing there.
TABLE_KEY = ("pk", "sk")
INDEX_KEYS: dict[str, tuple[str, str]] = {
    "inflight": ("inflight_shard", "next_check_at"),
    "by_tenant": ("tenant_pk", "created_key"),
}
_INDEX_ATTRIBUTES = frozenset(name for keys in INDEX_KEYS.values() for name in keys)
_CLAUSE = re.compile(r"(?<![\w:#])(SET|REMOVE|ADD|DELETE)\s", re.IGNORECASE)
_PLACEHOLDER = re.compile(r":[A-Za-z0-9_]+")


def value_bytes(value: Any) -> int:
    """The size DynamoDB gives a low-level attribute value ({"S": ...}, {"N": ...}, {"M": ...}...), by its item
    size rules: strings by their UTF-8 bytes, numbers one byte per two significant digits plus one, binaries by
    their raw bytes, booleans and nulls one byte, lists and maps 3 bytes plus one per element and the elements."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return _number_bytes(str(inner))
    if kind == "B":
        return len(inner if isinstance(inner, bytes | bytearray) else base64.b64decode(inner))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_bytes(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_bytes(element) for name, element in inner.items())
    if kind == "SS":
        return sum(len(str(element).encode()) for element in inner)
    if kind == "NS":
        return sum(_number_bytes(str(element)) for element in inner)
    if kind == "BS":
        return sum(value_bytes({"B": element}) for element in inner)
    raise ValueError(f"not a DynamoDB attribute value: {kind}")


def _number_bytes(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").split("e")[0].split("E")[0].strip("0")
    return math.ceil(max(1, len(digits)) / 2) + 1 + (1 if text.startswith("-") else 0)


def item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())


def read_units(operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> float:
    """Read request units of one answered read: 4 KB per item (Get, BatchGet, transactions: each item on its own;
    Query/Scan: the total), half for an eventually consistent read, twice for a transactional one."""
    factor = 1.0 if params.get("ConsistentRead") else 0.5
    if operation == "GetItem":
        return factor * _blocks(item_bytes(parsed.get("Item", {})), 4096)
    if operation == "BatchGetItem":
        # BatchGetItem reads eventually consistent unless each table asks otherwise.
        consistent = {name for name, ask in params.get("RequestItems", {}).items() if ask.get("ConsistentRead")}
        units = [
            (1.0 if table in consistent else 0.5) * _blocks(item_bytes(item), 4096)
            for table, found in parsed.get("Responses", {}).items()
            for item in found
        ]
        return sum(units) or 0.5
    if operation == "TransactGetItems":
        return sum(2.0 * _blocks(item_bytes(r.get("Item", {})), 4096) for r in parsed.get("Responses", []))
    total = sum(item_bytes(item) for item in parsed.get("Items", []))
    return factor * _blocks(total, 4096)


def _blocks(size: int, block: int) -> int:
    return max(1, math.ceil(size / block))


@dataclass(frozen=True)
class Write:
    """One item write of a request: its table and key, and what it does to the item."""

    table: str
    key: tuple[str, ...]
    kind: str  # "put" | "update" | "delete"
    item: dict[str, Any] = field(default_factory=dict)  # put: the whole item
    update: str = ""
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


def writes_of(operation: str, params: dict[str, Any]) -> Iterator[tuple[Write, bool]]:
    """The item writes of a write request, each with whether it is transactional."""
    if operation == "PutItem":
        yield _put(params), False
    elif operation == "UpdateItem":
        yield _update(params), False
    elif operation == "DeleteItem":
        yield Write(params["TableName"], _key(params["Key"]), "delete"), False
    elif operation == "BatchWriteItem":
        for table, requests in params.get("RequestItems", {}).items():
            for request in requests:
                if "PutRequest" in request:
                    yield _put({"TableName": table, **request["PutRequest"]}), False
                elif "DeleteRequest" in request:
                    yield Write(table, _key(request["DeleteRequest"]["Key"]), "delete"), False
    elif operation == "TransactWriteItems":
        for entry in params.get("TransactItems", []):
            if "Put" in entry:
                yield _put(entry["Put"]), True
            elif "Update" in entry:
                yield _update(entry["Update"]), True
            elif "Delete" in entry:
                yield Write(entry["Delete"]["TableName"], _key(entry["Delete"]["Key"]), "delete"), True
            # A ConditionCheck writes nothing; it is billed as a transactional read (not counted here).


def _key(key: dict[str, Any]) -> tuple[str, ...]:
    return tuple(json.dumps(key.get(name), sort_keys=True) for name in TABLE_KEY)


def _put(spec: dict[str, Any]) -> Write:
    return Write(spec["TableName"], _key(spec["Item"]), "put", item=dict(spec["Item"]))


def _update(spec: dict[str, Any]) -> Write:
    return Write(
        spec["TableName"],
        _key(spec["Key"]),
        "update",
        update=spec.get("UpdateExpression", ""),
        names=dict(spec.get("ExpressionAttributeNames", {})),
        values=dict(spec.get("ExpressionAttributeValues", {})),
    )


def update_clauses(write: Write) -> tuple[dict[str, Any], set[str]]:
    """What an UpdateExpression sets (attribute → the low-level value it is given, or its largest operand for an
    expression such as `if_not_exists(n, :zero) + :one`) and what it removes."""
    sets: dict[str, Any] = {}
    removes: set[str] = set()
    marks = list(_CLAUSE.finditer(write.update))
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        verb = mark.group(1).upper()
        body = write.update[mark.end() : following.start() if following else len(write.update)]
        for action in _top_level_split(body):
            if verb == "REMOVE":
                removes.add(write.names.get(action, action))
                continue
            name, _, operand = action.partition("=") if verb == "SET" else action.partition(" ")
            name = write.names.get(name.strip(), name.strip())
            operands = [write.values[p] for p in _PLACEHOLDER.findall(operand) if p in write.values]
            sets[name] = max(operands, key=value_bytes) if operands else {"S": ""}
    return sets, removes


def _top_level_split(body: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(body):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return [part.strip() for part in parts if part.strip()]


@dataclass
class _Stored:
    sizes: dict[str, int]  # attribute → bytes
    index_attributes: dict[str, Any]  # index key attribute → low-level value


class WriteUnits:
    """Prices write requests from what the table holds (the items the run wrote). A refused write still costs
    its units (DynamoDB bills a failed condition) but changes nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, tuple[str, ...]], _Stored] = {}

    def reset(self) -> None:
        with self._lock:
            self._items.clear()

    def charge(self, operation: str, params: dict[str, Any], *, applied: bool) -> tuple[float, float]:
        """(table write units, index write units) of one write request, priced against the items as they were
        before it; then, if DynamoDB carried it out, its index writes are counted and what it wrote remembered."""
        table_units = index_units = 0.0
        with self._lock:
            for write, transactional in writes_of(operation, params):
                before = self._items.get((write.table, write.key))
                after = self._after(before, write)
                table_units += (2 if transactional else 1) * _blocks(max(_size(before), _size(after)), 1024)
                if not applied:
                    continue  # a refused write writes no index
                index_units += _index_writes(before, after)
                if after is None:
                    self._items.pop((write.table, write.key), None)
                else:
                    self._items[(write.table, write.key)] = after
        return table_units, index_units

    @staticmethod
    def _after(before: _Stored | None, write: Write) -> _Stored | None:
        if write.kind == "delete":
            return None
        if write.kind == "put":
            return _Stored(
                sizes={name: len(name.encode()) + value_bytes(value) for name, value in write.item.items()},
                index_attributes={k: v for k, v in write.item.items() if k in _INDEX_ATTRIBUTES},
            )
        sets, removes = update_clauses(write)
        sizes = dict(before.sizes) if before else {}
        index_attributes = dict(before.index_attributes) if before else {}
        for name, value in sets.items():
            sizes[name] = len(name.encode()) + value_bytes(value)
            if name in _INDEX_ATTRIBUTES:
                index_attributes[name] = value
        for name in removes:
            sizes.pop(name, None)
            index_attributes.pop(name, None)
        return _Stored(sizes, index_attributes)


def _size(stored: _Stored | None) -> int:
    return sum(stored.sizes.values()) if stored else 0


def _index_writes(before: _Stored | None, after: _Stored | None) -> int:
    writes = 0
    for keys in INDEX_KEYS.values():
        old, new = _index_key(before, keys), _index_key(after, keys)
        if old != new:
            # Entering or leaving the index is one write; moving within it a delete and a put.
            writes += 2 if old is not None and new is not None else 1
    return writes


def _index_key(stored: _Stored | None, keys: tuple[str, str]) -> tuple[str, ...] | None:
    if stored is None or not all(k in stored.index_attributes for k in keys):
        return None
    return tuple(json.dumps(stored.index_attributes[k], sort_keys=True) for k in keys)
