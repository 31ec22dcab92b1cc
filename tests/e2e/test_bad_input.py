"""Bad input over HTTP: a 400 that names the field, what was given and what is allowed — and nothing changes.

Each case is sent to the running local stack; afterwards the tenant's job list and the upstream's request log
must be exactly as before, so a rejected request can neither create a job nor reach the provider.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LocalStackProcess

pytestmark = pytest.mark.e2e

GOOD: dict[str, Any] = {"model": "sora-2", "prompt": "a cat", "seconds": "4", "size": "1280x720"}
BOUNDARY = "vidrelayboundary"


def with_(**changes: Any) -> dict[str, Any]:
    body = {**GOOD, **changes}
    return {k: v for k, v in body.items() if v is not ...}


def multipart(fields: dict[str, str]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


# (case, request kwargs, the param the error must name, words the message must contain)
JSON_CASES: list[tuple[str, dict[str, Any], str, list[str]]] = [
    ("unknown model", {"json": with_(model="sora-9")}, "model", ["sora-9", "sora-2"]),
    ("model not a string", {"json": with_(model=2)}, "model", ["2"]),
    ("seconds as an integer", {"json": with_(seconds=4)}, "seconds", ["4", "a string"]),
    ("seconds not allowed", {"json": with_(seconds="10")}, "seconds", ["'10'", '"12"']),
    ("size of another model", {"json": with_(size="1792x1024")}, "size", ["1792x1024", "1280x720"]),
    ("size as a list", {"json": with_(size=[1280, 720])}, "size", ["1280"]),
    ("prompt missing", {"json": with_(prompt=...)}, "prompt", ["non-empty string"]),
    ("prompt empty", {"json": with_(prompt="")}, "prompt", ["non-empty string"]),
    ("prompt blank", {"json": with_(prompt="   \n ")}, "prompt", ["non-empty string"]),
    ("prompt a number", {"json": with_(prompt=42)}, "prompt", ["42", "a string"]),
    ("prompt oversized", {"json": with_(prompt="x" * 40_001)}, "prompt", ["40001", "at most"]),
    ("unknown field", {"json": with_(quality="ultra")}, "quality", ["quality"]),
    ("metadata not an object", {"json": with_(metadata="yes")}, "metadata", ["yes"]),
    ("metadata value not a string", {"json": with_(metadata={"n": 1})}, "metadata.n", ["1"]),
    ("webhook_url not a URL", {"json": with_(webhook_url="ftp://example.com/x")}, "webhook_url", ["ftp://"]),
    ("webhook_events unknown", {"json": with_(webhook_events=["video.exploded"])}, "webhook_events", ["exploded"]),
    ("body is a list", {"json": [GOOD]}, "body", ["JSON object"]),
    (
        "malformed JSON",
        {"content": b'{"model": "sora-2", "prompt": ', "headers": {"Content-Type": "application/json"}},
        "body",
        ["JSON"],
    ),
    ("empty body", {"content": b"", "headers": {"Content-Type": "application/json"}}, "body", ["empty"]),
    (
        "wrong content type",
        {"content": b"model=sora-2&prompt=a", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        "Content-Type",
        ["application/json", "multipart/form-data"],
    ),
    (
        "multipart without boundary",
        {"content": multipart(GOOD), "headers": {"Content-Type": "multipart/form-data"}},
        "Content-Type",
        ["boundary"],
    ),
    (
        "multipart with a wrong boundary",
        {"content": multipart(GOOD), "headers": {"Content-Type": "multipart/form-data; boundary=other"}},
        "body",
        ["multipart"],
    ),
    (
        "JSON nested a thousand deep",
        {
            "content": b'{"model": "sora-2", "prompt": "x", "metadata": ' + b"[" * 1000 + b"]" * 1000 + b"}",
            "headers": {"Content-Type": "application/json"},
        },
        "body",
        ["32 levels"],
    ),
    (
        "a lone surrogate in the prompt",
        {"content": b'{"model": "sora-2", "prompt": "\\ud800x"}', "headers": {"Content-Type": "application/json"}},
        "prompt",
        ["not valid Unicode"],
    ),
    (
        "a lone surrogate in metadata",
        {"content": b'{"prompt": "x", "metadata": {"k": "\\udfff"}}', "headers": {"Content-Type": "application/json"}},
        "metadata.k",
        ["not valid Unicode"],
    ),
    (
        "a JSON body that is not UTF-8",
        {"content": b'{"prompt": "\xff\xfe"}', "headers": {"Content-Type": "application/json"}},
        "body",
        ["JSON"],
    ),
    (
        "multipart with a bad value",
        {
            "content": multipart({**GOOD, "seconds": "7"}),
            "headers": {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        },
        "seconds",
        ["'7'"],
    ),
]


def job_ids(api: httpx.Client) -> list[str]:
    return [item["id"] for item in api.get("/videos", params={"limit": 100}).raise_for_status().json()["data"]]


@pytest.mark.parametrize(("case", "request_kwargs", "param", "words"), JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_bad_input_is_400_naming_the_field_and_changes_nothing(
    local_stack: LocalStackProcess, case: str, request_kwargs: dict[str, Any], param: str, words: list[str]
) -> None:
    with local_stack.http() as api:
        jobs_before = job_ids(api)
        upstream_before = local_stack.sim_submits()
        kwargs = dict(request_kwargs)
        kwargs["headers"] = {"Idempotency-Key": f"bad-{case}", **kwargs.get("headers", {})}
        response = api.post("/videos", **kwargs)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["param"] == param, error
        for word in words:
            assert word in error["message"], (word, error["message"])
        assert job_ids(api) == jobs_before
    assert local_stack.sim_submits() == upstream_before


def test_good_multipart_is_accepted(local_stack: LocalStackProcess) -> None:
    """The counterpart of the multipart cases above: the same encoding with valid values creates a job."""
    with local_stack.http() as api:
        response = api.post(
            "/videos",
            content=multipart(GOOD),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["seconds"] == "4"


def test_oversized_body_is_413(local_stack: LocalStackProcess) -> None:
    with local_stack.http() as api:
        jobs_before = job_ids(api)
        response = api.post("/videos", json=with_(metadata={"blob": "x" * 500}, prompt="y" * (7 * 1024 * 1024)))
        assert response.status_code == 413, response.text
        assert job_ids(api) == jobs_before


def test_idempotency_key_replays_and_conflicts(local_stack: LocalStackProcess) -> None:
    with local_stack.http() as api:
        first = api.post("/videos", json=GOOD, headers={"Idempotency-Key": "e2e-idem-1"}).raise_for_status().json()
        again = api.post("/videos", json=GOOD, headers={"Idempotency-Key": "e2e-idem-1"}).raise_for_status().json()
        assert again["id"] == first["id"]
        other = api.post("/videos", json=with_(prompt="a dog"), headers={"Idempotency-Key": "e2e-idem-1"})
        assert other.status_code == 409, other.text
        assert other.json()["error"]["param"] == "Idempotency-Key"
        assert job_ids(api).count(first["id"]) == 1


def test_a_body_that_is_not_utf8_without_a_key_is_401_not_a_crash(local_stack: LocalStackProcess) -> None:
    response = httpx.post(
        f"{local_stack.api_url}/videos", content=b"\xff\xfe\xfd", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


def test_size_with_an_empty_option_means_the_option_was_not_given(local_stack: LocalStackProcess) -> None:
    """`size` sets Veo's resolution/aspectRatio (and Seedance's aspect_ratio); a null or empty option beside it is
    no contradiction: it was simply not given."""
    with local_stack.http() as api:
        seedance = api.post(
            "/videos", json={"model": "seedance-2.0", "prompt": "x", "size": "720x1280", "aspect_ratio": None}
        )
        assert seedance.status_code == 200, seedance.text
        assert seedance.json()["options"]["aspect_ratio"] == "9:16"
