"""JSON and multipart bodies as API Gateway delivers them."""

from __future__ import annotations

import base64

import pytest
from vidrelay_core.bodies import MAX_BODY_BYTES, parse_body, raw_body
from vidrelay_core.errors import InvalidRequest, PayloadTooLarge


def multipart(parts: list[tuple[str, str | bytes, str | None]], boundary: str = "XyZ") -> tuple[str, bytes]:
    chunks = []
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        head += "Content-Type: image/png\r\n\r\n" if filename else "\r\n"
        data = value if isinstance(value, bytes) else value.encode()
        chunks.append(head.encode() + data + b"\r\n")
    return f"multipart/form-data; boundary={boundary}", b"".join(chunks) + f"--{boundary}--\r\n".encode()


def test_json_object():
    assert parse_body("application/json", b'{"prompt": "x"}').fields == {"prompt": "x"}


@pytest.mark.parametrize("data", [b"", b"{nope", b"[1, 2]", b'"text"'])
def test_bad_json_names_the_body(data):
    with pytest.raises(InvalidRequest) as caught:
        parse_body("application/json", data)
    assert caught.value.param == "body"


def test_multipart_fields_and_files():
    content_type, data = multipart(
        [("model", "sora-2", None), ("prompt", "héllo", None), ("input_reference", b"\x89PNG...", "r.png")]
    )
    body = parse_body(content_type, data)
    assert body.fields == {"model": "sora-2", "prompt": "héllo"}
    assert body.files["input_reference"][0].filename == "r.png"
    assert body.multipart


def test_multipart_without_boundary_or_with_wrong_boundary():
    _, data = multipart([("prompt", "x", None)])
    with pytest.raises(InvalidRequest):
        parse_body("multipart/form-data", data)
    with pytest.raises(InvalidRequest):
        parse_body("multipart/form-data; boundary=other", data)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_names_the_header(content_type):
    with pytest.raises(InvalidRequest) as caught:
        parse_body(content_type, b"prompt=x")
    assert caught.value.param == "Content-Type"


def test_oversized_body_is_413():
    with pytest.raises(PayloadTooLarge):
        parse_body("application/json", b" " * (MAX_BODY_BYTES + 1))


def test_base64_body_decoding():
    assert raw_body(base64.b64encode(b"abc").decode(), True) == b"abc"
    with pytest.raises(InvalidRequest):
        raw_body("***", True)


def form(parts: list[tuple[str, str]]) -> tuple[str, bytes]:
    return multipart([(name, value, None) for name, value in parts])


def test_bracket_fields_make_an_object_as_the_openai_sdks_send_it():
    body = parse_body(*form([("metadata[order]", "42"), ("metadata[customer]", "acme")]))
    assert body.fields == {"metadata": {"order": "42", "customer": "acme"}}


def test_repeated_parts_make_a_list_with_or_without_brackets():
    body = parse_body(*form([("webhook_events[]", "video.completed"), ("webhook_events[]", "video.failed")]))
    assert body.fields == {"webhook_events": ["video.completed", "video.failed"]}
    body = parse_body(*form([("event_types", "video.queued"), ("event_types", "video.failed")]))
    assert body.fields == {"event_types": ["video.queued", "video.failed"]}
    assert parse_body(*form([("webhook_events[]", "video.failed")])).fields == {"webhook_events": ["video.failed"]}


def test_file_parts_of_a_list_may_carry_brackets():
    content_type, data = multipart([("files[]", b"\x89PNG1", "1.png"), ("files[]", b"\x89PNG2", "2.png")])
    body = parse_body(content_type, data)
    assert [f.filename for f in body.files["files"]] == ["1.png", "2.png"]


@pytest.mark.parametrize(
    "parts",
    [
        [("metadata[a][b]", "1")],
        [("metadata[a]", "1"), ("metadata", "text")],
        [("metadata", "text"), ("metadata[a]", "1")],
    ],
)
def test_nesting_deeper_than_one_level_or_mixed_shapes_are_refused_by_name(parts):
    with pytest.raises(InvalidRequest) as caught:
        parse_body(*form(parts))
    assert caught.value.param == parts[-1][0]
    assert parts[-1][0] in caught.value.message


def test_nesting_is_bounded_before_parsing_but_brackets_inside_strings_do_not_count():
    from vidrelay_core.bodies import MAX_JSON_DEPTH, json_depth

    deep = b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(InvalidRequest) as caught:
        parse_body("application/json", deep)
    assert caught.value.param == "body" and f"{MAX_JSON_DEPTH} levels" in caught.value.message
    quoted = b'{"prompt": "' + b"[{" * 5000 + b'\\" ]"}'
    assert json_depth(quoted) == 1
    assert parse_body("application/json", quoted).fields["prompt"].startswith("[{")
