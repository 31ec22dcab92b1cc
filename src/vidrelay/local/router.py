"""The event router: does what AWS does between resources and functions, which moto does not — feeds SQS
messages to their functions in the SQS event shape (deleting what succeeded, leaving failures to come back),
delivers SNS notifications to subscribed functions as Lambda's asynchronous invocations, and runs scheduled
functions."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from .runtime import Pool
from .template import AsyncInvokeSpec

log = logging.getLogger("vidrelay.local.router")


class SqsPoller(threading.Thread):
    def __init__(
        self,
        pool: Pool,
        *,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        batch_size: int,
        report_failures: bool,
        stop: threading.Event,
        name: str,
        duplicate_rate: float = 0.0,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._pool = pool
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._batch_size = batch_size
        self._report_failures = report_failures
        self._halt = stop
        # SQS delivers at least once: `duplicate_rate` of the messages are delivered a second time (the chaos run's
        # --duplicate-deliveries), half of them to another container at the same moment, half again after the
        # first delivery succeeded, so every consumer is exercised against both kinds of duplicate.
        self._duplicate_rate = duplicate_rate
        self._rng = random.Random()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=min(self._batch_size, 10),
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:  # moto stopping under us at shutdown
                if self._halt.is_set():
                    return
                log.exception("receive failed")
                time.sleep(0.5)
                continue
            if messages:
                self._dispatch(messages)

    def _dispatch(self, messages: list[dict[str, Any]]) -> None:
        twins = [m for m in messages if self._duplicate_rate and self._rng.random() < self._duplicate_rate]
        concurrent = [m for m in twins if self._rng.random() < 0.5]
        again = {m["MessageId"] for m in twins if m not in concurrent}
        if concurrent:
            threading.Thread(target=self._twin, args=(concurrent,), daemon=True, name=f"{self.name}-twin").start()
        event = {"Records": [self._record(m) for m in messages]}
        failed: set[str] = set()
        try:
            result = self._pool.invoke(event) or {}
            if self._report_failures:
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception:
            log.exception(
                "%s failed on a batch; its messages come back after their visibility timeout",
                self._pool.spec.logical_id,
            )
            return
        done = [m for m in messages if m["MessageId"] not in failed]
        for message in [m for m in done if m["MessageId"] in again]:
            # Not deleted but made visible again: received and handled a second time, as SQS may.
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            except Exception:  # the message is already gone (its concurrent twin deleted it): nothing to repeat
                log.debug("could not make a message visible again", exc_info=True)
        done = [m for m in done if m["MessageId"] not in again]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )

    def _twin(self, messages: list[dict[str, Any]]) -> None:
        """The same messages handled by another container while the first handles them; what it leaves undone
        (its failures) is the first delivery's to report."""
        try:
            self._pool.invoke({"Records": [self._record(m) for m in messages]})
        except Exception:
            log.exception("%s failed on a duplicated batch", self._pool.spec.logical_id)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {k: str(v) for k, v in message.get("Attributes", {}).items()}
        message_attributes = {
            k: {
                "stringValue": v.get("StringValue"),
                "binaryValue": v.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": v.get("DataType"),
            }
            for k, v in message.get("MessageAttributes", {}).items()
        }
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._pool.region,
        }


# Lambda retries a failed asynchronous invocation after about one minute, then two; locally a second, then two.
LOCAL_ASYNC_RETRY_DELAYS_S = (1.0, 2.0)


