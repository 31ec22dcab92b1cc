"""The bench's call counter (bench/calls.py) against the local AWS endpoint, through boto3's real request path:
the request units it counts are the ones DynamoDB bills for what was sent. Run in a process of its own, because
the counter hooks boto3's default session for the life of the process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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


PROBE_APP = textwrap.dedent(
    """
    import concurrent.futures, time
    import boto3

    def spin():
        started = time.thread_time()
        while time.thread_time() - started < 0.2:
            pass
        return time.thread_time() - started

    def handler(event, context):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            spun = pool.submit(spin).result()
        time.sleep(1.0)  # a wait: wall time, no CPU
        boto3.client("dynamodb", endpoint_url=event["endpoint"], region_name="us-east-1",
                     aws_access_key_id="local", aws_secret_access_key="local").list_tables()
        return spun
    """
)

POOL_SCRIPT = textwrap.dedent(
    """
    import json, sys, threading, time
    from pathlib import Path
    import boto3
    from vidrelay.bench.calls import CallCounter
    from vidrelay.bench.pricing import lambda_seconds
    from vidrelay.local.aws import LocalAws
    from vidrelay.local.runtime import FunctionPool
    from vidrelay.local.template import FunctionSpec

    root = Path(sys.argv[1])
    (root / "probe").mkdir()
    (root / "probe" / "app.py").write_text(sys.argv[2])

    counter = CallCounter().install()
    aws = LocalAws().start()
    pool = FunctionPool(FunctionSpec("ProbeFunction", "probe/", "app.handler", 10, 256, {}, []), root,
                        containers=1, region="us-east-1")
    counter.instrument_pools({"ProbeFunction": pool})
    spun = []
    runs = [threading.Thread(target=lambda: spun.append(pool.invoke({"endpoint": aws.url}))) for _ in range(2)]
    started = time.monotonic()
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    elapsed = time.monotonic() - started
    aws.stop()
    usage = counter.snapshot()
    record = usage.invocations["ProbeFunction"]
    print(json.dumps({
        "spun": spun, "count": record.count, "durations": record.durations, "memory_mb": record.memory_mb,
        "elapsed": elapsed,
        "cpu": usage.cpu_seconds["ProbeFunction"], "aws": usage.aws_seconds[("ProbeFunction", "dynamodb")],
        "cloud_s": lambda_seconds(usage, "ProbeFunction"),
    }))
    """
)


def test_an_invocation_is_timed_from_its_container_and_its_cpu_counted_in_every_thread(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", POOL_SCRIPT, str(tmp_path), PROBE_APP],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["count"] == 2 and figures["memory_mb"] == 256
    # One container: the two ran one after the other, and the second's wait for the container is not in its
    # duration (counted in, the two durations would add up to about 1.5 times the time both took).
    assert all(seconds >= 1.2 for seconds in figures["durations"]), figures
    assert sum(figures["durations"]) <= figures["elapsed"] * 1.05, figures
    # The spin ran on a pool thread the handler started: its CPU is the function's; the 1 s sleeps are not CPU.
    assert sum(figures["spun"]) <= figures["cpu"] < sum(figures["spun"]) + 1.0, figures
    assert figures["aws"] > 0
    # Cloud time: the CPU at a 256 MB share of a vCPU, one DynamoDB answer and one billing step per invocation.
    assert figures["cloud_s"] == pytest.approx(figures["cpu"] * 1769 / 256 + 2 * 0.010 + 2 * 0.001)
