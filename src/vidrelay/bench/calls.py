"""Counts every AWS request the local stack makes, per function and per service/operation, from botocore's own
event hooks (one `before-send` per HTTP attempt, as AWS bills them), every function invocation with its
duration (Lambda's GB-seconds) and CPU time, and how long each function waited for the emulated AWS to answer
(pricing.py prices the CPU time and the cloud's answer times instead of moto's). Nothing is guessed: a figure
priced from these counts is what a run did."""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .units import WriteUnits, read_units

CURRENT_FUNCTION: contextvars.ContextVar[str | None] = contextvars.ContextVar("bench_function", default=None)
EMPTY_RECEIVE = "ReceiveMessage(empty)"
DYNAMODB_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def caller() -> str:
    """The function on whose behalf a request is made: the invocation's context (carried into its worker threads);
    the event router's SQS pollers (what Lambda's event source mappings do); else the bench itself."""
    function = CURRENT_FUNCTION.get()
    if function is not None:
        return function
    name = threading.current_thread().name
    return f"event_source_mapping:{name.split('-')[1]}" if name.startswith("sqs-") else "bench"


@dataclass
class Invocation:
    count: int = 0
    seconds: float = 0.0
    gb_seconds: float = 0.0
    durations: list[float] = field(default_factory=list)
    memory_mb: int = 0