class SnsSubscriber(threading.Thread):
    """An SNS subscription of a function, as AWS runs it: the topic passes on what matches the subscription's
    filter policy, and Lambda invokes the function asynchronously, trying a failed invocation `max_retries` more
    times before it sends Lambda's on-failure record (the event included) to the destination queue.

    Locally the topic delivers to a queue of the local stack's own, subscribed with the template's filter policy
    (moto evaluates it, as SNS would), and this thread invokes the function from there: nothing published while
    the function is busy is lost, and a retry is the message becoming visible again after the retry delay."""

    def __init__(
        self,
        pool: Pool,
        *,
        sqs: Any,
        queue_url: str,
        subscription_arn: str,
        async_invoke: AsyncInvokeSpec,
        failure_queue_url: str | None,
        stop: threading.Event,
        name: str,
        retry_delays_s: Sequence[float] = LOCAL_ASYNC_RETRY_DELAYS_S,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._pool = pool
        self._sqs = sqs
        self._queue_url = queue_url
        self._subscription_arn = subscription_arn
        self._async = async_invoke
        self._failure_queue_url = failure_queue_url
        self._retry_delays_s = tuple(retry_delays_s) or (0.0,)
        self._halt = stop

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=1,
                    WaitTimeSeconds=1,
                    AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                ).get("Messages", [])
            except Exception:  # moto stopping under us at shutdown
                if self._halt.is_set():
                    return
                log.exception("receive failed")
                time.sleep(0.5)
                continue
            for message in messages:
                self.deliver(message)

    def deliver(self, message: dict[str, Any]) -> None:
        """Invokes the function with one notification; on failure, schedules the next try or gives up."""
        notification = json.loads(message["Body"])
        event = {"Records": [sns_record(notification, self._subscription_arn)]}
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        sent_at = int(message.get("Attributes", {}).get("SentTimestamp", time.time() * 1000)) / 1000
        try:
            self._pool.invoke(event)
        except Exception as exc:
            too_old = time.time() - sent_at >= self._async.max_event_age_s
            if attempt <= self._async.max_retries and not too_old:
                delay = self._retry_delays_s[min(attempt - 1, len(self._retry_delays_s) - 1)]
                log.warning(
                    "%s failed on an SNS event (try %d of %d); tried again in %.0f s: %s",
                    self._pool.spec.logical_id,
                    attempt,
                    self._async.max_retries + 1,
                    delay,
                    exc,
                )
                self._sqs.change_message_visibility(
                    QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=int(delay)
                )
                return
            log.error("%s failed on an SNS event %d times; giving up: %s", self._pool.spec.logical_id, attempt, exc)
            if self._failure_queue_url:
                record = on_failure_record(event, self._pool, attempt=attempt, error=exc)
                self._sqs.send_message(QueueUrl=self._failure_queue_url, MessageBody=json.dumps(record))
        self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])


def sns_record(notification: dict[str, Any], subscription_arn: str) -> dict[str, Any]:
    """Lambda's SNS event record, from the notification as SNS delivers it to a queue (not raw)."""
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn,
        "Sns": {
            "Type": notification.get("Type", "Notification"),
            "MessageId": notification["MessageId"],
            "TopicArn": notification["TopicArn"],
            "Subject": notification.get("Subject"),
            "Message": notification["Message"],
            "Timestamp": notification.get("Timestamp"),
            "SignatureVersion": notification.get("SignatureVersion", "1"),
            "Signature": notification.get("Signature", ""),
            "SigningCertUrl": notification.get("SigningCertURL", ""),
            "UnsubscribeUrl": notification.get("UnsubscribeURL", ""),
            "MessageAttributes": notification.get("MessageAttributes", {}),
        },
    }


def on_failure_record(event: dict[str, Any], pool: Pool, *, attempt: int, error: Exception) -> dict[str, Any]:
    """What Lambda sends an SQS on-failure destination after the last try of an asynchronous invocation."""
    return {
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"arn:aws:lambda:{pool.region}:123456789012:function:{pool.spec.logical_id}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempt,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        # A process container's error carries the type Lambda reports (its class, or Runtime.ExitError...).
        "responsePayload": {
            "errorMessage": str(error.args[0]) if error.args else str(error),
            "errorType": getattr(error, "error_type", type(error).__name__),
        },
    }


class Scheduler(threading.Thread):
    """Invokes a scheduled function back to back. Each invocation gets `budget_s` of remaining time beyond the
    function's own safety margin, so stopping the stack waits at most about one budget."""

    def __init__(
        self,
        pool: Pool,
        *,
        rule_name: str,
        rule_arn: str,
        budget_s: float,
        stop: threading.Event,
        idle_pause_s: float = 0.1,
    ) -> None:
        super().__init__(name=f"schedule-{rule_name}", daemon=True)
        self._pool = pool
        self._rule_arn = rule_arn
        self._budget_s = budget_s
        self._idle_pause_s = idle_pause_s
        self._halt = stop

    def run(self) -> None:
        while not self._halt.is_set():
            event = {
                "version": "0",
                "id": hashlib.sha1(str(time.time()).encode()).hexdigest(),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": "123456789012",
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "region": self._pool.region,
                "resources": [self._rule_arn],
                "detail": {},
            }
            started = time.time()
            try:
                self._pool.invoke(event, timeout_s=self._budget_s + 15.0)
            except Exception:
                log.exception("scheduled %s failed", self._pool.spec.logical_id)
                self._halt.wait(1.0)
            # The cloud fires once a minute and a poller with nothing due returns at once; locally the next run
            # follows after a short pause instead, so a new job is seen within a local poll interval.
            if time.time() - started < self._idle_pause_s:
                self._halt.wait(self._idle_pause_s)
