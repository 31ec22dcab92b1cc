"""The chat-completions dialect of seed 000: ``sora_video2`` made through ``POST /v1/chat/completions``.

One request does the whole job. With ``"stream": true`` the answer is Server-Sent Events —
``data: {chat.completion.chunk}`` lines whose ``choices[0].delta.content`` "contains progress information or
final video link", ``finish_reason: "stop"`` when done, a last chunk with ``usage``, then ``data: [DONE]``. "Video
link: Provided as Markdown link in success message", on the CDN host and "valid for only 1 day". Without
``stream`` the same text comes back as one ``chat.completion`` once the video is made.

Reference images ("up to 1 image ... both URL and Base64"): a Base64 data URL is decoded and sniffed. An http(s)
URL is recorded, not fetched — except on loopback (127.0.0.1, localhost, ::1), where it is fetched and sniffed so
local tests can prove the image they pointed at was reachable; the simulator never fetches from anywhere else.
The video shows the reference when its bytes are at hand (Base64 or loopback), as the real upstream would.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from vidrelay.simulator.cdn import Cdn
from vidrelay.simulator.faults import Dialect, text_faults
from vidrelay.simulator.frames import Scene
from vidrelay.simulator.media import describe
from vidrelay.simulator.state import SimState
from vidrelay.simulator.tasks import ALNUM, Task, now_ms, prewarm, random_text
from vidrelay.simulator.web import (
    abort_connection,
    bearer_of,
    error_response,
    json_response,
    rejected_submit,
    unauthorized,
)

# "sora_video2: Vertical screen (704x1280)"; "sora_video2-landscape: Horizontal screen (1280x704)".
MODELS: dict[str, tuple[int, int]] = {"sora_video2": (704, 1280), "sora_video2-landscape": (1280, 704)}
SECONDS = 10  # "About 2-3 minutes (for 10-second video)"
MAX_IMAGES = 1  # "Supports uploading reference images (up to 1 image)"
IMAGE_FORMATS = ("jpeg", "png", "webp")
DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^;,]*)*?);base64,(?P<data>.*)", re.DOTALL)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
FETCH_TIMEOUT_S = 10.0
# When each progress line appears, as a share of sim_seconds: queued, then generating, then percentages.
QUEUED_SHARE = 0.15
PROGRESS_SHARES = (0.3, 0.45, 0.6, 0.75, 0.9)
FAILURE_TEXT = "> Generation failed: your request was blocked by the content policy.\n"


@dataclass
class ChatTask(Task):
    stream: bool = False
    chunks_sent: int = 0  # content chunks delivered (the role-only opening chunk not counted)
    stream_cut: bool = False
    stream_finished: bool = False
    dialect: ClassVar[Dialect] = "chat"

    def failed(self) -> bool:
        return super().failed() or "stream_fail" in self.faults

    def progress_lines(self) -> list[tuple[float, int | None, str]]:
        """(share of sim_seconds, progress %, text) of every line before the outcome."""
        lines: list[tuple[float, int | None, str]] = [(0.0, 0, "> Queued…\n"), (QUEUED_SHARE, 0, "> Generating…\n")]
        for share in PROGRESS_SHARES:
            percent = round((share - QUEUED_SHARE) / (1 - QUEUED_SHARE) * 100)
            lines.append((share, percent, f"> Progress: {percent}%\n"))
        return lines

    def script(self) -> list[tuple[int, str]]:
        """(ms after creation, content) of every content chunk the stream sends, outcome included."""
        lines = [(round(share * self.duration_ms), text) for share, _, text in self.progress_lines()]
        if "fail" in self.faults or "stream_fail" in self.faults:
            lines.append((self.duration_ms, FAILURE_TEXT))
        elif "fail_no_error" not in self.faults and self.link is not None:
            lines.append((self.duration_ms, "> Video generated ✅\n\n"))
            lines.append((self.duration_ms, f"[Click to download]({self.link.url})"))
        return lines

    def cut_after(self) -> int | None:
        """Content chunks delivered before ``stream_cut`` drops the connection: never past the progress lines,
        so the link is never among them."""
        if "stream_cut" not in self.faults:
            return None
        return min(int(self.faults["stream_cut"]), len(self.progress_lines()))

    def status_at(self, at_ms: int) -> tuple[str, int | None]:
        if self.finished(at_ms):
            return ("failed", None) if self.failed() else ("completed", 100)
        share = self.share(at_ms)
        if share < QUEUED_SHARE:
            return "queued", 0
        shown = [percent for start, percent, _ in self.progress_lines() if start <= share]
        return "in_progress", shown[-1] if shown else 0

    def content(self) -> str:
        return "".join(text for _, text in self.script())

    def usage(self) -> dict[str, int]:
        # Roughly four characters a token, like the tokenizers' English average; the seed only says it is there.
        prompt_tokens = max(1, math.ceil(len(self.prompt) / 4))
        completion_tokens = max(1, math.ceil(len(self.content()) / 4))
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    def public_json(self, at_ms: int) -> dict[str, Any]:
        """The non-streamed answer: one ``chat.completion`` with the whole text."""
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created_at_ms // 1000,
            "model": self.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": self.content()}, "finish_reason": "stop"}
            ],
            "usage": self.usage(),
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created_at_ms // 1000,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        return sse(body)

    def usage_chunk(self) -> bytes:
        # OpenAI's shape for the usage chunk: no choices, only usage ("Last message contains token usage").
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created_at_ms // 1000,
            "model": self.model,
            "choices": [],
            "usage": self.usage(),
        }
        return sse(body)

    def inspect_extra(self, at_ms: int) -> dict[str, Any]:
        return {
            "quality": None,
            "input_reference": None,
            "stream": {
                "requested": self.stream,
                "chunks_sent": self.chunks_sent,
                "cut": self.stream_cut,
                "finished": self.stream_finished,
            },
        }


def sse(body: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"


def openai_error(status: int, message: str, param: str | None = None, code: str | None = None) -> Response:
    return error_response(status, message, param=param, code=code)


class ChatApi:
    def __init__(self, state: SimState, cdn: Cdn) -> None:
        self.state = state
        self.cdn = cdn

    def rules(self) -> list[Rule]:
        return [Rule("/v1/chat/completions", endpoint=self.create, methods=["POST"])]

    def create(self, request: Request, entry: dict[str, Any]) -> Response:
        if not bearer_of(request):
            return unauthorized()
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return openai_error(400, "We could not parse the JSON body of your request.")
        model = body.get("model")
        messages = body.get("messages")
        texts = all_texts(messages)
        named = text_faults("\n".join(texts), "chat")
        reject = self.state.take_reject_fault(model if isinstance(model, str) else "", named, "chat")
        if reject is not None:
            return rejected_submit(*reject, request.environ)

        if not isinstance(model, str) or model not in MODELS:
            return openai_error(
                400,
                f"The model `{model}` does not exist or you do not have access to it. Available: {', '.join(MODELS)}.",
                param="model",
                code="model_not_found",
            )
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            return openai_error(400, f"Invalid type for 'stream': expected a boolean, got {stream!r}", "stream")
        read = read_messages(messages)
        if isinstance(read, Response):
            return read
        prompt, images = read
        files = []
        shown: list[bytes] = []
        for param, url in images:
            fetched = fetch_reference(param, url)
            if isinstance(fetched, Response):
                return fetched
            record, data = fetched
            files.append(record)
            if data is not None:
                shown.append(data)

        faults = self.state.task_faults(model, named, "chat")
        created = now_ms()
        duration = self.state.duration_ms()
        width, height = MODELS[model]
        task = ChatTask(
            id="chatcmpl-" + random_text(29, ALNUM),
            model=model,
            prompt=prompt,
            width=width,
            height=height,
            seconds=SECONDS,
            created_at_ms=created,
            duration_ms=duration,
            faults=faults,
            params=summarize_body(body),
            files=files,
            scene=Scene(prompt, tuple(shown)),
            stream=stream,
        )
        if not task.failed():
            task.link = self.cdn.link(created + duration, faults)
        self.state.add(task)
        entry["task_id"] = task.id
        prewarm(task)
        if "submit_timeout" in task.faults:
            self.state.stopping.wait(float(task.faults["submit_timeout"]))
        if stream:
            response = Response(self._events(task, request.environ), mimetype="text/event-stream")
            response.headers["Cache-Control"] = "no-cache"
            response.headers["X-Accel-Buffering"] = "no"
            return response
        return self._whole(task, request.environ)

    def _wait_until(self, task: Task, offset_ms: int) -> bool:
        """Sleep until ``offset_ms`` after the task's creation; False if the simulator is stopping."""
        remaining = task.created_at_ms + offset_ms - now_ms()
        return not (remaining > 0 and self.state.stopping.wait(remaining / 1000))

    def _events(self, task: ChatTask, environ: dict[str, Any]) -> Iterator[bytes]:
        # Each chunk is yielded when its moment comes; werkzeug writes and flushes every yielded piece.
        yield task.chunk({"role": "assistant", "content": ""})
        cut_after = task.cut_after()
        for offset_ms, text in task.script():
            if cut_after is not None and task.chunks_sent >= cut_after:
                with self.state.lock:
                    task.stream_cut = True
                abort_connection(environ)
            if not self._wait_until(task, offset_ms):
                return
            yield task.chunk({"content": text})
            with self.state.lock:
                task.chunks_sent += 1
        yield task.chunk({}, "stop")
        yield task.usage_chunk()
        yield b"data: [DONE]\n\n"
        with self.state.lock:
            task.stream_finished = True

    def _whole(self, task: ChatTask, environ: dict[str, Any]) -> Response:
        cut_after = task.cut_after()
        script = task.script()
        if cut_after is not None:
            # Without a stream, a cut connection means no answer at all, at the moment the stream would break.
            self._wait_until(task, script[cut_after][0] if cut_after < len(script) else task.duration_ms)
            with self.state.lock:
                task.stream_cut = True
            abort_connection(environ)
        self._wait_until(task, task.duration_ms)
        with self.state.lock:
            task.stream_finished = True
        return json_response(task.public_json(now_ms()))


