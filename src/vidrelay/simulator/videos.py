"""The ``/v1/videos`` dialect: Sora 2 (seeds 002 and 004) and Veo 3.1 image-to-video (seed 003) share its paths.

Sora: ``POST /v1/videos`` (JSON or multipart) answers a ``video_<hex>`` Video object; progress jumps
(0 → 12 → 45 → 80 → 100). Veo: multipart only, a required ``input_reference`` image, and a smaller answer —
``{"id", "task_id", "object", "model", "status", "progress", "created_at"}`` with ``task_<16 alnum>`` ids and
progress only 0 / 50 / 100. Both are polled at ``GET /v1/videos/{id}`` and downloaded, with the key, from
``GET /v1/videos/{id}/content``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any, ClassVar

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from vidrelay.simulator.delivery import take_content_fault, video_response
from vidrelay.simulator.faults import Dialect, text_faults
from vidrelay.simulator.frames import Scene
from vidrelay.simulator.media import describe
from vidrelay.simulator.state import SimState
from vidrelay.simulator.tasks import ALNUM, Task, now_ms, prewarm, random_text
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

# --- Sora, as seeds 002 / 004 document it ------------------------------------------------------------------

SORA_720 = ("720x1280", "1280x720")
SORA_MODELS: dict[str, dict[str, Any]] = {
    # "sora-2 (720p only)"; "sora-2-pro additionally supports 1024x1792 / 1792x1024 / 1080x1920 / 1920x1080".
    "sora-2": {"sizes": SORA_720, "quality": "standard"},
    "sora-2-pro": {
        "sizes": (*SORA_720, "1024x1792", "1792x1024", "1080x1920", "1920x1080"),
        "quality": "high",
    },
}
SORA_SECONDS = ("4", "8", "12")  # a string enum; "Passing "10" / "15" or the integer 4 returns 400"
SORA_DEFAULT_SECONDS = "4"
SORA_DEFAULT_SIZE = "720x1280"
SECONDS_MESSAGE = 'seconds must be one of "4", "8", "12"'  # seed 004's error text, verbatim
# Share of sim_seconds spent in each phase and the progress shown there. Seed 002: "progress is not strictly
# linear — it can jump (e.g. 0 → 45 → 80 → 100)".
QUEUED_SHARE = 0.15
SORA_PROGRESS_STEPS = ((0.45, 12), (0.75, 45), (1.0, 80))

# --- Veo 3.1, as seed 003 documents it ---------------------------------------------------------------------

VEO_MODELS = ("veo-3.1-fast-generate-preview", "veo-3.1-generate-preview")
VEO_DURATIONS = ("4", "6", "8")  # "duration must still be a string "4" / "6" / "8""
VEO_DEFAULT_DURATION = "8"
VEO_EIGHT_ONLY = ("1080p", "4k")  # "1080p/4k must be "8""
VEO_RESOLUTIONS = ("720p", "1080p", "4k")
VEO_ASPECTS = ("16:9", "9:16")
# size ↔ (resolution, aspectRatio): the six sizes of the seed's table are exactly the tiers in both orientations.
VEO_SIZES: dict[str, tuple[str, str]] = {
    "1280x720": ("720p", "16:9"),
    "720x1280": ("720p", "9:16"),
    "1920x1080": ("1080p", "16:9"),
    "1080x1920": ("1080p", "9:16"),
    "3840x2160": ("4k", "16:9"),
    "2160x3840": ("4k", "9:16"),
}
VEO_PIXELS = {tier_aspect: size for size, tier_aspect in VEO_SIZES.items()}
SEED_VALUE = re.compile(r"-?\d+")
VEO_ID_LENGTH = 16  # "task_xxxxxxxxxxxxxxxx"

ALL_MODELS = (*SORA_MODELS, *VEO_MODELS)
IMAGE_FORMATS = ("jpeg", "png", "webp")  # seeds 003 / 004: "image/jpeg / image/png / image/webp"
LONG_TEXT = 1000  # longer text fields are recorded by length only (a Base64 image pasted into a field)


@dataclass
class VideosTask(Task):
    input_reference: dict[str, Any] | None = None
    dialect: ClassVar[Dialect] = "videos"

    def inspect_extra(self, at_ms: int) -> dict[str, Any]:
        return {"quality": None, "input_reference": self.input_reference}


@dataclass
class SoraTask(VideosTask):
    quality: str = "standard"

    def status_at(self, at_ms: int) -> tuple[str, int | None]:
        if self.finished(at_ms):
            # A failed task keeps the last progress it reported: the sequence a poller sees stays monotonic.
            return ("failed", SORA_PROGRESS_STEPS[-1][1]) if self.failed() else ("completed", 100)
        share = self.share(at_ms)
        if share < QUEUED_SHARE:
            return "queued", 0
        progress = next((p for limit, p in SORA_PROGRESS_STEPS if share < limit), SORA_PROGRESS_STEPS[-1][1])
        return "in_progress", progress

    def public_json(self, at_ms: int) -> dict[str, Any]:
        """The Video object of seed 002; ``completed_at`` only once completed, ``error`` only on some failures
        ("On status: failed, an error field is not always present")."""
        status, progress = self.status_at(at_ms)
        body: dict[str, Any] = {
            "id": self.id,
            "object": "video",
            "model": self.model,
            "status": status,
            "progress": progress,
            "created_at": self.created_at_ms // 1000,
            "size": self.size,
            "seconds": str(self.seconds),
            "quality": self.quality,
        }
        if status == "completed":
            body["completed_at"] = self.completed_at_ms // 1000
        if status == "failed" and "fail" in self.faults:
            body["error"] = {
                "code": "content_policy_violation",
                "message": "Your request was blocked by our moderation system.",
            }
        return body

    def inspect_extra(self, at_ms: int) -> dict[str, Any]:
        return {"quality": self.quality, "input_reference": self.input_reference}


@dataclass
class VeoTask(VideosTask):
    content_400_window: float = 0.0  # seconds after completion during which /content answers 400

    def status_at(self, at_ms: int) -> tuple[str, int | None]:
        # Seed 003: "progress jumps only between 0 / 50 / 100, not linear".
        if self.finished(at_ms):
            return ("failed", 50) if self.failed() else ("completed", 100)
        return ("queued", 0) if self.share(at_ms) < QUEUED_SHARE else ("in_progress", 50)

    def public_json(self, at_ms: int) -> dict[str, Any]:
        """Exactly seed 003's shape; ``completed_at`` "only present for completed status". The seed does not show
        a failed task, so ``error`` follows the Sora convention: present for ``fail``, absent for
        ``fail_no_error``."""
        status, progress = self.status_at(at_ms)
        body: dict[str, Any] = {
            "id": self.id,
            "task_id": self.id,
            "object": "video",
            "model": self.model,
            "status": status,
            "progress": progress,
            "created_at": self.created_at_ms // 1000,
        }
        if status == "completed":
            body["completed_at"] = self.completed_at_ms // 1000
        if status == "failed" and "fail" in self.faults:
            body["error"] = {"code": "generation_failed", "message": "Video generation failed"}
        return body

    def content_blocked(self, at_ms: int) -> bool:
        return at_ms < self.completed_at_ms + round(self.content_400_window * 1000)

    def inspect_extra(self, at_ms: int) -> dict[str, Any]:
        return {"quality": None, "input_reference": self.input_reference, "content_400_window": self.content_400_window}


@dataclass
class Body:
    """A submit body: its text fields (first value of each) and its file parts in arrival order."""

    fields: dict[str, Any]
    files: list[Part] = field(default_factory=list)
    is_json: bool = False

    def uploads(self, name: str) -> list[Part]:
        return [part for part in self.files if part.name == name]

    def params(self) -> dict[str, Any]:
        return {
            key: f"<{len(value)} characters>" if isinstance(value, str) and len(value) > LONG_TEXT else value
            for key, value in self.fields.items()
        }


TaskSpec = tuple[type[VideosTask], dict[str, Any]]


class VideosApi:
    def __init__(self, state: SimState) -> None:
        self.state = state

    def rules(self) -> list[Rule]:
        return [
            Rule("/v1/videos", endpoint=self.submit, methods=["POST"]),
            Rule("/v1/videos/<video_id>", endpoint=self.retrieve, methods=["GET"]),
            Rule("/v1/videos/<video_id>/content", endpoint=self.content, methods=["GET"]),
        ]

    # -- POST /v1/videos --

    def submit(self, request: Request, entry: dict[str, Any]) -> Response:
        if not bearer_of(request):
            return unauthorized()
        body = read_body(request)
        if isinstance(body, Response):
            return body
        model = body.fields.get("model")
        prompt = body.fields.get("prompt")
        named = text_faults(prompt, "videos") if isinstance(prompt, str) else {}
        # Rejections happen before validation, as a struggling upstream answers before looking at the body.
        reject = self.state.take_reject_fault(model if isinstance(model, str) else "", named, "videos")
        if reject is not None:
            return rejected_submit(*reject, request.environ)
        spec = self._validate_veo(body) if model in VEO_MODELS else self._validate_sora(body)
        if isinstance(spec, Response):
            return spec
        cls, values = spec
        faults = self.state.task_faults(values["model"], named, "videos")
        if cls is VeoTask:
            values["content_400_window"] = float(faults.get("content_400_window", self.state.content_400_window))
            task_id = "task_" + random_text(VEO_ID_LENGTH, ALNUM)
        else:
            task_id = "video_" + secrets.token_hex(12)
        task = cls(
            id=task_id,
            created_at_ms=now_ms(),
            duration_ms=self.state.duration_ms(),
            faults=faults,
            params=body.params(),
            files=[describe(p.name, p.filename, p.content_type, p.data) for p in body.files],
            **values,
        )
        self.state.add(task)
        entry["task_id"] = task.id
        prewarm(task)
        if "submit_timeout" in task.faults:
            # The task exists upstream, but the answer comes too late for the client: the ambiguous case.
            self.state.stopping.wait(float(task.faults["submit_timeout"]))
        return json_response(task.public_json(now_ms()))

    def _validate_sora(self, body: Body) -> TaskSpec | Response:
        fields = body.fields
        model = fields.get("model")
        if model is None or model == "":
            return error_response(400, "Missing required parameter: model", param="model", code="missing")
        if not isinstance(model, str) or model not in SORA_MODELS:
            supported = ", ".join(f"'{m}'" for m in ALL_MODELS)
            return error_response(
                400,
                f"Invalid value: {model!r}. Supported values are: {supported}.",
                param="model",
                code="invalid_value",
            )
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return error_response(400, "Missing required parameter: prompt", param="prompt", code="missing")
        seconds = fields.get("seconds", SORA_DEFAULT_SECONDS)
        # Strings only: seed 004 lists "passed integer 4 instead of string "4"" under this very message.
        if not isinstance(seconds, str) or seconds not in SORA_SECONDS:
            return error_response(400, SECONDS_MESSAGE, param="seconds", code="invalid_value")
        size = fields.get("size", SORA_DEFAULT_SIZE)
        sizes: tuple[str, ...] = SORA_MODELS[model]["sizes"]
        if not isinstance(size, str) or size not in sizes:
            return error_response(
                400,
                f"Invalid size {size!r} for model {model}: size must be one of {', '.join(sizes)}",
                param="size",
                code="invalid_value",
            )
        reference = self._sora_reference(body, size)
        if isinstance(reference, Response):
            return reference
        width, height = (int(n) for n in size.split("x"))
        values = {
            "model": model,
            "prompt": prompt,
            "width": width,
            "height": height,
            "seconds": int(seconds),
            "quality": SORA_MODELS[model]["quality"],
            "input_reference": reference,
            "scene": Scene(prompt, (body.uploads("input_reference")[0].data,) if reference else ()),
        }
        return SoraTask, values

    def _sora_reference(self, body: Body, size: str) -> dict[str, Any] | Response | None:
        uploads = body.uploads("input_reference")
        if not uploads:
            if body.files:
                # Seed 004: "multipart field name is wrong (must be input_reference, not image or reference)".
                return error_response(
                    400, "Missing required parameter: input_reference", param="input_reference", code="missing"
                )
            if body.fields.get("input_reference") not in (None, ""):
                # Seed 004: "input_reference must be uploaded via multipart — URLs and base64 are not accepted".
                return error_response(
                    400,
                    "input_reference must be uploaded as a multipart/form-data file; URLs and base64 are not accepted",
                    param="input_reference",
                    code="invalid_value",
                )
            return None
        upload = uploads[0]  # "Only one file is supported"; extra parts are ignored
        recorded = describe(upload.name, upload.filename, upload.content_type, upload.data)
        if recorded["kind"] != "image" or recorded["format"] not in IMAGE_FORMATS:
            return error_response(400, "Invalid file format", param="input_reference", code="invalid_value")
        if f"{recorded['width']}x{recorded['height']}" != size:
            return error_response(
                400,
                "Inpaint image must match the requested width and height",
                param="input_reference",
                code="invalid_value",
            )
        return recorded

    def _validate_veo(self, body: Body) -> TaskSpec | Response:
        fields = body.fields
        model = str(fields["model"])
        if body.is_json:
            # Seed 003: "multipart/form-data (not JSON)"; "input_reference as a Base64 string inside a JSON body"
            # is listed among the mistakes.
            return error_response(
                400,
                f"{model} requires Content-Type multipart/form-data with the image in the input_reference file "
                "field; JSON bodies are not accepted",
                code="invalid_content_type",
            )
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return error_response(400, "Missing required parameter: prompt", param="prompt", code="missing")
        reference = self._veo_reference(body)
        if isinstance(reference, Response):
            return reference
        duration = fields.get("duration", VEO_DEFAULT_DURATION)
        if duration not in VEO_DURATIONS:
            return error_response(
                400, 'duration must be one of "4", "6", "8" (a string)', param="duration", code="invalid_value"
            )
        for name, allowed in (("resolution", VEO_RESOLUTIONS), ("aspectRatio", VEO_ASPECTS), ("size", VEO_SIZES)):
            given = fields.get(name)
            if given is not None and given not in allowed:
                return error_response(
                    400,
                    f"Invalid {name} {given!r}: must be one of {', '.join(allowed)}",
                    param=name,
                    code="invalid_value",
                )
        # "resolution ... higher precedence than size": resolution and aspectRatio decide the pixels; size only
        # fills in whichever of the two was not sent.
        size_tier, size_aspect = VEO_SIZES.get(fields.get("size") or "", ("720p", "16:9"))
        tier = fields.get("resolution") or size_tier
        aspect = fields.get("aspectRatio") or size_aspect
        if tier in VEO_EIGHT_ONLY and duration != "8":
            return error_response(
                400, f'duration must be "8" at {tier} (got "{duration}")', param="duration", code="invalid_value"
            )
        seed = fields.get("seed")
        if seed is not None and not SEED_VALUE.fullmatch(str(seed)):
            return error_response(400, f"Invalid seed {seed!r}: must be an integer", param="seed", code="invalid_value")
        width, height = (int(n) for n in VEO_PIXELS[(tier, aspect)].split("x"))
        values = {
            "model": model,
            "prompt": prompt,
            "width": width,
            "height": height,
            "seconds": int(duration),
            "input_reference": reference,
            "scene": Scene(prompt, (body.uploads("input_reference")[0].data,)),  # the first upload, as recorded
        }
        return VeoTask, values

    def _veo_reference(self, body: Body) -> dict[str, Any] | Response:
        uploads = body.uploads("input_reference")
        if not uploads:
            if body.fields.get("input_reference") not in (None, ""):
                # "Remote URLs not accepted"; a Base64 string in a text field is not a file upload either.
                return error_response(
                    400,
                    "input_reference must be uploaded as a multipart/form-data file; URLs and Base64 strings "
                    "are not accepted",
                    param="input_reference",
                    code="invalid_value",
                )
            others = sorted({part.name for part in body.files})
            # "image / reference / input_image — must be exactly input_reference".
            hint = f" (received file field {', '.join(others)}; the field name must be exactly input_reference)"
            return error_response(
                400,
                "Missing required parameter: input_reference" + (hint if others else ""),
                param="input_reference",
                code="missing",
            )
        upload = uploads[0]  # "Multi-image submissions only keep the first"
        recorded = describe(upload.name, upload.filename, upload.content_type, upload.data)
        if recorded["kind"] != "image" or recorded["format"] not in IMAGE_FORMATS:
            return error_response(
                400,
                "Invalid file format for input_reference: accepted formats are image/jpeg, image/png, image/webp",
                param="input_reference",
                code="invalid_value",
            )
        # Unlike Sora, the image need not match the output size.
        return recorded

    # -- GET /v1/videos/{id} and /content --

    def _not_found(self, video_id: str) -> Response:
        return error_response(404, f"Video with id '{video_id}' not found.", param="video_id", code="video_not_found")

    def _lookup(self, video_id: str, entry: dict[str, Any]) -> VideosTask | None:
        task = self.state.lookup(video_id)
        if not isinstance(task, VideosTask):  # a chat or generations id is not a video of this dialect
            return None
        entry["task_id"] = task.id
        return task

    def retrieve(self, request: Request, entry: dict[str, Any], video_id: str) -> Response:
        if not bearer_of(request):
            return unauthorized()
        task = self._lookup(video_id, entry)
        if task is None:
            return self._not_found(video_id)
        at = now_ms()
        with self.state.lock:
            task.poll_requests += 1
            poll_fault = task.take_count("poll_500")
        if poll_fault:
            return server_error()
        if task.expired(at):  # seed 002: "retained ... for 1 day only — /content returns 404 after expiration"
            return self._not_found(video_id)
        return json_response(task.public_json(at))

    def content(self, request: Request, entry: dict[str, Any], video_id: str) -> Response:
        if not bearer_of(request):
            return unauthorized()
        task = self._lookup(video_id, entry)
        if task is None:
            return self._not_found(video_id)
        variant = request.args.get("variant", "video")
        if variant != "video":
            return error_response(
                400, f"Invalid variant {variant!r}: only 'video' is available", param="variant", code="invalid_value"
            )
        at = now_ms()
        with self.state.lock:
            task.content_requests += 1
        if task.expired(at):
            return self._not_found(video_id)
        status, _ = task.status_at(at)
        if status != "completed":
            message = (
                "Video generation failed; there is no content to download."
                if status == "failed"
                else f"Video is not ready yet (status: {status}). Poll GET /v1/videos/{video_id} until completed."
            )
            return error_response(400, message, code="video_failed" if status == "failed" else "video_not_ready")
        if isinstance(task, VeoTask) and task.content_blocked(at):
            # Seed 003: "/content returns 400 occasionally right after status flips to completed; retry after 4 sec".
            return error_response(
                400, "Video content is not available yet; retry in a few seconds.", code="content_not_ready"
            )
        return video_response(task, take_content_fault(task, self.state.lock), request.environ)


def read_body(request: Request) -> Body | Response:
    mimetype = request.mimetype
    if mimetype == "application/json" or (not mimetype and request.get_data(cache=True)[:1] == b"{"):
        parsed = request.get_json(force=True, silent=True)
        if not isinstance(parsed, dict):
            return error_response(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                "using your HTTP library correctly.)",
            )
        return Body(parsed, is_json=True)
    if mimetype == "multipart/form-data":
        # The openai SDK sends videos.create as multipart even without a file: that is text-to-video.
        parts = multipart_parts(request)
        fields: dict[str, Any] = {}
        for part in parts:
            if not part.is_file:
                fields.setdefault(part.name, part.text())
        return Body(fields, [part for part in parts if part.is_file])
    if mimetype == "application/x-www-form-urlencoded":
        return Body(request.form.to_dict())
    return error_response(400, f"Unsupported Content-Type {mimetype!r}: send application/json or multipart/form-data")
