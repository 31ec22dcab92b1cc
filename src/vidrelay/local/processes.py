"""A function whose containers run as processes of their own (local/worker.py), for a function whose work is CPU
and would otherwise take the GIL from every other function of the local stack: in Lambda each function has CPU
of its own, and the thumbnailer's decode, run in-process, added ≈ 0.5 s to every webhook of a completed job.

As in Lambda, a container handles one event at a time; an invocation that outlives its timeout is stopped (the
container is replaced) and fails with Lambda's "Task timed out" message; a container that dies fails its
invocation with Runtime.ExitError and is replaced."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .runtime import Scope, handler_source
from .template import FunctionSpec

READY_TIMEOUT_S = 60.0


class RemoteError(Exception):
    """An invocation's error as Lambda reports it: its type (the exception's class, or Runtime.*), message, trace."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.trace = trace or []

    def __str__(self) -> str:
        return f"{self.error_type}: {self.args[0]}"


class _Exited(Exception):
    """The worker's process ended (or its pipe broke) before it answered."""


class _Worker:
    def __init__(self, config: dict[str, Any]) -> None:
        requests_r, self._requests = os.pipe()
        self._answers, answers_w = os.pipe()
        config = {**config, "requests_fd": requests_r, "answers_fd": answers_w}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vidrelay.local.worker", json.dumps(config)],
            pass_fds=(requests_r, answers_w),
            close_fds=True,
        )
        os.close(requests_r)
        os.close(answers_w)
        self._buffer = b""
        self._released = False

    def wait_ready(self, timeout_s: float) -> None:
        try:
            answer = self._read(timeout_s)
        except _Exited:
            answer = None
        if answer is None or "ready" not in answer:
            self.release()
            raise RuntimeError(f"a worker process did not start (exit code {self.process.poll()})")

    def call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any] | None:
        """The answer, or None when the worker did not answer in time; _Exited when it died first."""
        try:
            os.write(self._requests, json.dumps(request).encode() + b"\n")
        except BrokenPipeError as exc:
            raise _Exited() from exc
        return self._read(timeout_s)

    def _read(self, timeout_s: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._answers], [], [], left)[0]:
                return None
            chunk = os.read(self._answers, 1 << 16)
            if not chunk:
                raise _Exited()
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Stops the process; safe from any thread, any number of times. A call waiting on it then sees EOF."""
        if self.alive():
            self.process.kill()
        self.process.wait()

    def release(self) -> None:
        """Stops the process and closes its pipes. Only the worker's holder calls it (the invocation that took it
        from the pool, or close() for an idle one), once: a pipe closed under a call still reading it would let
        that call read whatever file reuses the descriptor's number."""
        self.kill()
        if not self._released:
            self._released = True
            os.close(self._requests)
            os.close(self._answers)


class ProcessPool:
    """The pool of a function whose containers are processes; the same face as runtime.FunctionPool."""

    def __init__(self, spec: FunctionSpec, root: Path, *, containers: int, region: str, quiet: bool = True) -> None:
        self.spec = spec
        self.region = region
        source, handler = handler_source(spec, root)
        self._config: dict[str, Any] = {
            "source": str(source),
            "handler": handler,
            "function_name": spec.logical_id,
            "memory_mb": spec.memory_mb,
            "function_arn": f"arn:aws:lambda:{region}:123456789012:function:{spec.logical_id}",
            "quiet": quiet,
        }
        self._containers = containers
        self._sink: Callable[[dict[str, Any]], None] | None = None
        self._scope: Scope = contextlib.nullcontext
        self._lock = threading.Lock()
        self._all: list[_Worker] = []
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._closed = False
        for worker in self._start(containers):
            self._idle.put(worker)

    def _start(self, n: int) -> list[_Worker]:
        config = {**self._config, "count_calls": self._sink is not None}
        workers = [_Worker(config) for _ in range(n)]  # started side by side, then waited for
        with self._lock:
            self._all.extend(workers)
        try:
            for worker in workers:
                worker.wait_ready(READY_TIMEOUT_S)
        except RuntimeError:
            for worker in workers:
                self._retire(worker)
            raise
        return workers

    def count_calls(self, sink: Callable[[dict[str, Any]], None]) -> None:
        """From now on each invocation's AWS calls (counted in its worker) are handed to `sink` (the bench's
        CallCounter.merge). Idle workers are replaced by counting ones; call it before invoking."""
        self._sink = sink
        old = [self._idle.get() for _ in range(self._containers)]
        for worker in old:
            self._retire(worker)
        for worker in self._start(self._containers):
            self._idle.put(worker)

    def measure_invocations(self, scope: Scope) -> None:
        self._scope = scope

    def invoke(self, event: dict[str, Any], *, timeout_s: float | None = None) -> Any:
        timeout = timeout_s if timeout_s is not None else float(self.spec.timeout_s)
        worker = self._idle.get()
        request_id = str(uuid.uuid4())
        try:
            with self._scope():
                answer = worker.call(
                    {"event": event, "request_id": request_id, "deadline": time.time() + timeout}, timeout + 1.0
                )
        except _Exited:
            self._replace(worker)
            raise RemoteError(
                "Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited without answering"
            ) from None
        except BaseException:
            self._replace(worker)
            raise
        if answer is None:
            self._replace(worker)
            raise TimeoutError(f"{request_id} Task timed out after {timeout:.2f} seconds")
        self._give_back(worker)
        if self._sink is not None and "calls" in answer:
            self._sink(answer["calls"])
        if "error" in answer:
            error = answer["error"]
            raise RemoteError(str(error["type"]), str(error["message"]), list(error.get("trace", [])))
        return answer.get("result")

    def _replace(self, worker: _Worker) -> None:
        self._retire(worker)
        if self._closed:
            return
        try:
            (fresh,) = self._start(1)
        except RuntimeError:
            return  # the stack is stopping (or the machine is out of processes): the next invoke waits
        self._give_back(fresh)

    def _give_back(self, worker: _Worker) -> None:
        """Back to the idle workers, unless the pool was closed meanwhile (it would then outlive the stack)."""
        if self._closed:
            self._retire(worker)
        else:
            self._idle.put(worker)

    def _retire(self, worker: _Worker) -> None:
        worker.release()
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)

    def close(self) -> None:
        """Stops every worker: idle ones are released here; a busy one is killed, and the invocation waiting on
        it sees EOF and releases it (it fails with Runtime.ExitError, as in a container that is shut down)."""
        self._closed = True
        with self._lock:
            busy = list(self._all)
            self._all.clear()
        while True:
            try:
                idle = self._idle.get_nowait()
            except queue.Empty:
                break
            if idle in busy:  # else started after the snapshot: not in `busy`, released all the same
                busy.remove(idle)
            idle.release()
        for worker in busy:
            worker.kill()
