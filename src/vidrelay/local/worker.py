"""One Lambda container of the local stack in a process of its own (`python -m vidrelay.local.worker <config>`):
loads the function's handler once, then takes one event at a time from the pool (local/processes.py).

The pool and the worker speak JSON lines over two pipes of their own, so whatever the handler prints to stdout or
stderr reaches the terminal as it would reach CloudWatch, and never the protocol. Each request is
{"event", "request_id", "deadline"}; each answer is {"result"} or {"error": {"type", "message", "trace"}}, with the
AWS calls the invocation made ({"calls"}) when the pool counts them for the bench."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

# The invocation's function, as the bench's counter attributes calls (a standard-library-only module).
from vidrelay.bench.calls import CURRENT_FUNCTION

from .runtime import LambdaContext, load_module


def main(argv: list[str]) -> int:
    config: dict[str, Any] = json.loads(argv[0])
    # Ctrl-C reaches the whole process group: the stack stops its workers itself (their pipes close, or a kill).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # As in the stack's own process: metrics are disabled locally, and Powertools warns on every flush.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    requests = os.fdopen(int(config["requests_fd"]), "rb")
    answers = os.fdopen(int(config["answers_fd"]), "wb")
    counter = None
    if config.get("count_calls"):
        from vidrelay.bench.calls import CallCounter

        # Before the handler makes its first client (clients copy their session's hooks). Writes are priced by
        # the pool's counter, which knows the items the other functions wrote.
        counter = CallCounter(defer_writes=True).install()
    handler = getattr(load_module(Path(config["source"])), config["handler"])
    if config.get("quiet"):
        from .console import quiet_function_logs

        quiet_function_logs()
    _send(answers, {"ready": os.getpid()})
    for line in requests:
        request = json.loads(line)
        _send(answers, _invoke(handler, request, config, counter))
    return 0


def _invoke(handler: Any, request: dict[str, Any], config: dict[str, Any], counter: Any) -> dict[str, Any]:
    context = LambdaContext(
        function_name=config["function_name"],
        memory_limit_in_mb=int(config["memory_mb"]),
        invoked_function_arn=config["function_arn"],
        aws_request_id=request["request_id"],
        deadline=float(request["deadline"]),
    )
    token = CURRENT_FUNCTION.set(config["function_name"])
    cpu_started = time.process_time()  # every thread of this worker works for this one invocation
    try:
        result = handler(request["event"], context)
    except Exception as exc:  # what Lambda reports as the invocation's error
        answer = _error(type(exc).__name__, exc)
    else:
        try:
            json.dumps(result)
            answer = {"result": result}
        except (TypeError, ValueError) as exc:  # Lambda cannot serialise what the handler returned
            answer = _error("Runtime.MarshalError", exc)
    finally:
        CURRENT_FUNCTION.reset(token)
    if counter is not None:
        counter.set_process_cpu(config["function_name"], time.process_time() - cpu_started)
        answer["calls"] = counter.export()
        counter.reset()
    return answer


def _error(kind: str, exc: BaseException) -> dict[str, Any]:
    return {"error": {"type": kind, "message": str(exc), "trace": traceback.format_exception(exc)}}


def _send(stream: Any, message: dict[str, Any]) -> None:
    stream.write(json.dumps(message, default=str).encode() + b"\n")
    stream.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
