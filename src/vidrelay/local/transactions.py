"""TransactWriteItems for the local stack's moto, costing the items it touches rather than the tables it names.

moto (5.2.5) deep-copies every table a transaction names before it starts, to put the copy back if the
transaction is cancelled. The api creates each job in one transaction, so on the local stack every creation copied
the whole jobs table: creations slowed down as the table grew (a 1,000-job run made about 40 a minute from its
300th job on) and the copies' garbage grew the process by gigabytes. This version does what DynamoDB does: every
condition is checked against the items as they are, the transaction is cancelled before anything is written if one
fails, and otherwise the writes are applied, with a copy of just those items kept to put back should a write be
refused midway (an invalid update expression). It runs under the local endpoint's DynamoDB lock (aws.py), so
nothing changes between the checks and the writes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

OPERATIONS = ("ConditionCheck", "Put", "Delete", "Update")


@dataclass
class _Write:
    kind: str
    op: dict[str, Any]
    table_name: str
    key: dict[str, Any]
    current: Any  # the item as the condition saw it (None: absent); what an undo puts back


def install() -> None:
    """Replaces moto's DynamoDBBackend.transact_write_items in this process (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign,assignment]


def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    writes: list[_Write] = []
    errors: list[tuple[str | None, str | None, Any]] = []
    seen: set[tuple[str, str]] = set()
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        kind, op = next(iter(item.items()))
        failed_item = None
        try:
            if kind not in OPERATIONS:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            key = _key(backend, kind, op)
            target = (str(table_name), str(dict(sorted(key.items()))))
            if target in seen:
                raise MultipleTransactionsException()
            seen.add(target)
            current = backend.get_item(table_name, key)
            if not _condition_holds(op, current):
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    failed_item = current.to_json()["Attributes"]
                raise ConditionalCheckFailed(item=failed_item)
            if kind != "ConditionCheck":
                writes.append(_Write(kind, op, table_name, key, current))
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            raise
        except ConditionalCheckFailed as exc:
            errors.append(("ConditionalCheckFailed", str(exc.message), failed_item))
        except Exception as exc:  # as moto reports any other refusal: by its type, in the item's place
            errors.append((type(exc).__name__, str(exc), None))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    _apply(backend, writes)


def _key(backend: Any, kind: str, op: dict[str, Any]) -> dict[str, Any]:
    if kind != "Put":
        key: dict[str, Any] = op["Key"]
        return key
    table = backend.get_table(op["TableName"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _condition_holds(op: dict[str, Any], current: Any) -> bool:
    from moto.dynamodb.comparisons import get_filter_expression

    expression = op.get("ConditionExpression")
    if expression is None:
        return True
    condition = get_filter_expression(
        expression, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    )
    return bool(condition.expr(current))


def _apply(backend: Any, writes: list[_Write]) -> None:
    """Applies the checked writes in order; if one is refused, the ones before it are undone and the refusal is
    raised as moto would."""
    from moto.dynamodb.exceptions import MockValidationException, TransactionCanceledException

    undo: list[tuple[Any, Any, Any, Any]] = []
    for index, write in enumerate(writes):
        table = backend.get_table(write.table_name)
        hash_value, range_value = backend.get_keys_value(table, write.key)
        # A copy: an update changes the item in place.
        undo.append((table, hash_value, range_value, copy.deepcopy(write.current)))
        try:
            _write(backend, write)
        except MockValidationException:
            _undo(undo)
            raise
        except Exception as exc:
            _undo(undo)
            errors: list[tuple[str | None, str | None, Any]] = [(None, None, None)] * len(writes)
            errors[index] = (type(exc).__name__, str(exc), None)
            raise TransactionCanceledException(errors) from exc


def _write(backend: Any, write: _Write) -> None:
    op = write.op
    names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    if write.kind == "Put":
        backend.put_item(write.table_name, op["Item"], expression_attribute_names=names)
    elif write.kind == "Delete":
        backend.delete_item(write.table_name, write.key, expression_attribute_names=names)
    else:
        backend.update_item(
            write.table_name,
            write.key,
            update_expression=op["UpdateExpression"],
            expression_attribute_names=names,
            expression_attribute_values=values,
        )


def _undo(undo: list[tuple[Any, Any, Any, Any]]) -> None:
    for table, hash_value, range_value, before in reversed(undo):
        if table.range_key_attr is not None:
            if before is None:
                table.items[hash_value].pop(range_value, None)
            else:
                table.items[hash_value][range_value] = before
        elif before is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = before
