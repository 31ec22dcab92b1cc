"""The local stack's AWS endpoint takes DynamoDB requests one at a time, and nothing else waits for them."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from vidrelay.local.aws import LocalAws

REGION = "us-east-1"


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    server = LocalAws().start()
    try:
        yield server
    finally:
        server.stop()


def client(aws: LocalAws, service: str, *, read_timeout: float = 10) -> Any:
    config = Config(
        retries={"total_max_attempts": 1},
        read_timeout=read_timeout,
        s3={"addressing_style": "path"},
    )
    return boto3.client(
        service,
        endpoint_url=aws.url,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=config,
    )


def half_sent(aws: LocalAws, head: str, body: bytes) -> socket.socket:
    """A request whose headers promise `body` but only its first half has arrived (a slow client)."""
    sock = socket.create_connection(("127.0.0.1", aws.port))
    sock.sendall(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[: len(body) // 2])
    return sock


def finish(sock: socket.socket, body: bytes) -> int:
    sock.sendall(body[len(body) // 2 :])
    status = int(sock.recv(4096).split(b" ", 2)[1])
    sock.close()
    return status


def timed(call: Any) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def test_a_slow_dynamodb_request_does_not_hold_up_the_others(aws: LocalAws) -> None:
    # Given a DynamoDB request whose body is still arriving
    body = b'{"Limit": 10}' + b" " * 4000
    head = (
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.0\r\n"
        "X-Amz-Target: DynamoDB_20120810.ListTables\r\n"
        "Authorization: AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=host, Signature=0\r\n"
    )
    slow = half_sent(aws, head, body)
    try:
        time.sleep(0.2)
        # When another DynamoDB request comes in meanwhile
        elapsed = timed(lambda: client(aws, "dynamodb", read_timeout=3).list_tables())
    finally:
        status = finish(slow, body)
    # Then it is answered at once, and so is the slow one once its body is in
    assert elapsed < 2
    assert status == 200


def test_s3_and_sqs_do_not_wait_for_dynamodb(aws: LocalAws) -> None:
    # Given a DynamoDB request in progress (holding the endpoint's DynamoDB lock)
    assert aws.serial_dynamodb is not None
    s3, sqs = client(aws, "s3"), client(aws, "sqs")
    s3.create_bucket(Bucket="concurrent")
    done = threading.Event()
    with aws.serial_dynamodb.lock:
        blocked = threading.Thread(target=lambda: (client(aws, "dynamodb").list_tables(), done.set()))
        blocked.start()
        # When S3 and SQS requests come in meanwhile
        s3.put_object(Bucket="concurrent", Key="video.mp4", Body=b"\0" * (1 << 20))
        queue_url = sqs.create_queue(QueueName="concurrent")["QueueUrl"]
        sqs.send_message(QueueUrl=queue_url, MessageBody="hello")
        # Then they are answered, while the next DynamoDB request waits its turn
        assert s3.head_object(Bucket="concurrent", Key="video.mp4")["ContentLength"] == 1 << 20
        assert not done.wait(0.5)
    blocked.join(timeout=10)
    assert done.is_set()
