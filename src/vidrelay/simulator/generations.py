"""The ``/v1/video/generations`` dialect of seed 001 (Seedance 2.0).

``POST /v1/video/generations`` takes multipart/form-data — ``model``, ``prompt``, ``duration`` (integer seconds,
sent as a form string), ``aspect_ratio``, repeated ``files`` parts and ``first_frame_image`` /
``last_frame_image`` — and answers ``{"task_id": "task-YYYYMMDDHHMMSS-xxxxxx", "status": "pending",
"created_at"}``. ``GET /v1/video/generations/{task_id}`` walks ``pending → running → succeeded → completed``;
only ``completed`` carries ``video_url``, a signed link on the CDN host that is fetched without any key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from vidrelay.simulator.cdn import Cdn
from vidrelay.simulator.faults import Dialect, text_faults
from vidrelay.simulator.frames import Scene
from vidrelay.simulator.media import describe, sniff
from vidrelay.simulator.state import SimState
from vidrelay.simulator.tasks import LOWER_ALNUM, Task, iso_z, now_ms, prewarm, random_text
from vidrelay.simulator.web import (
    Part,
    bearer_of,
    error_response,
    json_response,
    multipart_parts,
    rejected_submit,
    server_error,
    unauthorized,
)

MODEL = "seedance-2.0"  # "Model ID, fixed as seedance-2.0"
DEFAULT_DURATION = 5  # "default 5 seconds"
DURATIONS = range(4, 16)  # Seedance 2.0 renders 4 to 15 seconds
ASPECTS = {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (960, 960)}  # "e.g., 16:9, 9:16, 1:1, default 16:9"
DEFAULT_ASPECT = "16:9"
MAX_FILE_BYTES = 50 * 1024 * 1024  # "Individual file size should not exceed 50MB"
MAX_BODY_BYTES = 256 * 1024 * 1024  # several references of up to 50 MB each
# "supports images (jpg/png) and videos (mp4)"; the frame fields take images only.
FILE_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "files": (("image", "jpeg"), ("image", "png"), ("video", "mp4")),
    "first_frame_image": (("image", "jpeg"), ("image", "png")),
    "last_frame_image": (("image", "jpeg"), ("image", "png")),
}
SINGLE_FILE_FIELDS = ("first_frame_image", "last_frame_image")
REFERENCE = re.compile(r"@(IMG|VID)_(\d+)")
KIND_OF_TAG = {"IMG": "image", "VID": "video"}

# Share of sim_seconds in each status. "Common status progression: pending -> running -> succeeded -> completed".
PENDING_SHARE = 0.15
SUCCEEDED_SHARE = 0.85


@dataclass
class GenerationTask(Task):
    references: dict[str, int | None] = field(default_factory=dict)  # "@IMG_2" → index in files, None if absent
    dialect: ClassVar[Dialect] = "generations"

    def status_at(self, at_ms: int) -> tuple[str, int | None]:
        if self.finished(at_ms):
            return ("failed", None) if self.failed() else ("completed", 100)
        share = self.share(at_ms)
        if share < PENDING_SHARE:
            return "pending", 0
        if share < SUCCEEDED_SHARE:
            done = (share - PENDING_SHARE) / (SUCCEEDED_SHARE - PENDING_SHARE)
            return "running", min(99, max(1, math.floor(done * 100)))
        return "succeeded", 100

    def _status_since_ms(self, status: str, progress: int | None) -> int:
        """When the current (status, progress) began: the ``updated_at`` a poller sees, the same for every poll."""
        if status in ("completed", "failed"):
            return self.completed_at_ms
        if status == "succeeded":
            share = SUCCEEDED_SHARE
        elif status == "running":
            step = 0.0 if progress is None or progress <= 1 else progress / 100  # 1 is shown from the start
            share = PENDING_SHARE + step * (SUCCEEDED_SHARE - PENDING_SHARE)
        else:
            share = 0.0
        return self.created_at_ms + round(share * self.duration_ms)

    def public_json(self, at_ms: int) -> dict[str, Any]:
        """The seed's three answers: in progress (with ``progress``), completed (with ``video_url``), failed
        (with ``error`` — "Failed tasks usually return failed with an error field", so ``fail_no_error`` omits
        it)."""
        status, progress = self.status_at(at_ms)
        body: dict[str, Any] = {"task_id": self.id, "status": status}
        if status in ("running", "succeeded"):
            body["progress"] = progress
        if status == "completed" and self.link is not None:
            body["video_url"] = self.link.url
        if status == "failed" and "fail" in self.faults:
            body["error"] = {"code": "GENERATION_FAILED", "message": "Video generation failed"}
        body["created_at"] = iso_z(self.created_at_ms)
        body["updated_at"] = iso_z(self._status_since_ms(status, progress))
        return body

    def inspect_extra(self, at_ms: int) -> dict[str, Any]:
        return {"quality": None, "input_reference": None, "references": dict(self.references)}


class GenerationsApi:
    def __init__(self, state: SimState, cdn: Cdn) -> None:
        self.state = state
        self.cdn = cdn

    def rules(self) -> list[Rule]:
        return [
            Rule("/v1/video/generations", endpoint=self.submit, methods=["POST"]),
            Rule("/v1/video/generations/<task_id>", endpoint=self.retrieve, methods=["GET"]),
        ]

    def submit(self, request: Request, entry: dict[str, Any]) -> Response:
        if not bearer_of(request):
            return unauthorized()
        if request.mimetype != "multipart/form-data":
            # The seed's only Content-Type: "multipart/form-data" (Required: Yes).
            return error_response(
                400,
                f"Content-Type must be multipart/form-data (got {request.mimetype or 'none'!r})",
                code="invalid_content_type",
            )
        parts = multipart_parts(request)
        fields: dict[str, str] = {}
        for part in parts:
            if not part.is_file:
                fields.setdefault(part.name, part.text())
        prompt = fields.get("prompt", "")
        named = text_faults(prompt, "generations")
        reject = self.state.take_reject_fault(fields.get("model", ""), named, "generations")
        if reject is not None:
            return rejected_submit(*reject, request.environ)

        checked = self._validate(fields, parts)
        if isinstance(checked, Response):
            return checked
        seconds, (width, height), files = checked
        faults = self.state.task_faults(MODEL, named, "generations")
        created = now_ms()
        stamp = datetime.fromtimestamp(created / 1000, tz=UTC).strftime("%Y%m%d%H%M%S")
        duration = self.state.duration_ms()
        task = GenerationTask(
            id=f"task-{stamp}-{random_text(6, LOWER_ALNUM)}",  # "task-20260501120000-abc123"
            model=MODEL,
            prompt=prompt,
            width=width,
            height=height,
            seconds=seconds,
            created_at_ms=created,
            duration_ms=duration,
            faults=faults,
            params=dict(fields),
            files=files,
            scene=Scene(prompt, shown_images(parts)),
            link=self.cdn.link(created + duration, faults),
            references=resolve_references(prompt, files),
        )
        self.state.add(task)
        entry["task_id"] = task.id
        prewarm(task)
        if "submit_timeout" in task.faults:
            self.state.stopping.wait(float(task.faults["submit_timeout"]))
        # The create answer is always the initial one: "status: Initial status, commonly pending".
        return json_response({"task_id": task.id, "status": "pending", "created_at": iso_z(task.created_at_ms)})

    def _validate(
        self, fields: dict[str, str], parts: list[Part]
    ) -> tuple[int, tuple[int, int], list[dict[str, Any]]] | Response:
        model = fields.get("model")
        if not model:
            return error_response(400, "Missing required parameter: model", param="model", code="missing")
        if model != MODEL:
            return error_response(
                400, f"Invalid model {model!r}: this endpoint serves {MODEL}", param="model", code="model_not_found"
            )
        if not fields.get("prompt", "").strip():
            return error_response(400, "Missing required parameter: prompt", param="prompt", code="missing")
        raw_duration = fields.get("duration", str(DEFAULT_DURATION))
        # "duration integer ... Output duration in seconds": whole seconds, as the form string "5".
        if not (raw_duration.isascii() and raw_duration.isdigit()) or int(raw_duration) not in DURATIONS:
            return error_response(
                400,
                f"Invalid duration {raw_duration!r}: an integer number of seconds from {DURATIONS.start} "
                f"to {DURATIONS.stop - 1}",
                param="duration",
                code="invalid_value",
            )
        aspect = fields.get("aspect_ratio", DEFAULT_ASPECT)
        if aspect not in ASPECTS:
            return error_response(
                400,
                f"Invalid aspect_ratio {aspect!r}: must be one of {', '.join(ASPECTS)}",
                param="aspect_ratio",
                code="invalid_value",
            )
        files = self._check_files(parts)
        if isinstance(files, Response):
            return files
        return int(raw_duration), ASPECTS[aspect], files

    def _check_files(self, parts: list[Part]) -> list[dict[str, Any]] | Response:
        recorded: list[dict[str, Any]] = []
        for part in parts:
            if part.name not in FILE_FIELDS:
                if part.is_file:
                    return error_response(
                        400,
                        f"Unknown file field {part.name!r}: files go in files, first_frame_image or last_frame_image",
                        param=part.name,
                        code="invalid_value",
                    )
                continue
            if not part.is_file:
                # "files  file": a URL or Base64 text in these fields is not an upload.
                return error_response(
                    400, f"{part.name} must be a file upload, not a text field", param=part.name, code="invalid_value"
                )
            if len(part.data) > MAX_FILE_BYTES:
                return error_response(
                    400,
                    f"File {part.filename!r} in {part.name} is {len(part.data)} bytes; the limit is 50MB per file",
                    param=part.name,
                    code="file_too_large",
                )
            record = describe(part.name, part.filename, part.content_type, part.data)
            if (record["kind"], record["format"]) not in FILE_FIELDS[part.name]:
                allowed = "jpg, png images and mp4 videos" if part.name == "files" else "jpg or png images"
                return error_response(
                    400,
                    f"Unsupported file type for {part.name} ({part.filename!r}): {allowed} are accepted",
                    param=part.name,
                    code="invalid_file_type",
                )
            if part.name in SINGLE_FILE_FIELDS and any(r["field"] == part.name for r in recorded):
                return error_response(400, f"Only one {part.name} is allowed", param=part.name, code="invalid_value")
            recorded.append(record)
        return recorded

    def retrieve(self, request: Request, entry: dict[str, Any], task_id: str) -> Response:
        if not bearer_of(request):
            return unauthorized()
        task = self.state.lookup(task_id)
        if not isinstance(task, GenerationTask):
            return error_response(404, f"Task {task_id} not found", param="task_id", code="task_not_found")
        entry["task_id"] = task.id
        with self.state.lock:
            task.poll_requests += 1
            poll_fault = task.take_count("poll_500")
        if poll_fault:
            return server_error()
        # An expired link stays in the answer: the CDN refuses it (403), as a stale signed URL does.
        return json_response(task.public_json(now_ms()))


def shown_images(parts: list[Part]) -> tuple[bytes, ...]:
    """The image references in the order the video shows them: the first frame, the ``files`` images in upload
    order, the last frame. Video references are not drawn (only their presence is recorded)."""
    order = {"first_frame_image": 0, "files": 1, "last_frame_image": 2}
    images = [part for part in parts if part.is_file and part.name in order and _is_image(part.data)]
    return tuple(part.data for part in sorted(images, key=lambda part: order[part.name]))


def _is_image(data: bytes) -> bool:
    found = sniff(data)
    return found is not None and found.kind == "image"


def resolve_references(prompt: str, files: list[dict[str, Any]]) -> dict[str, int | None]:
    """Map each ``@IMG_n`` / ``@VID_n`` of the prompt to its file: "Reference files by upload order" among the
    ``files`` parts of that kind. A reference past the uploads maps to None (seed 001's own multi-asset example
    names @IMG_3 with two images, so the upstream does not refuse it)."""
    by_kind: dict[str, list[int]] = {"image": [], "video": []}
    for index, record in enumerate(files):
        if record["field"] == "files" and record["kind"] in by_kind:
            by_kind[record["kind"]].append(index)
    resolved: dict[str, int | None] = {}
    for tag, number in REFERENCE.findall(prompt):
        indexes = by_kind[KIND_OF_TAG[tag]]
        n = int(number)
        resolved[f"@{tag}_{number}"] = indexes[n - 1] if 1 <= n <= len(indexes) else None
    return resolved
