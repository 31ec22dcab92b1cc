"""What `vidrelay local` prints while it serves: one readable line per job step, taken from the video events
themselves (a queue of the console's own, subscribed to the events topic as the webhook queue is), and the
functions' warnings and errors as one line each instead of Powertools JSON (which `--verbose` brings back)."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TextIO

log = logging.getLogger("vidrelay.local.console")

# Enough to remember the last step of every job of a local session, without growing for ever.
_REMEMBERED_JOBS = 2_000


def describe(event: dict[str, Any], previous: str | None) -> str:
    """`12:00:01  video_…  sora-2  queued → in_progress 40%`: the step, after the one seen before it."""
    video = event.get("data") or {}
    step = str(event.get("type", "")).removeprefix("video.")
    detail = ""
    if step == "in_progress":
        detail = f" {video.get('progress') or 0}%"
    elif step == "completed":
        output = video.get("output") or {}
        if output:
            detail = f" {output.get('width')}x{output.get('height')} {float(output.get('duration_s') or 0):.1f}s"
    elif step in ("failed", "canceled", "expired"):
        error = video.get("error") or {}
        if error:
            code = f"{error.get('code')}: " if error.get("code") != step else ""
            detail = f" {code}{error.get('message')}"
    arrow = f"{previous} → " if previous and previous != step else ""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.get("created_at") or time.time()))
    return f"{stamp}  {video.get('id')}  {video.get('model')}  {arrow}{step}{detail}"


class JobSteps(threading.Thread):
    """Reads the console's queue and hands one line per video event to `emit`."""

    def __init__(self, *, sqs: Any, sns: Any, topic_arn: str, emit: Callable[[str], None], stop: threading.Event):
        super().__init__(name="job-steps", daemon=True)
        self._sqs = sqs
        self._emit = emit
        self._halt = stop
        self._last: OrderedDict[str, str] = OrderedDict()
        self._queue_url = sqs.create_queue(QueueName=f"vidrelay-local-console-{int(time.time() * 1000)}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true"},
        )

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                ).get("Messages", [])
            except Exception:  # the embedded AWS stopping under us at shutdown
                if self._halt.is_set():
                    return
                self._halt.wait(0.5)
                continue
            for message in messages:
                self._show(message["Body"])
            if messages:
                self._sqs.delete_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                )

    def _show(self, body: str) -> None:
        try:
            event = json.loads(body)
            video_id = str(event["data"]["id"])
        except (ValueError, KeyError, TypeError):
            return  # not a video event: nothing to say about a job
        line = describe(event, self._last.get(video_id))
        self._last[video_id] = str(event.get("type", "")).removeprefix("video.")
        self._last.move_to_end(video_id)
        while len(self._last) > _REMEMBERED_JOBS:
            self._last.popitem(last=False)
        self._emit(line)


_STANDARD_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class OneLineFormatter(logging.Formatter):
    """`! poller: check failed (video_id=video_…): ValueError: …` — the message, its extra fields, the error."""

    def format(self, record: logging.LogRecord) -> str:
        extras = {
            k: v
            for k, v in vars(record).items()
            if k not in _STANDARD_RECORD_FIELDS and not k.startswith("_") and k not in ("xray_trace_id",)
        }
        fields = f" ({', '.join(f'{k}={v}' for k, v in extras.items())})" if extras else ""
        error = ""
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            error = f": {type(exc).__name__}: {' '.join(str(exc).split())} (--verbose for the traceback)"
        return f"! {record.levelname.lower()} {record.name}: {record.getMessage()}{fields}{error}"


def quiet_function_logs(stream: TextIO | None = None, *, logger_name: str = "vidrelay") -> None:
    """Mutes Powertools' JSON handler on the `vidrelay` logger and prints its warnings and errors as one line each.
    The handler stays registered (Powertools' `append_keys` and `inject_lambda_context` need it), it only stops
    writing."""
    root = logging.getLogger(logger_name)
    for handler in root.handlers:
        if not isinstance(handler, _OneLineHandler):
            handler.setLevel(logging.CRITICAL + 1)
    if not any(isinstance(h, _OneLineHandler) for h in root.handlers):
        readable = _OneLineHandler(stream or sys.stdout)
        readable.setLevel(logging.WARNING)
        readable.setFormatter(OneLineFormatter())
        root.addHandler(readable)


class _OneLineHandler(logging.StreamHandler[TextIO]):
    pass


class WholeLines:
    """Whole lines on a console that many threads write to. `vidrelay local` runs the functions as threads of
    one process, and `print` writes its text and its newline as two writes: another thread's text could land
    between them, glued to a Powertools JSON record (a metric, say) and breaking every tool that reads the console
    one record per line. Each thread's unfinished line stays its own; only finished lines go out, one at a time."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._pending = threading.local()

    def write(self, text: str) -> int:
        pending: str = getattr(self._pending, "text", "") + text
        cut = pending.rfind("\n") + 1
        self._pending.text = pending[cut:]
        if cut:
            with self._lock:
                self._stream.write(pending[:cut])
        return len(text)

    def flush(self) -> None:
        """Writes what the thread has finished; an unfinished line waits for its newline, unless it is all the
        thread has to say for now (a prompt such as "stopping…" written without one still shows)."""
        pending: str = getattr(self._pending, "text", "")
        with self._lock:
            if pending:
                self._pending.text = ""
                self._stream.write(pending)
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, isatty, buffer, …: the stream's own
        return getattr(self._stream, name)