class CallCounter:
    """Installed once per process before any client is made (clients copy their session's hooks)."""

    def __init__(self, *, defer_writes: bool = False) -> None:
        self._lock = threading.Lock()
        # In a function's worker process (local/worker.py) writes are kept as sent, to be priced by the stack's
        # counter, which knows the items every function wrote.
        self._defer_writes = defer_writes
        self.deferred_writes: list[tuple[str, str, dict[str, Any], bool]] = []
        self.requests: Counter[tuple[str, str, str]] = Counter()  # (caller, service, operation) → HTTP attempts
        self.units: defaultdict[tuple[str, str], float] = defaultdict(
            float
        )  # (caller, "read"|"write"|"index_write") → DynamoDB request units
        self.items_read: Counter[str] = Counter()  # caller → DynamoDB items returned
        # (caller, service) → seconds from each API call's start to its answer (its retries included)
        self.aws_seconds: defaultdict[tuple[str, str], float] = defaultdict(float)
        # caller → CPU seconds of its invocations' threads (and of the pool threads they hand work to)
        self.cpu_seconds: defaultdict[str, float] = defaultdict(float)
        self.write_units = WriteUnits()
        self.invocations: dict[str, Invocation] = {}
        self._installed = False

    def install(self) -> CallCounter:
        import boto3

        if self._installed:
            return self
        boto3.setup_default_session()
        events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
        events.register("before-send", self._on_send)
        events.register("before-call", self._on_call)
        events.register("after-call", self._on_answer)
        events.register("after-call-error", self._on_answer)
        # The request's parameters as the caller gave them: by before-call they are the serialised HTTP body.
        events.register("before-parameter-build.dynamodb", self._keep_params)
        events.register("after-call.dynamodb", self._on_dynamodb)
        events.register("after-call.sqs.ReceiveMessage", self._on_receive)
        _carry_context_into_threads(self)
        self._installed = True
        return self

    def reset(self) -> None:
        # The items the run wrote stay known (write_units): a write after a reset is priced against them.
        with self._lock:
            self.requests.clear()
            self.units.clear()
            self.items_read.clear()
            self.aws_seconds.clear()
            self.cpu_seconds.clear()
            self.invocations.clear()
            self.deferred_writes.clear()

    def _on_send(self, event_name: str, **_: Any) -> None:
        # before-send.<service-id>.<Operation>
        _hook, service, operation = event_name.split(".", 2)
        with self._lock:
            self.requests[(caller(), service, operation)] += 1

    def add_cpu(self, who: str, seconds: float) -> None:
        with self._lock:
            self.cpu_seconds[who] += seconds

    def set_process_cpu(self, who: str, seconds: float) -> None:
        """A worker process runs one invocation at a time: its process CPU time (every thread, FFmpeg's native
        ones too) is that invocation's whole CPU, in place of what its pool threads added on their own."""
        with self._lock:
            self.cpu_seconds[who] = seconds

    @staticmethod
    def _on_call(context: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.perf_counter()

    def _on_answer(self, event_name: str, context: dict[str, Any], **_: Any) -> None:
        # after-call.<service-id>.<Operation>, or after-call-error when no answer came
        started = context.pop("bench_started", None)
        if started is None:
            return
        service = event_name.split(".", 2)[1]
        with self._lock:
            self.aws_seconds[(caller(), service)] += time.perf_counter() - started

    def _on_receive(self, parsed: dict[str, Any], **_: Any) -> None:
        # An empty receive is the polling floor (priced apart from the work a job causes).
        if not parsed.get("Messages"):
            with self._lock:
                self.requests[(caller(), "sqs", "ReceiveMessage")] -= 1
                self.requests[(caller(), "sqs", EMPTY_RECEIVE)] += 1

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        # after-call is not given the request; its context is the same dict.
        context["bench_params"] = params

    def _on_dynamodb(self, event_name: str, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        params: dict[str, Any] = context.get("bench_params", {})
        operation = event_name.rsplit(".", 1)[-1]
        who = caller()
        if operation in DYNAMODB_WRITES:
            self._charge_write(who, operation, params, applied="Error" not in parsed)
            return
        if operation not in DYNAMODB_READS:
            return
        units = read_units(operation, params, parsed)
        returned = len(parsed.get("Items", [])) + sum(len(v) for v in parsed.get("Responses", {}).values())
        returned += 1 if parsed.get("Item") else 0
        with self._lock:
            self.units[(who, "read")] += units
            self.items_read[who] += returned

    def _charge_write(self, who: str, operation: str, params: dict[str, Any], *, applied: bool) -> None:
        if self._defer_writes:
            with self._lock:
                self.deferred_writes.append((who, operation, params, applied))
            return
        # A refused write is billed too, but changes nothing the next write is priced against.
        table_units, index_units = self.write_units.charge(operation, params, applied=applied)
        with self._lock:
            self.units[(who, "write")] += table_units
            self.units[(who, "index_write")] += index_units

    def export(self) -> dict[str, Any]:
        """What was counted, as JSON (a worker process hands it to the stack's counter: merge)."""
        with self._lock:
            return {
                "requests": [[*key, n] for key, n in self.requests.items()],
                "units": [[*key, v] for key, v in self.units.items()],
                "items_read": [[who, n] for who, n in self.items_read.items()],
                "aws_seconds": [[*key, v] for key, v in self.aws_seconds.items()],
                "cpu_seconds": [[who, v] for who, v in self.cpu_seconds.items()],
                "writes": [list(write) for write in self.deferred_writes],
            }

    def merge(self, exported: dict[str, Any]) -> None:
        """Adds what another process counted (export); its writes are priced here."""
        with self._lock:
            for who, service, operation, n in exported.get("requests", []):
                self.requests[(who, service, operation)] += int(n)
            for who, kind, v in exported.get("units", []):
                self.units[(who, kind)] += float(v)
            for who, n in exported.get("items_read", []):
                self.items_read[who] += int(n)
            for who, service, v in exported.get("aws_seconds", []):
                self.aws_seconds[(who, service)] += float(v)
            for who, v in exported.get("cpu_seconds", []):
                self.cpu_seconds[who] += float(v)
        for who, operation, params, applied in exported.get("writes", []):
            self._charge_write(who, operation, params, applied=bool(applied))

    def invocation_count(self, function: str) -> int:
        """How many invocations of `function` have finished since the last reset."""
        with self._lock:
            record = self.invocations.get(function)
            return record.count if record else 0

    @contextmanager
    def invocation(self, function: str, memory_mb: int) -> Iterator[None]:
        token = CURRENT_FUNCTION.set(function)
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            self.add_cpu(function, time.thread_time() - cpu_started)
            CURRENT_FUNCTION.reset(token)
            with self._lock:
                record = self.invocations.setdefault(function, Invocation(memory_mb=memory_mb))
                record.count += 1
                record.seconds += seconds
                # Lambda bills each invocation's duration rounded up to the millisecond.
                record.gb_seconds += math.ceil(seconds * 1000) / 1000 * memory_mb / 1024
                record.durations.append(seconds)

    def instrument_pools(self, pools: dict[str, Any]) -> None:
        """Counts each pool's invocations, from the moment one has its container, and attributes their AWS calls
        to the function; a pool of worker processes counts its calls there and hands them over."""
        for name, pool in pools.items():
            pool.count_calls(self.merge)
            pool.measure_invocations(functools.partial(self.invocation, name, pool.spec.memory_mb))

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                requests=Counter(self.requests),
                units=Counter(self.units),
                items_read=Counter(self.items_read),
                invocations={
                    k: Invocation(v.count, v.seconds, v.gb_seconds, list(v.durations), v.memory_mb)
                    for k, v in self.invocations.items()
                },
                aws_seconds=Counter(self.aws_seconds),
                cpu_seconds=Counter(self.cpu_seconds),
            )


@dataclass
class Snapshot:
    requests: Counter[tuple[str, str, str]]
    units: Counter[tuple[str, str]]
    items_read: Counter[str]
    invocations: dict[str, Invocation]
    aws_seconds: Counter[tuple[str, str]] = field(default_factory=Counter)
    cpu_seconds: Counter[str] = field(default_factory=Counter)

    def by_caller(self) -> dict[str, dict[str, int]]:
        """caller → "service.Operation" → requests."""
        table: dict[str, dict[str, int]] = {}
        for (who, service, operation), n in sorted(self.requests.items()):
            table.setdefault(who, {})[f"{service}.{operation}"] = n
        return table

    def callers(self) -> set[str]:
        return {who for who, _, _ in self.requests} | set(self.invocations) | {who for who, _ in self.units}

    def only(self, keep: Callable[[str], bool]) -> Snapshot:
        return Snapshot(
            requests=Counter({k: v for k, v in self.requests.items() if keep(k[0])}),
            units=Counter({k: v for k, v in self.units.items() if keep(k[0])}),
            items_read=Counter({k: v for k, v in self.items_read.items() if keep(k)}),
            invocations={k: v for k, v in self.invocations.items() if keep(k)},
            aws_seconds=Counter({k: v for k, v in self.aws_seconds.items() if keep(k[0])}),
            cpu_seconds=Counter({k: v for k, v in self.cpu_seconds.items() if keep(k)}),
        )


_carried = False
_cpu_sink: CallCounter | None = None  # the counter installed last: it gets the CPU time of pool threads


def _carry_context_into_threads(counter: CallCounter) -> None:
    """Work a function hands to a thread pool runs in the function's context, so its calls are its own (a
    pool's threads otherwise start with an empty context), and its CPU time is the function's too."""
    global _carried, _cpu_sink
    _cpu_sink = counter
    if _carried:
        return
    original = concurrent.futures.ThreadPoolExecutor.submit

    def timed(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        who, sink = CURRENT_FUNCTION.get(), _cpu_sink
        if who is None or sink is None:
            return fn(*args, **kwargs)
        started = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            sink.add_cpu(who, time.thread_time() - started)

    def submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        context = contextvars.copy_context()
        return original(self, context.run, timed, fn, *args, **kwargs)

    concurrent.futures.ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]
    _carried = True
