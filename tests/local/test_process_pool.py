"""Containers in processes of their own (local/processes.py), as Lambda runs them: one event at a time per
container, module state kept between invocations, errors reported with Lambda's types, an invocation past its
timeout stopped with Lambda's message, and a dead container replaced. The AWS calls a worker makes are counted
by the stack's counter when the bench asks."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vidrelay.bench.calls import CallCounter
from vidrelay.local.processes import ProcessPool, RemoteError
from vidrelay.local.router import on_failure_record
from vidrelay.local.template import FunctionSpec

HANDLER = textwrap.dedent(
    """
    import os
    import time

    CALLS = []  # module state: one list per container, kept between invocations

    def handler(event, context):
        CALLS.append(event.get("do"))
        if event["do"] == "echo":
            return {"pid": os.getpid(), "calls": len(CALLS), "left_ms": context.get_remaining_time_in_millis(),
                    "name": context.function_name, "event": event}
        if event["do"] == "raise":
            raise ValueError("the probe refused")
        if event["do"] == "sleep":
            time.sleep(float(event["seconds"]))
            return {"slept": True}
        if event["do"] == "exit":
            os._exit(3)
        if event["do"] == "object":
            return {"not json": object()}
        if event["do"] == "spin":  # CPU on a pool thread of the handler's
            import concurrent.futures

            def spin():
                started = time.thread_time()
                while time.thread_time() - started < float(event["seconds"]):
                    pass

            with concurrent.futures.ThreadPoolExecutor(1) as threads:
                threads.submit(spin).result()
            return {"spun": True}
        if event["do"] == "dynamodb":
            import boto3
            client = boto3.client("dynamodb", endpoint_url=event["endpoint"], region_name="us-east-1",
                                  aws_access_key_id="local", aws_secret_access_key="local")
            client.put_item(TableName=event["table"], Item={"pk": {"S": "P#1"}, "sk": {"S": "S"}})
            return {"written": True}
    """
)


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[ProcessPool]:
    (tmp_path / "functions" / "probe").mkdir(parents=True)
    (tmp_path / "functions" / "probe" / "app.py").write_text(HANDLER)
    spec = FunctionSpec("ProbeFunction", "functions/probe/", "app.handler", 5, 256, {}, [])
    made = ProcessPool(spec, tmp_path, containers=1, region="us-east-1")
    try:
        yield made
    finally:
        made.close()


def test_an_invocation_runs_in_the_worker_with_lambda_s_context(pool: ProcessPool) -> None:
    first = pool.invoke({"do": "echo", "n": 1})
    second = pool.invoke({"do": "echo", "n": 2})
    assert first["pid"] != os.getpid() and second["pid"] == first["pid"]
    assert (first["calls"], second["calls"]) == (1, 2)  # the container's module state lives on
    assert first["name"] == "ProbeFunction" and 0 < first["left_ms"] <= 5000
    assert second["event"] == {"do": "echo", "n": 2}


def test_a_handler_error_keeps_its_type_and_message(pool: ProcessPool) -> None:
    with pytest.raises(RemoteError) as raised:
        pool.invoke({"do": "raise"})
    assert raised.value.error_type == "ValueError"
    assert str(raised.value) == "ValueError: the probe refused"
    assert any("the probe refused" in line for line in raised.value.trace)
    # Lambda's on-failure record names the handler's error, not the pool's.
    record = on_failure_record({"Records": []}, pool, attempt=3, error=raised.value)
    assert record["responsePayload"] == {"errorMessage": "the probe refused", "errorType": "ValueError"}
    assert pool.invoke({"do": "echo"})["calls"] == 2  # the same container goes on


def test_an_answer_that_is_not_json_is_lambda_s_marshal_error(pool: ProcessPool) -> None:
    with pytest.raises(RemoteError) as raised:
        pool.invoke({"do": "object"})
    assert raised.value.error_type == "Runtime.MarshalError"


def test_an_invocation_past_its_timeout_is_stopped_and_the_container_replaced(pool: ProcessPool) -> None:
    before = pool.invoke({"do": "echo"})["pid"]
    with pytest.raises(TimeoutError, match=r"Task timed out after 1.00 seconds"):
        pool.invoke({"do": "sleep", "seconds": 30}, timeout_s=1.0)
    after = pool.invoke({"do": "echo"})
    assert after["pid"] != before and after["calls"] == 1  # a fresh container


def test_a_container_that_dies_fails_its_invocation_and_is_replaced(pool: ProcessPool) -> None:
    before = pool.invoke({"do": "echo"})["pid"]
    with pytest.raises(RemoteError) as raised:
        pool.invoke({"do": "exit"})
    assert raised.value.error_type == "Runtime.ExitError"
    assert pool.invoke({"do": "echo"})["pid"] != before


def test_a_worker_s_aws_calls_reach_the_stack_s_counter(pool: ProcessPool) -> None:
    import boto3

    from vidrelay.local.aws import LocalAws

    aws = LocalAws().start()
    try:
        boto3.client(
            "dynamodb",
            endpoint_url=aws.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        ).create_table(
            TableName="probe",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
        handed: list[dict[str, Any]] = []
        pool.count_calls(handed.append)
        assert pool.invoke({"do": "dynamodb", "endpoint": aws.url, "table": "probe"}) == {"written": True}
    finally:
        aws.stop()
    (calls,) = handed
    assert calls["requests"] == [["ProbeFunction", "dynamodb", "PutItem", 1]]
    # The write itself is handed over as sent, to be priced where every function's writes are known.
    ((who, operation, params, applied),) = calls["writes"]
    assert (who, operation, applied) == ("ProbeFunction", "PutItem", True)
    assert params["Item"] == {"pk": {"S": "P#1"}, "sk": {"S": "S"}}
    # The worker's CPU time and its wait on each AWS service travel with its calls.
    ((who, cpu),) = calls["cpu_seconds"]
    assert who == "ProbeFunction" and cpu > 0
    ((who, service, waited),) = calls["aws_seconds"]
    assert (who, service) == ("ProbeFunction", "dynamodb") and waited > 0
    counter = CallCounter()
    counter.merge(calls)
    assert counter.requests[("ProbeFunction", "dynamodb", "PutItem")] == 1
    assert counter.units[("ProbeFunction", "write")] == 1.0
    assert counter.cpu_seconds["ProbeFunction"] == cpu
    assert counter.aws_seconds[("ProbeFunction", "dynamodb")] == waited


def test_a_worker_s_cpu_time_counts_its_pool_threads_once(pool: ProcessPool) -> None:
    handed: list[dict[str, Any]] = []
    pool.count_calls(handed.append)
    assert pool.invoke({"do": "spin", "seconds": 0.3}) == {"spun": True}
    (calls,) = handed
    ((who, cpu),) = calls["cpu_seconds"]
    # The process's CPU time holds the pool thread's 0.3 s; its own tally of that thread is not added again.
    assert who == "ProbeFunction" and 0.3 <= cpu < 0.55, cpu


def test_closing_the_pool_under_a_running_invocation_fails_it_and_leaves_no_process(tmp_path: Path) -> None:
    import threading
    import time

    (tmp_path / "functions" / "probe").mkdir(parents=True)
    (tmp_path / "functions" / "probe" / "app.py").write_text(HANDLER)
    spec = FunctionSpec("ProbeFunction", "functions/probe/", "app.handler", 30, 256, {}, [])
    pool = ProcessPool(spec, tmp_path, containers=2, region="us-east-1")
    workers = list(pool._all)
    outcome: list[BaseException | object] = []

    def busy() -> None:
        try:
            outcome.append(pool.invoke({"do": "sleep", "seconds": 20}))
        except BaseException as exc:  # the test reads what the invocation ended with
            outcome.append(exc)

    thread = threading.Thread(target=busy)
    thread.start()
    time.sleep(0.5)  # the sleep is running in one worker; the other is idle
    started = time.monotonic()
    pool.close()
    thread.join(timeout=10)
    assert not thread.is_alive() and time.monotonic() - started < 5
    # The invocation that was running fails as one in a container that was shut down...
    (error,) = outcome
    assert isinstance(error, RemoteError) and error.error_type == "Runtime.ExitError"
    # ...and neither container outlives the pool (nor is a fresh one started for the failed invocation).
    assert len(workers) == 2 and not [worker for worker in workers if worker.process.poll() is None]
    assert pool._all == [] and pool._idle.empty()
