"""Upstream simulator: a real HTTP server speaking the Sora-style ``/v1/videos`` dialect of the seeds.

Seed 002 (text-to-video, JSON) and seed 004 (image-to-video, multipart) define the dialect: ``POST /v1/videos``
answers a ``video_<hex>`` task in ``queued``; ``GET /v1/videos/{id}`` reports ``queued`` / ``in_progress`` /
``completed`` / ``failed`` with a progress that jumps rather than climbs; ``GET /v1/videos/{id}/content`` streams
the MP4. Generation takes ``sim_seconds`` of wall time and produces a real H.264 file of the requested size and
length (see ``mp4gen``).

Faults can be aimed at single tasks (``[sim:NAME]`` / ``[sim:NAME=VALUE]`` in the prompt) or at the next
requests for a model (``POST /_sim/faults``), and everything the server saw is inspectable under ``/_sim/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from vidrelay.simulator import mp4gen

# --- the dialect, as seed 002 / 004 document it ------------------------------------------------------------

SORA_720 = ("720x1280", "1280x720")
MODELS: dict[str, dict[str, Any]] = {
    # "sora-2 (720p only)"; "sora-2-pro additionally supports 1024x1792 / 1792x1024 / 1080x1920 / 1920x1080".
    "sora-2": {"sizes": SORA_720, "quality": "standard"},
    "sora-2-pro": {
        "sizes": (*SORA_720, "1024x1792", "1792x1024", "1080x1920", "1920x1080"),
        "quality": "high",
    },
}
ALLOWED_SECONDS = ("4", "8", "12")  # a string enum; "Passing "10" / "15" or the integer 4 returns 400"
DEFAULT_SECONDS = "4"
DEFAULT_SIZE = "720x1280"
SECONDS_MESSAGE = 'seconds must be one of "4", "8", "12"'  # seed 004's error text, verbatim
IMAGE_FORMATS = ("jpeg", "png", "webp")  # seed 004: "Accepted formats: image/jpeg / image/png / image/webp"
MAX_BODY_BYTES = 64 * 1024 * 1024

# Share of sim_seconds spent in each phase and the progress shown there. Seed 002: "progress is not strictly
# linear — it can jump (e.g. 0 → 45 → 80 → 100)".
QUEUED_SHARE = 0.15
PROGRESS_STEPS = ((0.45, 12), (0.75, 45), (1.0, 80))

# --- faults ------------------------------------------------------------------------------------------------

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
)
FAULTS = SUBMIT_REJECT_FAULTS + TASK_FAULTS
COUNTED_FAULTS = ("poll_500", "content_500", "content_reset", "content_truncated", "content_not_mp4")
# Applied in this order to the content GETs of a completed task, each for its own count.
CONTENT_FAULT_ORDER = ("content_500", "content_reset", "content_truncated", "content_not_mp4")
FAULT_DEFAULTS: dict[str, Any] = {
    "submit_429": 2,  # Retry-After seconds
    "submit_timeout": 30.0,  # seconds the answer is held back
    "expire": 0.0,  # seconds after completion until GET and /content answer 404
    **dict.fromkeys(COUNTED_FAULTS, 1),
}
DIRECTIVE = re.compile(r"\[sim:([a-z0-9_]+)(?:=([^\]]*))?\]")
NOT_MP4_BODY = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>upstream error</body></html>\n"


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
        if name in (*COUNTED_FAULTS, "content_pad", "submit_429"):
            value = int(raw)
            if value < 0:
                raise ValueError
            return value
        if name in ("submit_timeout", "expire"):
            number = float(raw)
            if number < 0:
                raise ValueError
            return number
    except (TypeError, ValueError) as exc:
        raise FaultError(f"bad value {raw!r} for fault {name}") from exc
    return raw  # fail / fail_no_error / submit_500 / submit_reset ignore their value


def prompt_faults(prompt: str) -> dict[str, Any]:
    """Faults named by ``[sim:...]`` directives in a prompt; unknown names and bad values are ignored, since
    the directive text is just part of a prompt that a real upstream would accept."""
    found: dict[str, Any] = {}
    for name, raw in DIRECTIVE.findall(prompt):
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

    def matches(self, model: str) -> bool:
        return self.model in ("*", model) and (self.times is None or self.times > 0)

    def consume(self) -> None:
        if self.times is not None:
            self.times -= 1

    def as_json(self) -> dict[str, Any]:
        return {"model": self.model, "fault": self.fault, "value": self.value, "times": self.times}


# --- image headers (Pillow is not a dependency; the three formats' headers are small) ----------------------


def image_info(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) of a PNG, JPEG or WebP from its header bytes, or None if it is none of them."""
    for reader in (_png_info, _jpeg_info, _webp_info):
        info = reader(data)
        if info is not None:
            return info if info[1] > 0 and info[2] > 0 else None
    return None


