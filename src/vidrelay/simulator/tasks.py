"""A generation task as the simulator keeps it, whatever the dialect that created it.

Every reader derives a task's state from the clock alone (created_at + sim_seconds), so a poll, the CDN and
``/_sim/tasks`` always agree and nothing needs a background worker. Each dialect subclasses ``Task`` for its own
status words and public JSON.
"""

from __future__ import annotations

import secrets
import string
import sys
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from vidrelay.simulator import mp4gen
from vidrelay.simulator.faults import Dialect
from vidrelay.simulator.frames import Scene

ALNUM = string.ascii_letters + string.digits
LOWER_ALNUM = string.ascii_lowercase + string.digits


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def random_text(length: int, alphabet: str = ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def iso_z(at_ms: int) -> str:
    """ISO 8601 in UTC with a Z, to the second, as seed 001 writes ``created_at``: ``2026-05-01T12:00:00Z``."""
    return datetime.fromtimestamp(at_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class CdnLink:
    """A signed download URL on the simulator's CDN host (seed 001: "video_url is usually a temporary signed
    URL"; seed 000: "Generated video URLs are valid for only 1 day")."""

    token: str
    url: str
    expires_at: int  # unix seconds, as in the URL's Expires parameter


@dataclass
class Task(ABC):
    id: str
    model: str
    prompt: str
    width: int
    height: int
    seconds: int
    created_at_ms: int
    duration_ms: int
    faults: dict[str, Any]
    params: dict[str, Any]  # the request's own fields as received: a multipart "8" stays the string "8"
    files: list[dict[str, Any]] = field(default_factory=list)  # every received file or image, arrival order
    scene: Scene = field(default_factory=Scene)  # what the video shows: the prompt and the reference images
    link: CdnLink | None = None
    poll_requests: int = 0
    content_requests: int = 0
    cdn_requests: list[dict[str, Any]] = field(default_factory=list)
    fault_counts: dict[str, int] = field(default_factory=dict)  # how often each counted fault has fired

    dialect: ClassVar[Dialect]

    @property
    def completed_at_ms(self) -> int:
        # Deterministic: the moment sim_seconds (as set when the task was created) have passed.
        return self.created_at_ms + self.duration_ms

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    def share(self, at_ms: int) -> float:
        """How far the generation has come: 0 at creation, 1 at completion."""
        if self.duration_ms <= 0:
            return 1.0
        return (at_ms - self.created_at_ms) / self.duration_ms

    def finished(self, at_ms: int) -> bool:
        return at_ms >= self.completed_at_ms

    def failed(self) -> bool:
        return "fail" in self.faults or "fail_no_error" in self.faults

    def expired(self, at_ms: int) -> bool:
        if self.link is not None:
            return at_ms // 1000 >= self.link.expires_at
        if "expire" not in self.faults:
            return False
        return at_ms >= self.completed_at_ms + int(float(self.faults["expire"]) * 1000)

    @abstractmethod
    def status_at(self, at_ms: int) -> tuple[str, int | None]:
        """(status, progress) in the dialect's own words."""

    @abstractmethod
    def public_json(self, at_ms: int) -> dict[str, Any]:
        """What the dialect answers about the task (a poll; for chat, the non-streamed completion)."""

    def inspect_extra(self, at_ms: int) -> dict[str, Any]:
        return {}

    def inspect_json(self, at_ms: int) -> dict[str, Any]:
        status, progress = self.status_at(at_ms)
        return {
            "id": self.id,
            "dialect": self.dialect,
            "model": self.model,
            "prompt": self.prompt,
            "params": dict(self.params),
            "size": self.size,
            "seconds": str(self.seconds),
            "output": {"width": self.width, "height": self.height, "seconds": self.seconds},
            "status": status,
            "progress": progress,
            "expired": self.expired(at_ms),
            "created_at_ms": self.created_at_ms,
            "completed_at_ms": self.completed_at_ms,
            "submit_count": 1,  # one POST creates one task; a client retry makes a second task, as upstream does
            "poll_requests": self.poll_requests,
            "content_requests": self.content_requests,
            "faults": dict(self.faults),
            "files": [dict(f) for f in self.files],
            "scene": self.scene.inspect_json(),
            "video_url": self.link.url if self.link else None,
            "cdn_requests": [dict(r) for r in self.cdn_requests],
            "cdn_authorization_seen": any(r["had_authorization"] for r in self.cdn_requests),
            **self.inspect_extra(at_ms),
        }

    def take_count(self, fault: str) -> bool:
        """Fire a counted fault if it still has uses left (``poll_500=N``: the first N requests)."""
        limit = self.faults.get(fault)
        if limit is None:
            return False
        fired = self.fault_counts.get(fault, 0)
        if fired >= int(limit):
            return False
        self.fault_counts[fault] = fired + 1
        return True


def prewarm(task: Task) -> None:
    """Encode the MP4 while the task 'generates', so the download is served without delay on completion.
    A task bound to fail has nothing to download, so it costs no encode (a 4K one takes seconds)."""
    if task.failed():
        return

    def run() -> None:
        try:
            mp4gen.mp4_path(task.width, task.height, task.seconds, task.scene)
        except Exception as exc:  # the download handler will retry and report it
            print(f"vidrelay simulator: pre-generation failed: {exc}", file=sys.stderr)

    threading.Thread(target=run, name=f"prewarm-{task.id}", daemon=True).start()
