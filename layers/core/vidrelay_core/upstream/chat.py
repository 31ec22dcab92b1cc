"""The chat-completions streaming dialect (seed 000, sora_video2): one long request whose answer is the job.

The request is `POST /v1/chat/completions` with `"stream": true`; an optional reference image goes inside the
user message as an `image_url` part (seed 000: "up to 1 image, supports both URL and Base64" — we send the
prepared image as a base64 data URL, so the upstream never fetches a client-given URL). The answer is SSE:
`chat.completion.chunk`s whose `choices[0].delta.content` carries progress text and, in the success message,
the video as a Markdown link; `finish_reason: "stop"` ends it and the last chunk carries `usage`. Nothing can be
polled and nothing resubmitted: a stream cut before the link is lost (the upstream may already have billed it).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx

from ..errors import UpstreamAmbiguous, UpstreamRejected
from ..jobs import Job
from ..timeouts import longest_request_s
from .base import (
    Account,
    ContentRequest,
    PollResult,
    References,
    StreamUpdate,
    SubmitResult,
    UpstreamUnavailable,
    bearer,
    check_submit_answer,
    json_of,
)

PATH = "/v1/chat/completions"
# Progress arrives every few seconds while the video renders; a minute of silence means the stream is dead.
STREAM_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=20.0, pool=5.0)


def longest_stream_silence_s(failover_budget_s: float, *, lease_s: float, renewals_per_lease: float) -> float:
    """The longest a live streamer goes without writing its lease. Before the first chunk: the last account may
    be tried `failover_budget_s` after the lease was taken, and its request runs every phase once. After it:
    every chunk is a sign of life, and the lease is renewed on the first chunk `lease_s / renewals_per_lease`
    after the last renewal, which may come a whole read timeout later."""
    first_chunk = failover_budget_s + longest_request_s(STREAM_TIMEOUT)
    between_renewals = lease_s / renewals_per_lease + (STREAM_TIMEOUT.read or 0.0)
    return max(first_chunk, between_renewals)


LINK = re.compile(r"\[[^\]]*\]\((https?://[^)\s]+)\)")
PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")
MAX_KEPT_CHARS = 64 * 1024


def request_body(job: Job, references: References) -> dict[str, Any]:
    content: str | list[dict[str, Any]] = job.prompt
    if references:
        stored, data = references[0]
        encoded = base64.b64encode(data).decode("ascii")
        content = [
            {"type": "text", "text": job.prompt},
            {"type": "image_url", "image_url": {"url": f"data:{stored.content_type};base64,{encoded}"}},
        ]
    return {"model": job.model, "messages": [{"role": "user", "content": content}], "stream": True}


class ChatAdapter:
    def __init__(self, account: Account, client: httpx.Client) -> None:
        self.account = account
        self._client = client

    def submit(self, job: Job, references: References = ()) -> SubmitResult:
        raise TypeError(f"{job.model} streams its result: the streamer drives it (Relay.stream), never a submit")

    def poll(self, job: Job) -> PollResult:
        raise TypeError(f"{job.model} has nothing to poll: its progress arrives in the stream")

    def content_request(self, job: Job) -> ContentRequest:
        if not job.result_url:
            raise ValueError(f"{job.id}: no video link recorded")
        # The link is on the upstream's file host: our key never goes there.
        return ContentRequest(method="GET", url=job.result_url, headers={})

    def stream(self, job: Job, references: References = ()) -> Iterator[StreamUpdate]:
        from httpx_sse import EventSource

        request = self._client.build_request(
            "POST",
            f"{self.account.base_url}{PATH}",
            headers={**bearer(self.account), "Accept": "text/event-stream"},
            json=request_body(job, references),
            timeout=STREAM_TIMEOUT,
        )
        try:
            response = self._client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise UpstreamUnavailable(
                f"upstream unreachable: {type(exc).__name__}", code="upstream_unavailable"
            ) from None
        except httpx.TransportError as exc:
            raise UpstreamAmbiguous(
                f"no answer from the upstream after the request was sent ({type(exc).__name__})",
                code="upstream_stream_interrupted",
            ) from None
        try:
            if response.status_code != 200:
                response.read()
                data = json_of(response)
                check_submit_answer(response, data, None)
                raise UpstreamRejected(
                    f"upstream answered HTTP {response.status_code}",
                    code="upstream_rejected",
                    status=response.status_code,
                )
            yield from _read(EventSource(response))
        finally:
            response.close()


def _read(source: Any) -> Iterator[StreamUpdate]:
    text = ""
    task_id: str | None = None
    link: str | None = None
    finished = False
    progress = -1
    usage: dict[str, int] | None = None
    try:
        for event in source.iter_sse():
            if event.data.strip() == "[DONE]":
                break
            try:
                chunk = json.loads(event.data)
            except ValueError:
                chunk = None  # a keep-alive or comment line: no content, but a sign of life
            if not isinstance(chunk, dict):
                yield StreamUpdate(task_id=task_id)
                continue
            if task_id is None and isinstance(chunk.get("id"), str):
                task_id = chunk["id"]
                yield StreamUpdate(task_id=task_id, progress=0)
            if isinstance(chunk.get("usage"), dict):
                usage = {k: int(v) for k, v in chunk["usage"].items() if isinstance(v, int | float)}
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or choice.get("message") or {}
                piece = delta.get("content") if isinstance(delta, dict) else None
                if isinstance(piece, str) and piece:
                    text = (text + piece)[-MAX_KEPT_CHARS:]
                    found = LINK.findall(text)
                    link = found[-1] if found else link
                    seen = [float(p) for p in PERCENT.findall(piece) if float(p) <= 100]
                    if seen and int(seen[-1]) > progress and link is None:
                        progress = int(seen[-1])
                if choice.get("finish_reason") == "stop":
                    finished = True
            if link is None:
                # Every chunk is a sign of life (queue text like "> Queued…" carries no percentage): the streamer
                # renews its lease on these, so a long queue wait is not taken for a dead stream.
                yield StreamUpdate(task_id=task_id, progress=min(progress, 99) if progress >= 0 else None)
    except httpx.TransportError as exc:
        if link is None:
            raise UpstreamAmbiguous(
                f"the stream was cut before the video link arrived ({type(exc).__name__})",
                code="upstream_stream_interrupted",
            ) from None
    if link is not None:
        yield StreamUpdate(task_id=task_id, progress=99, content_url=link, usage=usage)
        return
    if finished:
        last = next((line.strip("> ").strip() for line in reversed(text.splitlines()) if line.strip()), "")
        yield StreamUpdate(task_id=task_id, failed=last[:500] or "the upstream ended without a video", usage=usage)
        return
    raise UpstreamAmbiguous("the stream ended before the video link arrived", code="upstream_stream_interrupted")
