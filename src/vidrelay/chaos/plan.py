"""What the chaos run sends: one planned job per number, cycling through every model of the catalog, a fifth of
them with an upstream fault (mostly transient, which the job must survive; some persistent, which must end it
`failed` with its code), some replayed with their Idempotency-Key."""

from __future__ import annotations

import io
import random
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

Outcome = Literal["completed", "failed"]
Dialect = Literal["videos", "generations", "chat"]
Replay = Literal["none", "after", "concurrent"]

ALL_DIALECTS: tuple[Dialect, ...] = ("videos", "generations", "chat")
POLLED: tuple[Dialect, ...] = ("videos", "generations")


@dataclass(frozen=True)
class Fault:
    """An upstream fault: a `[sim:...]` directive in the prompt (that task alone) or one armed through
    `POST /_sim/faults` for the model's next submit (`armed`: the fault's name and value)."""

    name: str
    outcome: Outcome
    error_codes: tuple[str, ...] = ()  # the codes a job ending this way may carry (empty: any)
    directive: str = ""
    armed: tuple[str, Any] | None = None
    dialects: tuple[Dialect, ...] = ALL_DIALECTS


# The job survives these: a retried submit, poll or download.
TRANSIENT = (
    Fault("submit_500_once", "completed", armed=("submit_500", None)),
    Fault("submit_429_once", "completed", armed=("submit_429", 1)),
    Fault("poll_500_twice", "completed", directive="[sim:poll_500=2]", dialects=POLLED),
    Fault("content_500_once", "completed", directive="[sim:content_500=1]"),
    Fault("content_reset_once", "completed", directive="[sim:content_reset=1]"),
    Fault("content_truncated_once", "completed", directive="[sim:content_truncated=1]"),
)
# These end the job, visibly: `failed` with this code and its video.failed event.
PERSISTENT = (
    Fault("submit_500_always", "failed", ("upstream_unavailable",), directive="[sim:submit_500]"),
    # A connection reset after the body went out: the upstream may have the task, so it is never sent again.
    Fault("submit_reset", "failed", ("upstream_submit_unknown",), directive="[sim:submit_reset]", dialects=POLLED),
    Fault(
        "stream_reset", "failed", ("upstream_stream_interrupted",), directive="[sim:submit_reset]", dialects=("chat",)
    ),
    # The upstream's own error code is passed on: Sora's moderation refusal or Veo's generation_failed (seeds 002,
    # 003), seed 001's GENERATION_FAILED.
    Fault(
        "upstream_fails",
        "failed",
        ("content_policy_violation", "generation_failed"),
        directive="[sim:fail]",
        dialects=("videos",),
    ),
    Fault("generation_fails", "failed", ("GENERATION_FAILED",), directive="[sim:fail]", dialects=("generations",)),
    Fault("stream_fails", "failed", ("upstream_failed",), directive="[sim:fail]", dialects=("chat",)),
    Fault("content_not_mp4", "failed", ("upstream_not_mp4",), directive="[sim:content_not_mp4=100]"),
    Fault("poll_500_always", "failed", ("upstream_unreachable",), directive="[sim:poll_500=100000]", dialects=POLLED),
    Fault("content_500_always", "failed", ("download_failed",), directive="[sim:content_500=100000]"),
    Fault("stream_cut", "failed", ("upstream_stream_interrupted",), directive="[sim:stream_cut=2]", dialects=("chat",)),
)
NO_FAULT = Fault("none", "completed")

FAULT_EVERY = 5  # one job in five: ~20 % injected faults
PERSISTENT_EVERY = 4  # of the faulted jobs, one in four is persistent (~5 % of all jobs)
REPLAY_EVERY = 7  # one job in seven is created twice with its Idempotency-Key


@dataclass(frozen=True)
class ModelInfo:
    id: str
    family: Dialect


@dataclass(frozen=True)
class PlannedJob:
    number: int
    model: ModelInfo
    fault: Fault
    replay: Replay
    marker: str  # unique in the prompt: how the job's upstream tasks are found in the simulator

    @property
    def expected(self) -> Outcome:
        return self.fault.outcome


