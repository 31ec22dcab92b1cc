"""The generations (seed 001) and chat (seed 000) adapters against recorded upstream answers: what goes on the
wire, how status words and failures are read, and that the key never goes to a result link."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from vidrelay_core.errors import UpstreamAmbiguous, UpstreamRejected, UpstreamUnavailable
from vidrelay_core.jobs import Job, StoredReference
from vidrelay_core.upstream.base import Account, accounts_for
from vidrelay_core.upstream.chat import ChatAdapter
from vidrelay_core.upstream.generations import GenerationsAdapter
from vidrelay_core.upstream.videos import VideosAdapter

ACCOUNT = Account("generations", "https://up.example", "sk-up-secret", "generations-1")


def job(**changes: object) -> Job:
    return Job(
        id="video_1",
        tenant="t",
        model="seedance-2.0",
        family="generations",
        provider="yelinai",
        prompt="@IMG_1 and @IMG_2 dancing with @VID_1",
        seconds="5",
        size="1280x720",
        created_at=1.0,
        options={"aspect_ratio": "16:9"},
    ).with_changes(**changes)


def client(handler: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request]) -> httpx.Client:
    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return httpx.Client(transport=httpx.MockTransport(record))


def ref(field: str, n: int, content_type: str = "image/png") -> tuple[StoredReference, bytes]:
    ext = "mp4" if content_type == "video/mp4" else "png"
    kind = "video" if content_type == "video/mp4" else "image"
    return StoredReference(field, f"inputs/t/video_1/{n}-{field}.{ext}", content_type, kind, 3), f"data{n}".encode()


def parts(request: httpx.Request) -> list[tuple[str, bytes]]:
    """(field name, content) of each multipart part, in order."""
    body = request.read()
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    found = []
    for chunk in body.split(b"--" + boundary)[1:-1]:
        head, _, content = chunk.partition(b"\r\n\r\n")
        name = head.split(b'name="')[1].split(b'"')[0].decode()
        found.append((name, content[:-2]))
    return found


def test_seedance_submit_is_multipart_in_upload_order_with_integer_text_duration() -> None:
    seen: list[httpx.Request] = []
    answer = {"task_id": "task-20260501120000-abc123", "status": "pending", "created_at": "2026-05-01T12:00:00Z"}
    adapter = GenerationsAdapter(ACCOUNT, client(lambda r: httpx.Response(200, json=answer), seen))
    references = [ref("files", 1), ref("files", 2), ref("files", 3, "video/mp4"), ref("first_frame_image", 4)]

    result = adapter.submit(job(references=tuple(r for r, _ in references)), references)

    assert (result.task_id, result.state) == ("task-20260501120000-abc123", "queued")
    (request,) = seen
    assert request.url == "https://up.example/v1/video/generations"
    assert request.headers["authorization"] == "Bearer sk-up-secret"
    assert parts(request) == [
        ("model", b"seedance-2.0"),
        ("prompt", b"@IMG_1 and @IMG_2 dancing with @VID_1"),
        ("duration", b"5"),
        ("aspect_ratio", b"16:9"),
        ("files", b"data1"),
        ("files", b"data2"),
        ("files", b"data3"),
        ("first_frame_image", b"data4"),
    ]


def test_seedance_text_to_video_is_still_multipart() -> None:
    seen: list[httpx.Request] = []
    adapter = GenerationsAdapter(
        ACCOUNT, client(lambda r: httpx.Response(200, json={"task_id": "task-1", "status": "pending"}), seen)
    )
    adapter.submit(job(prompt="a cat"))
    assert seen[0].headers["content-type"].startswith("multipart/form-data")


@pytest.mark.parametrize(
    ("answer", "state", "progress", "url"),
    [
        ({"status": "pending"}, "queued", 0, None),
        ({"status": "running", "progress": 50}, "in_progress", 50, None),
        # Seed 001: succeeded is not yet downloadable; only completed carries video_url.
        ({"status": "succeeded", "progress": 100}, "in_progress", 100, None),
        (
            {"status": "completed", "video_url": "https://cdn.example/v.mp4?sig=1"},
            "completed",
            0,
            "https://cdn.example/v.mp4?sig=1",
        ),
    ],
)
def test_seedance_status_words(answer: dict[str, object], state: str, progress: int, url: str | None) -> None:
    adapter = GenerationsAdapter(ACCOUNT, client(lambda r: httpx.Response(200, json={"task_id": "t", **answer}), []))
    result = adapter.poll(job(upstream_task_id="t"))
    assert (result.state, result.content_url) == (state, url)
    assert result.progress >= progress


def test_seedance_failure_carries_its_error_and_the_link_is_fetched_without_the_key() -> None:
    failed = {
        "task_id": "t",
        "status": "failed",
        "error": {"code": "GENERATION_FAILED", "message": "Video generation failed"},
    }
    adapter = GenerationsAdapter(ACCOUNT, client(lambda r: httpx.Response(200, json=failed), []))
    result = adapter.poll(job(upstream_task_id="t"))
    assert (result.state, result.error_code, result.error_message) == (
        "failed",
        "GENERATION_FAILED",
        "Video generation failed",
    )
    request = adapter.content_request(job(result_url="https://cdn.example/v.mp4?sig=1"))
    assert request.headers == {} and request.url == "https://cdn.example/v.mp4?sig=1"


def test_completed_without_a_link_is_asked_again_not_failed() -> None:
    adapter = GenerationsAdapter(ACCOUNT, client(lambda r: httpx.Response(200, json={"status": "completed"}), []))
    with pytest.raises(UpstreamUnavailable):
        adapter.poll(job(upstream_task_id="t"))


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(429, headers={"retry-after": "7"}), UpstreamUnavailable),
        (httpx.Response(503, json={"error": {"message": "busy"}}), UpstreamUnavailable),
        (httpx.Response(500, json={"task_id": "task-1"}), UpstreamAmbiguous),
        (httpx.Response(400, json={"error": {"message": "bad aspect_ratio"}}), UpstreamRejected),
        (httpx.Response(200, json={"status": "pending"}), UpstreamAmbiguous),
    ],
)
def test_submit_refusals_say_whether_they_may_be_billed(response: httpx.Response, error: type[Exception]) -> None:
    adapter = GenerationsAdapter(ACCOUNT, client(lambda r: response, []))
    with pytest.raises(error):
        adapter.submit(job(prompt="a cat"))


def test_veo_sends_duration_as_a_string_form_field_with_its_options() -> None:
    seen: list[httpx.Request] = []
    answer = {"id": "task_abcdefgh12345678", "task_id": "task_abcdefgh12345678", "status": "queued", "progress": 0}
    adapter = VideosAdapter(
        Account("videos", "https://api.example", "sk-v"), client(lambda r: httpx.Response(200, json=answer), seen)
    )
    image = ref("input_reference", 1)
    veo = job(
        model="veo-3.1-fast-generate-preview",
        family="videos",
        prompt="lighthouse",
        seconds="8",
        options={"resolution": "720p", "aspectRatio": "16:9", "seed": "20260521"},
        references=(image[0],),
    )
    assert adapter.submit(veo, [image]).task_id == "task_abcdefgh12345678"
    assert dict(parts(seen[0])) == {
        "model": b"veo-3.1-fast-generate-preview",
        "prompt": b"lighthouse",
        "duration": b"8",
        "size": b"1280x720",
        "resolution": b"720p",
        "aspectRatio": b"16:9",
        "seed": b"20260521",
        "input_reference": b"data1",
    }


# -- chat (seed 000) --------------------------------------------------------------------------------------------


def sse(*chunks: object) -> bytes:
    lines = [f"data: {json.dumps(c) if not isinstance(c, str) else c}\n\n" for c in chunks]
    return "".join(lines).encode()


def chunk(content: str | None = None, finish: str | None = None, **extra: object) -> dict[str, object]:
    delta = {"content": content} if content is not None else {}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "sora_video2",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


CHAT = Account("chat", "https://chat.example", "sk-chat-secret", "chat-1")
SORA_VIDEO2 = job(model="sora_video2", family="chat", prompt="a paper boat", seconds="10", size="704x1280", options={})


def stream_of(body: bytes, seen: list[httpx.Request] | None = None, status: int = 200) -> Iterator[object]:
    adapter = ChatAdapter(
        CHAT,
        client(
            lambda r: httpx.Response(status, content=body, headers={"content-type": "text/event-stream"}),
            seen if seen is not None else [],
        ),
    )
    return adapter.stream(SORA_VIDEO2, [ref("input_reference", 1)])


def test_a_stream_reports_progress_then_the_link_and_usage() -> None:
    seen: list[httpx.Request] = []
    body = sse(
        chunk("> Queued\n"),
        chunk("> Progress: 36%\n"),
        chunk("> Progress: 80%\n"),
        chunk("> Video generated: [Click to download](https://files.example/v.mp4?Expires=1&Signature=ab)\n"),
        chunk(finish="stop"),
        {**chunk(), "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52}},
        "[DONE]",
    )
    updates = list(stream_of(body, seen))

    # Every chunk is a sign of life the streamer renews its lease on; the progress only climbs.
    assert [u.progress for u in updates[:-1] if u.progress is not None] == [0, 36, 80]
    assert len(updates) == 5
    assert updates[0].task_id == "chatcmpl-1"
    assert updates[-1].content_url == "https://files.example/v.mp4?Expires=1&Signature=ab"
    assert updates[-1].usage == {"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52}
    sent = json.loads(seen[0].read())
    assert sent["stream"] is True and sent["model"] == "sora_video2"
    text, image = sent["messages"][0]["content"]
    assert text == {"type": "text", "text": "a paper boat"}
    assert image["image_url"]["url"].startswith("data:image/png;base64,")


def test_a_stream_that_ends_without_a_link_is_interrupted_never_retried() -> None:
    with pytest.raises(UpstreamAmbiguous) as caught:
        list(stream_of(sse(chunk("> Progress: 36%\n"))))
    assert caught.value.code == "upstream_stream_interrupted"


def test_a_stream_that_says_it_failed_is_a_failure_with_its_words() -> None:
    updates = list(
        stream_of(sse(chunk("> Progress: 10%\n"), chunk("> Generation failed: content policy\n"), chunk(finish="stop")))
    )
    assert updates[-1].failed == "Generation failed: content policy"


def test_a_refused_stream_may_fail_over_and_the_link_gets_no_key() -> None:
    with pytest.raises(UpstreamUnavailable):
        list(stream_of(b'{"error": {"message": "busy"}}', status=503))
    with pytest.raises(UpstreamRejected):
        list(stream_of(b'{"error": {"message": "no such model"}}', status=400))
    adapter = ChatAdapter(CHAT, httpx.Client())
    assert adapter.content_request(SORA_VIDEO2.with_changes(result_url="https://files.example/v.mp4")).headers == {}


# -- accounts ---------------------------------------------------------------------------------------------------


def test_accounts_come_in_failover_order_and_never_show_their_keys() -> None:
    env = {
        "VIDRELAY_UPSTREAM_CHAT_BASE_URL": "https://a.example/",
        "VIDRELAY_UPSTREAM_CHAT_API_KEY": "sk-first",
        "VIDRELAY_UPSTREAM_CHAT_ACCOUNTS": json.dumps(
            [{"name": "backup", "base_url": "https://b.example", "api_key": "sk-second"}]
        ),
    }
    first, second = accounts_for("chat", env)
    assert (first.name, first.base_url, second.name, second.base_url) == (
        "chat-1",
        "https://a.example",
        "backup",
        "https://b.example",
    )
    assert "sk-first" not in repr(first) and "sk-second" not in repr(second)
    with pytest.raises(RuntimeError, match="no upstream account"):
        accounts_for("generations", {})


def test_a_refused_account_fails_over_and_its_key_never_reaches_the_message() -> None:
    refused = httpx.Response(401, json={"error": {"message": "Incorrect API key provided: sk-up-secret"}})
    with pytest.raises(UpstreamUnavailable) as caught:
        GenerationsAdapter(ACCOUNT, client(lambda r: refused, [])).submit(job(prompt="a cat"))
    assert caught.value.code == "upstream_account_refused"
    quoted = httpx.Response(400, json={"error": {"message": "bad request for key sk-up-secret (Bearer sk-up-secret)"}})
    with pytest.raises(UpstreamRejected) as rejected:
        GenerationsAdapter(ACCOUNT, client(lambda r: quoted, [])).submit(job(prompt="a cat"))
    assert "sk-up-secret" not in rejected.value.message and "[redacted]" in rejected.value.message


def test_a_backup_account_whose_key_cannot_be_read_is_left_out() -> None:
    env = {
        "VIDRELAY_UPSTREAM_VIDEOS_BASE_URL": "https://a.example",
        "VIDRELAY_UPSTREAM_VIDEOS_API_KEY": "sk-first",
        "VIDRELAY_UPSTREAM_VIDEOS_ACCOUNTS": json.dumps([{"name": "broken", "base_url": "https://b.example"}]),
    }
    assert [a.name for a in accounts_for("videos", env)] == ["videos-1"]
