"""Fault injection shared by every dialect: the names, their values, and which dialect each one makes sense on.

A fault is chosen per task by a ``[sim:NAME]`` / ``[sim:NAME=VALUE]`` directive in the prompt (or a chat message),
or per model for the next submits by ``POST /_sim/faults``. A fault that does not apply to a dialect (there is no
stream to cut on ``/v1/videos``, nothing to poll on chat) is ignored there and an armed one is not used up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

Dialect = Literal["videos", "generations", "chat"]

SUBMIT_REJECT_FAULTS = ("submit_500", "submit_429", "submit_reset")  # no task is created
TASK_FAULTS = (
    "submit_timeout",
    "poll_500",
    "fail",
    "fail_no_error",
    "content_500",
    "content_reset",
    "content_truncated",
    "content_not_mp4",
    "content_pad",
    "expire",
    "content_400_window",
    "stream_cut",
    "stream_fail",
)
FAULTS = SUBMIT_REJECT_FAULTS + TASK_FAULTS
COUNTED_FAULTS = ("poll_500", "content_500", "content_reset", "content_truncated", "content_not_mp4")
# Applied in this order to the downloads of a completed task, each for its own count.
CONTENT_FAULT_ORDER = ("content_500", "content_reset", "content_truncated", "content_not_mp4")
INT_FAULTS = (*COUNTED_FAULTS, "content_pad", "submit_429", "stream_cut")
SECONDS_FAULTS = ("submit_timeout", "expire", "content_400_window")
FAULT_DEFAULTS: dict[str, Any] = {
    "submit_429": 2,  # Retry-After seconds
    "submit_timeout": 30.0,  # seconds the answer is held back
    "expire": 0.0,  # seconds after completion until the video is gone (404 on /v1/videos, 403 on the CDN)
    "content_400_window": 3.0,  # seconds after completion during which Veo's /content answers 400
    "stream_cut": 3,  # progress chunks delivered before the chat stream's connection drops
    **dict.fromkeys(COUNTED_FAULTS, 1),
}
_NOT_ON: dict[Dialect, tuple[str, ...]] = {
    "videos": ("stream_cut", "stream_fail"),
    # Seed 001's result is a CDN URL, so the /content quirk of seed 003 has no place there.
    "generations": ("stream_cut", "stream_fail", "content_400_window"),
    # Seed 000 answers one streamed request: nothing is polled, and the download is from the CDN.
    "chat": ("poll_500", "content_400_window"),
}
DIRECTIVE = re.compile(r"\[sim:([a-z0-9_]+)(?:=([^\]]*))?\]")


def strip_directives(text: str) -> str:
    """The text without its ``[sim:...]`` directives, as a person would read the prompt: spaces collapsed, line
    breaks kept, empty lines dropped."""
    lines = (" ".join(line.split()) for line in DIRECTIVE.sub(" ", text).splitlines())
    return "\n".join(line for line in lines if line)


def applies(fault: str, dialect: Dialect) -> bool:
    return fault in FAULTS and fault not in _NOT_ON[dialect]


class FaultError(ValueError):
    """A fault request the simulator cannot honour (unknown name or unusable value)."""


def parse_fault_value(name: str, raw: Any) -> Any:
    """Normalise a fault value (from JSON or a prompt directive) or apply the documented default."""
    if name not in FAULTS:
        raise FaultError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
    if raw is None or raw == "":
        if name == "content_pad":
            raise FaultError("content_pad needs a byte count, e.g. [sim:content_pad=10485760]")
        return FAULT_DEFAULTS.get(name)
    try:
        if name in INT_FAULTS:
            value = int(raw)
            if value < 0:
                raise ValueError
            return value
        if name in SECONDS_FAULTS:
            number = float(raw)
            if number < 0:
                raise ValueError
            return number
    except (TypeError, ValueError) as exc:
        raise FaultError(f"bad value {raw!r} for fault {name}") from exc
    return raw  # fail / fail_no_error / stream_fail / submit_500 / submit_reset ignore their value


def text_faults(text: str, dialect: Dialect) -> dict[str, Any]:
    """Faults named by ``[sim:...]`` directives in a text; unknown names, bad values and faults of another
    dialect are ignored, since the directive is just part of a prompt that a real upstream would accept."""
    found: dict[str, Any] = {}
    for name, raw in DIRECTIVE.findall(text):
        if not applies(name, dialect):
            continue
        try:
            found[name] = parse_fault_value(name, raw)
        except FaultError:
            continue
    return found


@dataclass
class ModelFault:
    """A fault armed through ``POST /_sim/faults`` for the next ``times`` submits of ``model``."""

    model: str  # "*" matches every model
    fault: str
    value: Any
    times: int | None  # None: until cleared

    def matches(self, model: str, dialect: Dialect) -> bool:
        live = self.times is None or self.times > 0
        return live and self.model in ("*", model) and applies(self.fault, dialect)

    def consume(self) -> None:
        if self.times is not None:
            self.times -= 1

    def as_json(self) -> dict[str, Any]:
        return {"model": self.model, "fault": self.fault, "value": self.value, "times": self.times}