def all_texts(messages: Any) -> list[str]:
    """Every text in the messages, whatever their shape (faults are read from them before validation)."""
    texts: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return texts


def read_messages(messages: Any) -> tuple[str, list[tuple[str, str]]] | Response:
    """(the prompt: the last user message's text, [(param, image URL)])."""
    if not isinstance(messages, list) or not messages:
        return openai_error(400, "messages must be a non-empty array", "messages")
    prompt: str | None = None
    images: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return openai_error(400, f"messages[{i}] must be an object with a role", f"messages[{i}]")
        content = message.get("content")
        texts: list[str] = []
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for j, part in enumerate(content):
                param = f"messages[{i}].content[{j}]"
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif kind == "image_url":
                    image = part.get("image_url")
                    url = image.get("url") if isinstance(image, dict) else image
                    if not isinstance(url, str) or not url:
                        return openai_error(400, f"{param}.image_url.url must be a string", f"{param}.image_url.url")
                    images.append((f"{param}.image_url.url", url))
                else:
                    return openai_error(400, f"{param} must be a text or image_url part", param)
        else:
            return openai_error(400, f"messages[{i}].content must be a string or an array", f"messages[{i}].content")
        if message["role"] == "user":
            prompt = "\n".join(texts)
    if prompt is None or not prompt.strip():
        return openai_error(400, "The last user message must contain the video description", "messages")
    if len(images) > MAX_IMAGES:
        return openai_error(
            400, f"At most {MAX_IMAGES} reference image is supported (got {len(images)})", images[MAX_IMAGES][0]
        )
    return prompt, images


