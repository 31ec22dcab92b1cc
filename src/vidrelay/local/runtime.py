"""Runs the template's functions in-process the way Lambda would: each function has a pool of "containers"
(separate module instances), each handling one event at a time, so module-level state behaves as in Lambda."""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import queue
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from .template import FunctionSpec

_module_counter = itertools.count()
Scope = Callable[[], AbstractContextManager[object]]


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float
    log_group_name: str = ""
    log_stream_name: str = "local"
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


class Pool(Protocol):
    """What the event router and the HTTP API invoke: a function's containers, in-process or processes."""

    spec: FunctionSpec
    region: str

    def invoke(self, event: dict[str, Any], *, timeout_s: float | None = None) -> Any: ...

    def count_calls(self, sink: Callable[[dict[str, Any]], None]) -> None:
        """Hands the AWS calls counted outside this process to `sink` (the bench's CallCounter.merge)."""

    def measure_invocations(self, scope: Scope) -> None:
        """Runs each invocation inside `scope()` once it has its container (the bench's CallCounter.invocation):
        what Lambda bills starts there, not while the event waits for a busy container."""

    def close(self) -> None:
        """Stops the containers (the stack is stopping)."""


def handler_source(spec: FunctionSpec, root: Path) -> tuple[Path, str]:
    """The handler's file and the name of its function in it."""
    handler_file, _, handler_name = spec.handler.rpartition(".")
    return root / spec.code_uri / f"{handler_file.replace('.', '/')}.py", handler_name


class FunctionPool:
    def __init__(self, spec: FunctionSpec, root: Path, *, containers: int, region: str) -> None:
        self.spec = spec
        self.region = region
        source, handler_name = handler_source(spec, root)
        self._idle: queue.Queue[Callable[[dict[str, Any], Any], Any]] = queue.Queue()
        self._scope: Scope = contextlib.nullcontext
        for _ in range(containers):
            module = load_module(source)
            self._idle.put(getattr(module, handler_name))

    def invoke(self, event: dict[str, Any], *, timeout_s: float | None = None) -> Any:
        handler = self._idle.get()
        try:
            context = LambdaContext(
                function_name=self.spec.logical_id,
                memory_limit_in_mb=self.spec.memory_mb,
                invoked_function_arn=f"arn:aws:lambda:{self.region}:123456789012:function:{self.spec.logical_id}",
                aws_request_id=str(uuid.uuid4()),
                deadline=time.time() + (timeout_s if timeout_s is not None else self.spec.timeout_s),
            )
            with self._scope():
                return handler(event, context)
        finally:
            self._idle.put(handler)

    def count_calls(self, sink: Callable[[dict[str, Any]], None]) -> None:
        """Nothing to hand over: in this process the counter's hooks see every call as it is made."""

    def measure_invocations(self, scope: Scope) -> None:
        self._scope = scope

    def close(self) -> None:
        """Nothing to stop: the containers are module instances in this process, gone with it."""


def load_module(source: Path) -> ModuleType:
    """A fresh instance of the handler's module (its own module-level state, as one container has)."""
    name = f"vidrelay_local_fn_{source.parent.name}_{next(_module_counter)}"
    spec = importlib.util.spec_from_file_location(name, source)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
