"""The bench's call counter (bench/calls.py) against the local AWS endpoint, through boto3's real request path:
the request units it counts are the ones DynamoDB bills for what was sent. Run in a process of its own, because
the counter hooks boto3's default session for the life of the process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json
    import boto3
    from vidrelay.bench.calls import CallCounter
    from vidrelay.local.aws import LocalAws

    counter = CallCounter().install()
    aws = LocalAws().start()
    client = boto3.client("dynamodb", endpoint_url=aws.url, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    client.create_table(
        TableName="jobs", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                              for n in ("pk", "sk", "inflight_shard")]
                             + [{"AttributeName": "next_check_at", "AttributeType": "N"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "inflight",
            "KeySchema": [{"AttributeName": "inflight_shard", "KeyType": "HASH"},
                          {"AttributeName": "next_check_at", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }],
    )

    def key(pk):
        return {"pk": {"S": pk}, "sk": {"S": "JOB"}}

    def counted(step):
        counter.reset()
        step()
        s = counter.snapshot()
        return {kind: sum(v for (_, k), v in s.units.items() if k == kind) for kind in ("read", "write", "index_write")}

    def _refused(call):
        try:
            call()
        except client.exceptions.ConditionalCheckFailedException:
            return
        raise AssertionError("the condition should have failed")

    big = {**key("JOB#1"), "blob": {"S": "x" * 1500}, "inflight_shard": {"S": "S1"}, "next_check_at": {"N": "10"}}
    figures = {
        # 1.5 KB: two units; the new item enters the index.
        "put": counted(lambda: client.put_item(TableName="jobs", Item=big)),
        # Two small items in a transaction: twice a unit each.
        "transaction": counted(lambda: client.transact_write_items(TransactItems=[
            {"Put": {"TableName": "jobs", "Item": {**key("JOB#2"), "n": {"N": "1"}}}},
            {"Put": {"TableName": "jobs", "Item": {**key("JOB#3"), "n": {"N": "1"}}}},
        ])),
        # Moves the 1.5 KB item's next check: two units for the item, a delete and a put in the index.
        "reschedule": counted(lambda: client.update_item(
            TableName="jobs", Key=key("JOB#1"), UpdateExpression="SET next_check_at = :n",
            ExpressionAttributeValues={":n": {"N": "25"}})),
        # Refused: billed a unit of the item's size, nothing moves in the index.
        "refused": counted(lambda: _refused(lambda: client.update_item(
            TableName="jobs", Key=key("JOB#1"), UpdateExpression="REMOVE next_check_at",
            ConditionExpression="attribute_not_exists(pk)"))),
        # Strongly consistent read of 1.5 KB: one unit; eventually consistent: half.
        "get": counted(lambda: client.get_item(TableName="jobs", Key=key("JOB#1"), ConsistentRead=True)),
        "get_eventually": counted(lambda: client.get_item(TableName="jobs", Key=key("JOB#1"))),
    }

    aws.stop()
    print(json.dumps(figures))
    """
)


def test_units_are_counted_from_the_requests_as_sent() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["put"] == {"read": 0, "write": 2.0, "index_write": 1.0}
    assert figures["transaction"] == {"read": 0, "write": 4.0, "index_write": 0.0}
    assert figures["reschedule"] == {"read": 0, "write": 2.0, "index_write": 2.0}
    assert figures["refused"] == {"read": 0, "write": 2.0, "index_write": 0.0}
    assert figures["get"] == {"read": 1.0, "write": 0, "index_write": 0}
    assert figures["get_eventually"] == {"read": 0.5, "write": 0, "index_write": 0}