def _png_info(data: bytes) -> tuple[str, int, int] | None:
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return "png", width, height


def _jpeg_info(data: bytes) -> tuple[str, int, int] | None:
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        while i < len(data) and data[i] == 0xFF:  # fill bytes may precede a marker
            i += 1
        if i >= len(data):
            return None
        marker = data[i]
        i += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # standalone markers carry no length
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header: corrupt
            return None
        if i + 2 > len(data):
            return None
        (length,) = struct.unpack(">H", data[i : i + 2])
        # SOF0..SOF15 hold the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 7 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 3 : i + 7])
            return "jpeg", width, height
        i += length
    return None


def _webp_info(data: bytes) -> tuple[str, int, int] | None:
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # lossy: key frame start code, then 14-bit sizes
        width, height = struct.unpack("<HH", data[26:30])
        return "webp", width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:  # lossless: signature byte, then 14-bit (size - 1) fields
        (bits,) = struct.unpack("<I", data[21:25])
        return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit (canvas size - 1) fields
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return "webp", width, height
    return None


# --- tasks -------------------------------------------------------------------------------------------------


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Task:
    id: str
    model: str
    prompt: str
    size: str
    seconds: str
    quality: str
    created_at_ms: int
    duration_ms: int
    faults: dict[str, Any]
    input_reference: dict[str, Any] | None = None
    poll_requests: int = 0
    content_requests: int = 0
    fault_counts: dict[str, int] = field(default_factory=dict)  # how often each counted fault has fired

    @property
    def completed_at_ms(self) -> int:
        # Deterministic: the moment sim_seconds (as set when the task was created) have passed.
        return self.created_at_ms + self.duration_ms

    @property
    def dimensions(self) -> tuple[int, int]:
        width, height = self.size.split("x")
        return int(width), int(height)

    def failed(self) -> bool:
        return "fail" in self.faults or "fail_no_error" in self.faults

    def expired(self, at_ms: int) -> bool:
        if "expire" not in self.faults:
            return False
        return at_ms >= self.completed_at_ms + int(float(self.faults["expire"]) * 1000)

    def phase(self, at_ms: int) -> tuple[str, int]:
        """(status, progress) at a moment, derived from elapsed time alone so every reader agrees."""
        elapsed = at_ms - self.created_at_ms
        if elapsed >= self.duration_ms:
            # A failed task keeps the last progress it reported: the sequence a poller sees stays monotonic.
            return ("failed", PROGRESS_STEPS[-1][1]) if self.failed() else ("completed", 100)
        share = elapsed / self.duration_ms
        if share < QUEUED_SHARE:
            return "queued", 0
        for limit, progress in PROGRESS_STEPS:
            if share < limit:
                return "in_progress", progress
        return "in_progress", PROGRESS_STEPS[-1][1]

    def video_json(self, at_ms: int) -> dict[str, Any]:
        """The Video object of seed 002; ``completed_at`` only once completed, ``error`` only on some failures
        ("On status: failed, an error field is not always present")."""
        status, progress = self.phase(at_ms)
        body: dict[str, Any] = {
            "id": self.id,
            "object": "video",
            "model": self.model,
            "status": status,
            "progress": progress,
            "created_at": self.created_at_ms // 1000,
            "size": self.size,
            "seconds": self.seconds,
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

    def inspect_json(self, at_ms: int) -> dict[str, Any]:
        status, progress = self.phase(at_ms)
        return {
            "id": self.id,
            "model": self.model,
            "prompt": self.prompt,
            "size": self.size,
            "seconds": self.seconds,
            "quality": self.quality,
            "status": status,
            "progress": progress,
            "expired": self.expired(at_ms),
            "created_at_ms": self.created_at_ms,
            "completed_at_ms": self.completed_at_ms,
            "submit_count": 1,  # one POST creates one task; a client retry makes a second task, as upstream does
            "poll_requests": self.poll_requests,
            "content_requests": self.content_requests,
            "faults": dict(self.faults),
            "input_reference": self.input_reference,
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


# --- HTTP helpers ------------------------------------------------------------------------------------------


def error_response(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """OpenAI's error envelope: ``{"error": {"message", "type", "param", "code"}}``."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def bearer_of(request: Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def abort_connection(environ: dict[str, Any]) -> None:
    """Drop the client's connection without (finishing) an answer.

    SO_LINGER 0 makes the eventual close an RST; raising ConnectionResetError is what werkzeug's dev server
    treats as a dropped connection, so it neither logs a traceback nor tries to send a 500 afterwards.
    """
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raise ConnectionResetError("simulator fault: connection dropped on purpose")


class _QuietHandler(WSGIRequestHandler):
    """Request handler that keeps test output clean (the request log lives at ``/_sim/requests``)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return  # deliberately silent: every request is recorded under /_sim/requests instead

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            super().log(type, message, *args)


# --- the simulator -----------------------------------------------------------------------------------------


class Simulator:
    """The upstream simulator; ``start()`` serves it from a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, sim_seconds: float = 3.0) -> None:
        self.host = host
        self.port = port
        self._sim_seconds = 0.0
        self.sim_seconds = sim_seconds
        self._lock = threading.RLock()
        self._tasks: dict[str, Task] = {}
        self._requests: list[dict[str, Any]] = []
        self._model_faults: list[ModelFault] = []
        self._stopping = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._url_map = Map(
            [
                Rule("/v1/videos", endpoint="submit", methods=["POST"]),
                Rule("/v1/videos/<video_id>", endpoint="retrieve", methods=["GET"]),
                Rule("/v1/videos/<video_id>/content", endpoint="content", methods=["GET"]),
                Rule("/_sim/faults", endpoint="sim_faults", methods=["GET", "POST", "DELETE"]),
                Rule("/_sim/tasks", endpoint="sim_tasks", methods=["GET"]),
                Rule("/_sim/tasks/<video_id>", endpoint="sim_task", methods=["GET"]),
                Rule("/_sim/requests", endpoint="sim_requests", methods=["GET"]),
                Rule("/_sim/reset", endpoint="sim_reset", methods=["POST"]),
                Rule("/_sim/config", endpoint="sim_config", methods=["GET", "POST"]),
            ],
            strict_slashes=False,
        )

    # -- lifecycle --

    @property
    def sim_seconds(self) -> float:
        return self._sim_seconds

    @sim_seconds.setter
    def sim_seconds(self, value: float) -> None:
        value = float(value)
        if value < 0:
            raise ValueError("sim_seconds must be >= 0")
        self._sim_seconds = value

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"http://{host}:{self.port}"

    def _make_server(self) -> BaseWSGIServer:
        server = make_server(self.host, self.port, self, threaded=True, request_handler=_QuietHandler)
        self.port = server.server_address[1]
        return server

    def start(self) -> Simulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = self._make_server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"vidrelay-simulator-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in submit_timeout
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI's foreground mode)."""
        self._server = self._make_server()
        try:
            self._server.serve_forever()
        finally:
            self._stopping.set()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- WSGI --

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = MAX_BODY_BYTES
        entry: dict[str, Any] | None = None
        if not request.path.startswith("/_sim/"):
            # Logged on arrival (so the order is the arrival order); the status is filled in when known and
            # stays None when the connection is dropped without an answer. The key itself is never stored.
            entry = {
                "method": request.method,
                "path": request.path,
                "at_ms": now_ms(),
                "status": None,
                "had_bearer": bool(bearer_of(request)),
            }
            with self._lock:
                self._requests.append(entry)

        def recording_start_response(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            if entry is not None:
                entry["status"] = int(status.split(None, 1)[0])
            return start_response(status, headers, *args)

        response = self._dispatch(request, environ, entry)
        return response(environ, recording_start_response)

    def _dispatch(self, request: Request, environ: dict[str, Any], entry: dict[str, Any] | None) -> Response:
        adapter = self._url_map.bind_to_environ(environ)
        try:
            endpoint, args = adapter.match()
            handler = getattr(self, f"_h_{endpoint}")
            return handler(request, entry=entry, **args)
        except NotFound:
            return error_response(404, f"Invalid URL ({request.method} {request.path})", code="not_found")
        except MethodNotAllowed:
            return error_response(405, f"Method {request.method} not allowed on {request.path}")
        except HTTPException as exc:  # e.g. 413 from max_content_length while parsing the form
            return error_response(exc.code or 400, exc.description or exc.name)

    # -- /v1/videos --

    def _unauthorized(self) -> Response:
        return error_response(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="missing_api_key",
        )

    def _h_submit(self, request: Request, entry: dict[str, Any] | None) -> Response:
        if not bearer_of(request):
            return self._unauthorized()
        parsed = self._read_submit_body(request)
        if isinstance(parsed, Response):
            return parsed
        fields, files = parsed
        model = fields.get("model")
        prompt = fields.get("prompt")
        faults = prompt_faults(prompt) if isinstance(prompt, str) else {}

        # Rejections happen before validation, as a struggling upstream answers before looking at the body.
        reject = self._take_reject_fault(model if isinstance(model, str) else "", faults)
        if reject is not None:
            name, value = reject
            if name == "submit_500":
                return self._server_error()
            if name == "submit_429":
                return error_response(
                    429,
                    "Rate limit reached for requests. Please try again later.",
                    type_="requests",
                    code="rate_limit_exceeded",
                    headers={"Retry-After": str(value)},
                )
            abort_connection(request.environ)

        invalid = self._validate(fields, files)
        if isinstance(invalid, Response):
            return invalid
        model, prompt, seconds, size, reference = invalid
        faults.update(self._take_task_faults(model, faults))
        task = Task(
            id="video_" + secrets.token_hex(12),
            model=model,
            prompt=prompt,
            size=size,
            seconds=seconds,
            quality=MODELS[model]["quality"],
            created_at_ms=now_ms(),
            duration_ms=round(self.sim_seconds * 1000),
            faults={k: v for k, v in faults.items() if k in TASK_FAULTS},
            input_reference=reference,
        )
        with self._lock:
            self._tasks[task.id] = task
        if entry is not None:
            entry["task_id"] = task.id
        self._prewarm(task)
        if "submit_timeout" in task.faults:
            # The task exists upstream, but the answer comes too late for the client: the ambiguous case.
            self._stopping.wait(float(task.faults["submit_timeout"]))
        return json_response(task.video_json(now_ms()))

    def _read_submit_body(self, request: Request) -> tuple[dict[str, Any], dict[str, Any]] | Response:
        mimetype = request.mimetype
        if mimetype == "application/json" or (not mimetype and request.get_data(cache=True)[:1] == b"{"):
            body = request.get_json(force=True, silent=True)
            if not isinstance(body, dict):
                return error_response(
                    400,
                    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                    "using your HTTP library correctly.)",
                )
            return body, {}
        if mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
            # The openai SDK sends videos.create as multipart even without a file: that is text-to-video.
            return request.form.to_dict(), dict(request.files.lists())
        return error_response(
            400, f"Unsupported Content-Type {mimetype!r}: send application/json or multipart/form-data"
        )

    def _validate(
        self, fields: dict[str, Any], files: dict[str, Any]
    ) -> tuple[str, str, str, str, dict[str, Any] | None] | Response:
        model = fields.get("model")
        if model is None or model == "":
            return error_response(400, "Missing required parameter: model", param="model", code="missing")
        if not isinstance(model, str) or model not in MODELS:
            return error_response(
                400,
                f"Invalid value: {model!r}. Supported values are: 'sora-2' and 'sora-2-pro'.",
                param="model",
                code="invalid_value",
            )
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return error_response(400, "Missing required parameter: prompt", param="prompt", code="missing")
        seconds = fields.get("seconds", DEFAULT_SECONDS)
        # Strings only: seed 004 lists "passed integer 4 instead of string "4"" under this very message.
        if not isinstance(seconds, str) or seconds not in ALLOWED_SECONDS:
            return error_response(400, SECONDS_MESSAGE, param="seconds", code="invalid_value")
        size = fields.get("size", DEFAULT_SIZE)
        sizes: tuple[str, ...] = MODELS[model]["sizes"]
        if not isinstance(size, str) or size not in sizes:
            return error_response(
                400,
                f"Invalid size {size!r} for model {model}: size must be one of {', '.join(sizes)}",
                param="size",
                code="invalid_value",
            )
        reference = self._check_reference(fields, files, size)
        if isinstance(reference, Response):
            return reference
        return model, prompt, seconds, size, reference

    def _check_reference(
        self, fields: dict[str, Any], files: dict[str, Any], size: str
    ) -> dict[str, Any] | Response | None:
        uploads = files.get("input_reference") or []
        if not uploads:
            if files:
                # Seed 004: "multipart field name is wrong (must be input_reference, not image or reference)".
                return error_response(
                    400,
                    "Missing required parameter: input_reference",
                    param="input_reference",
                    code="missing",
                )
            if fields.get("input_reference") not in (None, ""):
                # Seed 004: "input_reference must be uploaded via multipart — URLs and base64 are not accepted".
                return error_response(
                    400,
                    "input_reference must be uploaded as a multipart/form-data file; URLs and base64 are not accepted",
                    param="input_reference",
                    code="invalid_value",
                )
            return None
        upload = uploads[0]  # "Only one file is supported"; extra parts are ignored, as Veo does on this path
        data = upload.stream.read()
        info = image_info(data)
        if info is None:
            return error_response(400, "Invalid file format", param="input_reference", code="invalid_value")
        kind, width, height = info
        if f"{width}x{height}" != size:
            return error_response(
                400,
                "Inpaint image must match the requested width and height",
                param="input_reference",
                code="invalid_value",
            )
        return {
            "filename": upload.filename,
            "content_type": upload.mimetype,
            "format": kind,
            "width": width,
            "height": height,
            "bytes": len(data),
        }

    def _take_reject_fault(self, model: str, faults: dict[str, Any]) -> tuple[str, Any] | None:
        for name in SUBMIT_REJECT_FAULTS:
            if name in faults:
                return name, faults[name]
        with self._lock:
            for armed in self._model_faults:
                if armed.fault in SUBMIT_REJECT_FAULTS and armed.matches(model):
                    armed.consume()
                    return armed.fault, armed.value
        return None

    def _take_task_faults(self, model: str, already: dict[str, Any]) -> dict[str, Any]:
        taken: dict[str, Any] = {}
        with self._lock:
            for armed in self._model_faults:
                if armed.fault in TASK_FAULTS and armed.matches(model) and armed.fault not in already:
                    armed.consume()
                    taken.setdefault(armed.fault, armed.value)
        return taken

    def _prewarm(self, task: Task) -> None:
        """Encode the MP4 while the task 'generates', so /content is served without delay on completion."""
        width, height = task.dimensions

        def run() -> None:
            try:
                mp4gen.mp4_path(width, height, int(task.seconds))
            except Exception as exc:  # the content handler will retry and report it
                print(f"vidrelay simulator: pre-generation failed: {exc}", file=sys.stderr)

        threading.Thread(target=run, name=f"prewarm-{task.id}", daemon=True).start()

    def _server_error(self) -> Response:
        return error_response(
            500,
            "The server had an error while processing your request. Sorry about that!",
            type_="server_error",
        )

    def _not_found(self, video_id: str) -> Response:
        return error_response(404, f"Video with id '{video_id}' not found.", param="video_id", code="video_not_found")

    def _lookup(self, video_id: str) -> Task | None:
        with self._lock:
            return self._tasks.get(video_id)

    def _h_retrieve(self, request: Request, entry: dict[str, Any] | None, video_id: str) -> Response:
        if not bearer_of(request):
            return self._unauthorized()
        task = self._lookup(video_id)
        if task is None:
            return self._not_found(video_id)
        if entry is not None:
            entry["task_id"] = task.id
        at = now_ms()
        with self._lock:
            task.poll_requests += 1
            poll_fault = task.take_count("poll_500")
        if poll_fault:
            return self._server_error()
        if task.expired(at):  # seed 002: "retained ... for 1 day only — /content returns 404 after expiration"
            return self._not_found(video_id)
        return json_response(task.video_json(at))

    def _h_content(self, request: Request, entry: dict[str, Any] | None, video_id: str) -> Response:
        if not bearer_of(request):
            return self._unauthorized()
        task = self._lookup(video_id)
        if task is None:
            return self._not_found(video_id)
        if entry is not None:
            entry["task_id"] = task.id
        variant = request.args.get("variant", "video")
        if variant != "video":
            return error_response(
                400, f"Invalid variant {variant!r}: only 'video' is available", param="variant", code="invalid_value"
            )
        at = now_ms()
        with self._lock:
            task.content_requests += 1
        if task.expired(at):
            return self._not_found(video_id)
        status, _ = task.phase(at)
        if status != "completed":
            message = (
                "Video generation failed; there is no content to download."
                if status == "failed"
                else f"Video is not ready yet (status: {status}). Poll GET /v1/videos/{video_id} until completed."
            )
            return error_response(400, message, code="video_failed" if status == "failed" else "video_not_ready")
        # Content faults only fire once there is content, so "content_500=2" means two failed downloads.
        with self._lock:
            fired = next((name for name in CONTENT_FAULT_ORDER if task.take_count(name)), None)
        if fired == "content_500":
            return self._server_error()
        if fired == "content_not_mp4":
            return Response(NOT_MP4_BODY, status=200, mimetype="video/mp4")
        width, height = task.dimensions
        path = mp4gen.mp4_path(width, height, int(task.seconds))
        total = os.path.getsize(path)
        body: Iterator[bytes] = mp4gen.iter_file(path)
        if "content_pad" in task.faults:
            try:
                body = mp4gen.iter_padded(path, int(task.faults["content_pad"]))
                total = int(task.faults["content_pad"])
            except ValueError as exc:
                return error_response(500, f"simulator: {exc}", type_="server_error", code="bad_fault")
        if fired == "content_reset":
            body = self._cut(body, max(1, total // 3), request.environ)
        elif fired == "content_truncated":
            body = self._cut(body, max(1, total // 2), None)
        # Content-Length always announces the full size, so a cut body is an error the client can notice.
        response = Response(body, status=200, mimetype="video/mp4", direct_passthrough=True)
        response.headers["Content-Length"] = str(total)
        response.headers["Content-Disposition"] = f'attachment; filename="{task.id}.mp4"'
        return response

    @staticmethod
    def _cut(body: Iterator[bytes], keep: int, reset_environ: dict[str, Any] | None) -> Iterator[bytes]:
        """Pass on the first ``keep`` bytes, then end (connection closes: truncated) or reset the connection."""
        sent = 0
        for chunk in body:
            piece = chunk[: keep - sent]
            if piece:
                yield piece
                sent += len(piece)
            if sent >= keep:
                break
        if reset_environ is not None:
            abort_connection(reset_environ)

    # -- /_sim: test control and inspection --

    def _h_sim_faults(self, request: Request, entry: dict[str, Any] | None) -> Response:
        if request.method == "DELETE":
            model = request.args.get("model")
            with self._lock:
                self._model_faults = [f for f in self._model_faults if model is not None and f.model != model]
        elif request.method == "POST":
            body = request.get_json(force=True, silent=True)
            if not isinstance(body, dict) or not isinstance(body.get("fault"), str):
                return error_response(400, 'expected {"model", "fault", "value"?, "times"?}', param="fault")
            times = body.get("times")
            if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
                return error_response(400, "times must be a positive integer or null", param="times")
            model = body.get("model") or "*"
            try:
                value = parse_fault_value(body["fault"], body.get("value"))
            except FaultError as exc:
                return error_response(400, str(exc), param="fault")
            with self._lock:
                self._model_faults.append(ModelFault(str(model), body["fault"], value, times))
        with self._lock:
            armed = [f.as_json() for f in self._model_faults if f.times is None or f.times > 0]
        return json_response(armed)

    def _h_sim_tasks(self, request: Request, entry: dict[str, Any] | None) -> Response:
        at = now_ms()
        with self._lock:
            tasks = [t.inspect_json(at) for t in self._tasks.values()]
        return json_response(tasks)

    def _h_sim_task(self, request: Request, entry: dict[str, Any] | None, video_id: str) -> Response:
        task = self._lookup(video_id)
        if task is None:
            return self._not_found(video_id)
        with self._lock:
            return json_response(task.inspect_json(now_ms()))

    def _h_sim_requests(self, request: Request, entry: dict[str, Any] | None) -> Response:
        with self._lock:
            return json_response([dict(r) for r in self._requests])

    def _h_sim_reset(self, request: Request, entry: dict[str, Any] | None) -> Response:
        self.reset()
        return json_response({"ok": True})

    def _h_sim_config(self, request: Request, entry: dict[str, Any] | None) -> Response:
        if request.method == "POST":
            body = request.get_json(force=True, silent=True)
            if not isinstance(body, dict):
                return error_response(400, 'expected {"sim_seconds": number}', param="sim_seconds")
            if "sim_seconds" in body:
                try:
                    self.sim_seconds = body["sim_seconds"]
                except (TypeError, ValueError) as exc:
                    return error_response(400, f"bad sim_seconds: {exc}", param="sim_seconds")
        return json_response({"sim_seconds": self.sim_seconds})

    # -- in-process equivalents of the /_sim endpoints --

    def reset(self) -> None:
        """Forget every task, logged request and armed fault (sim_seconds is kept)."""
        with self._lock:
            self._tasks.clear()
            self._requests.clear()
            self._model_faults.clear()

    def tasks(self) -> list[dict[str, Any]]:
        at = now_ms()
        with self._lock:
            return [t.inspect_json(at) for t in self._tasks.values()]

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._requests]

    def add_fault(self, model: str, fault: str, value: Any = None, times: int | None = None) -> None:
        parsed = parse_fault_value(fault, value)
        with self._lock:
            self._model_faults.append(ModelFault(model or "*", fault, parsed, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._model_faults.clear()


def run_forever(host: str, port: int, sim_seconds: float) -> None:
    """Serve the simulator in the foreground until Ctrl-C (``vidrelay simulator``)."""
    simulator = Simulator(host=host, port=port, sim_seconds=sim_seconds)
    server = simulator._make_server()
    simulator._server = server
    print(f"vidrelay upstream simulator on {simulator.url}/v1 (sim_seconds={sim_seconds}); any bearer key works")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("simulator stopped")  # Ctrl-C is the way to stop it: not an error
    finally:
        simulator._stopping.set()
        server.server_close()
        simulator._server = None