def plan(run_id: str, models: list[ModelInfo], jobs: int) -> list[PlannedJob]:
    """Deterministic: job n's model is models[n % len]; faults and replays are spread evenly, so even a small run
    meets every model and both kinds of fault."""
    planned: list[PlannedJob] = []
    faulted = 0
    chosen: Counter[tuple[str, bool]] = Counter()  # faults given so far, per dialect and kind
    for number in range(jobs):
        model = models[number % len(models)]
        fault = NO_FAULT
        if number % FAULT_EVERY == FAULT_EVERY // 2:
            persistent = faulted % PERSISTENT_EVERY == PERSISTENT_EVERY - 1
            kinds = _applicable(PERSISTENT if persistent else TRANSIENT, model.family)
            fault = kinds[chosen[model.family, persistent] % len(kinds)]
            chosen[model.family, persistent] += 1
            faulted += 1
        replay: Replay = "none"
        if number % REPLAY_EVERY == 3:
            replay = "concurrent" if (number // REPLAY_EVERY) % 2 else "after"
        planned.append(PlannedJob(number, model, fault, replay, f"chaos-{run_id}-{number:04d}"))
    return planned


def _applicable(kinds: tuple[Fault, ...], family: Dialect) -> list[Fault]:
    """The faults of this dialect, those only some dialects have first: a dialect with few faulted jobs still
    meets the faults nothing else can."""
    found = sorted((fault for fault in kinds if family in fault.dialects), key=lambda fault: len(fault.dialects))
    if not found:
        raise ValueError(f"no fault applies to the {family} dialect")
    return found


# --- request bodies ------------------------------------------------------------------------------------------


def request_for(job: PlannedJob, webhook_url: str, run_id: str) -> dict[str, Any]:
    """httpx keyword arguments of the job's `POST /v1/videos`: each model in its own upstream's words, some in
    JSON and some in multipart, with references where the model takes them."""
    prompt = f"chaos job {job.number}: a lighthouse in a storm {job.marker} {job.fault.directive}".strip()
    common: dict[str, Any] = {
        "prompt": prompt,
        "model": job.model.id,
        "webhook_url": webhook_url,
    }
    metadata = {"chaos_run": run_id, "job": str(job.number)}
    model = job.model.id
    if model == "sora-2" and job.number % 2:
        fields = {**common, "seconds": "4", "size": "1280x720", "metadata[chaos_run]": run_id}
        fields["metadata[job]"] = str(job.number)
        # 4:3, so the relay crops it to the size.
        return {"data": fields, "files": {"input_reference": ("photo.jpg", image((1600, 1200), "JPEG"), "image/jpeg")}}
    if model in ("sora-2", "sora-2-pro"):
        return {"json": {**common, "seconds": "4", "size": "1280x720", "metadata": metadata}}
    if model.startswith("veo-"):
        fields = {
            **common,
            "duration": "4",
            "aspectRatio": "16:9",
            "resolution": "720p",
            "metadata[job]": str(job.number),
        }
        return {"data": fields, "files": {"input_reference": ("frame.png", image((1280, 720), "PNG"), "image/png")}}
    if model == "seedance-2.0" and job.number % 2:
        fields = {**common, "prompt": f"@IMG_1 on a beach {prompt}", "duration": "4", "aspect_ratio": "16:9"}
        return {"data": fields, "files": [("files", ("one.png", image((960, 960), "PNG"), "image/png"))]}
    if model == "seedance-2.0":
        return {"json": {**common, "duration": 4, "aspect_ratio": "16:9", "metadata": metadata}}
    if job.model.family == "chat":
        return {"json": {**common, "metadata": metadata}}
    raise ValueError(f"the chaos run has no request for model {model!r} (family {job.model.family})")


@lru_cache(maxsize=8)
def image(size: tuple[int, int], fmt: str) -> bytes:
    from PIL import Image

    width, height = size
    picture = Image.new("RGB", size, (30, 120, 200))
    picture.paste((250, 220, 60), (width // 3, height // 3, 2 * width // 3, 2 * height // 3))
    out = io.BytesIO()
    picture.save(out, fmt)
    return out.getvalue()


def shuffled(jobs: list[PlannedJob], seed: int) -> list[PlannedJob]:
    """The order the clients send them in: mixed, so models and faults arrive side by side."""
    order = list(jobs)
    random.Random(seed).shuffle(order)
    return order
