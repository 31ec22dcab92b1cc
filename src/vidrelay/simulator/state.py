"""What the simulator remembers, shared by the API server, the CDN server and the inspection routes: tasks,
the request log, armed faults and the settings. One lock guards all of it; handlers run in many threads."""

from __future__ import annotations

import threading
from typing import Any

from vidrelay.simulator.faults import SUBMIT_REJECT_FAULTS, TASK_FAULTS, Dialect, ModelFault, applies
from vidrelay.simulator.tasks import Task, now_ms

# Seed 003: "/content returns 400 occasionally right after status flips to completed; retry after 4 sec". The
# default stays under the 4 s the seed's samples sleep before their first download, so they pass unchanged.
DEFAULT_CONTENT_400_WINDOW = 3.0


class SimState:
    def __init__(self, sim_seconds: float, content_400_window: float = DEFAULT_CONTENT_400_WINDOW) -> None:
        self.lock = threading.RLock()
        self.stopping = threading.Event()  # set on stop(): wakes handlers sleeping in delays and streams
        self.tasks: dict[str, Task] = {}
        self.by_token: dict[str, Task] = {}
        self.request_log: list[dict[str, Any]] = []
        self.model_faults: list[ModelFault] = []
        self._sim_seconds = 0.0
        self._content_400_window = 0.0
        self.sim_seconds = sim_seconds
        self.content_400_window = content_400_window

    # -- settings --

    @property
    def sim_seconds(self) -> float:
        return self._sim_seconds

    @sim_seconds.setter
    def sim_seconds(self, value: float) -> None:
        self._sim_seconds = _non_negative("sim_seconds", value)

    @property
    def content_400_window(self) -> float:
        return self._content_400_window

    @content_400_window.setter
    def content_400_window(self, value: float) -> None:
        self._content_400_window = _non_negative("content_400_window", value)

    def duration_ms(self) -> int:
        return round(self.sim_seconds * 1000)

    # -- tasks --

    def add(self, task: Task) -> None:
        with self.lock:
            self.tasks[task.id] = task
            if task.link is not None:
                self.by_token[task.link.token] = task

    def lookup(self, task_id: str) -> Task | None:
        with self.lock:
            return self.tasks.get(task_id)

    def lookup_token(self, token: str) -> Task | None:
        with self.lock:
            return self.by_token.get(token)

    def inspect_tasks(self) -> list[dict[str, Any]]:
        at = now_ms()
        with self.lock:
            return [t.inspect_json(at) for t in self.tasks.values()]

    # -- the request log --

    def log_request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.request_log.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.request_log]

    # -- faults --

    def arm(self, fault: ModelFault) -> None:
        with self.lock:
            self.model_faults.append(fault)

    def armed(self) -> list[dict[str, Any]]:
        with self.lock:
            return [f.as_json() for f in self.model_faults if f.times is None or f.times > 0]

    def disarm(self, model: str | None = None) -> None:
        with self.lock:
            self.model_faults = [f for f in self.model_faults if model is not None and f.model != model]

    def take_reject_fault(self, model: str, faults: dict[str, Any], dialect: Dialect) -> tuple[str, Any] | None:
        """The first submit-rejecting fault named in the prompt, else one armed for the model (used up)."""
        for name in SUBMIT_REJECT_FAULTS:
            if name in faults:
                return name, faults[name]
        with self.lock:
            for armed in self.model_faults:
                if armed.fault in SUBMIT_REJECT_FAULTS and armed.matches(model, dialect):
                    armed.consume()
                    return armed.fault, armed.value
        return None

    def task_faults(self, model: str, named: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
        """The task's faults: those named in its prompt, plus those armed for its model (each used once)."""
        taken = {k: v for k, v in named.items() if k in TASK_FAULTS and applies(k, dialect)}
        with self.lock:
            for armed in self.model_faults:
                if armed.fault in TASK_FAULTS and armed.matches(model, dialect) and armed.fault not in taken:
                    armed.consume()
                    taken[armed.fault] = armed.value
        return taken

    def reset(self) -> None:
        """Forget every task, logged request and armed fault (the settings are kept)."""
        with self.lock:
            self.tasks.clear()
            self.by_token.clear()
            self.request_log.clear()
            self.model_faults.clear()


def _non_negative(name: str, value: Any) -> float:
    number = float(value)
    if number < 0:
        raise ValueError(f"{name} must be >= 0")
    return number