def fetch_reference(param: str, url: str) -> tuple[dict[str, Any], bytes | None] | Response:
    """The reference image as the simulator records it, and its bytes when it has them (see the module
    docstring for what is fetched)."""
    data_url = DATA_URL.fullmatch(url)
    if data_url is not None:
        try:
            data = base64.b64decode(data_url["data"], validate=True)
        except (binascii.Error, ValueError):
            return openai_error(400, f"{param} is not valid Base64", param, "invalid_image")
        record = describe(param, None, data_url["type"], data)
        record.update(source="base64", url=None, fetched=False)
        return check_image(param, record, data)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return openai_error(400, f"{param} must be an http(s) URL or a data:image/...;base64 URL", param)
    if parts.hostname not in LOOPBACK_HOSTS:
        return {"field": param, "source": "url", "url": url, "fetched": False, "kind": None, "bytes": None}, None
    try:
        fetched = httpx.get(url, timeout=FETCH_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return openai_error(400, f"Failed to download the image at {param}: {exc}", param, "invalid_image")
    if fetched.status_code != 200:
        return openai_error(
            400, f"Failed to download the image at {param}: HTTP {fetched.status_code}", param, "invalid_image"
        )
    record = describe(param, None, fetched.headers.get("Content-Type"), fetched.content)
    record.update(source="url", url=url, fetched=True)
    return check_image(param, record, fetched.content)


def check_image(param: str, record: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes] | Response:
    if record["kind"] != "image" or record["format"] not in IMAGE_FORMATS:
        return openai_error(
            400, f"{param} is not a JPEG, PNG or WebP image ({record['bytes']} bytes)", param, "invalid_image"
        )
    return record, data


def summarize_body(body: dict[str, Any]) -> dict[str, Any]:
    """The request as received, with Base64 images shortened to their size (they are in ``files``)."""

    def shorten(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("data:") and len(value) > 200:
            head = value.split(",", 1)[0]
            return f"{head},<{len(value) - len(head) - 1} base64 characters>"
        if isinstance(value, dict):
            return {k: shorten(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shorten(v) for v in value]
        return value

    return {key: shorten(value) for key, value in body.items()}
