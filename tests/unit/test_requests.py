"""Validation of POST /v1/videos against the catalog: every rejection names the field, the value and the rule."""

from __future__ import annotations

import pytest
from vidrelay_core.errors import InvalidRequest
from vidrelay_core.requests import parse_create


def reject(fields: dict, **kwargs) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_create(fields, **kwargs)
    return caught.value


def test_defaults_follow_the_seed():
    request = parse_create({"prompt": "a cat"})
    assert (request.model, request.seconds, request.size) == ("sora-2", "4", "720x1280")


def test_valid_sora_pro_1080p():
    request = parse_create({"model": "sora-2-pro", "prompt": "x", "seconds": "12", "size": "1920x1080"})
    assert request.size == "1920x1080"


@pytest.mark.parametrize(
    ("fields", "param", "fragment"),
    [
        ({"model": "sora-3", "prompt": "x"}, "model", "sora-2, sora-2-pro"),
        ({"model": 7, "prompt": "x"}, "model", "a string"),
        ({"prompt": "x", "seconds": "5"}, "seconds", '"4" | "8" | "12"'),
        ({"prompt": "x", "seconds": 4}, "seconds", "a string"),
        ({"prompt": "x", "size": "1920x1080"}, "size", "720x1280, 1280x720"),
        ({"prompt": ""}, "prompt", "non-empty"),
        ({"prompt": "   "}, "prompt", "non-empty"),
        ({"prompt": 12}, "prompt", "a string"),
        ({}, "prompt", "Missing"),
        ({"prompt": "x" * 4001}, "prompt", "4001 characters"),
        ({"prompt": "x", "duration": 5}, "duration", "give the length as 'seconds'"),
        ({"prompt": "x", "colour": "red"}, "colour", "Unrecognized"),
        ({"prompt": "x", "metadata": {"k": 1}}, "metadata.k", "string values"),
        ({"prompt": "x", "metadata": ["a"]}, "metadata", "an object"),
        ({"prompt": "x", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "at most 16"),
        ({"prompt": "x", "webhook_events": ["video.done"]}, "webhook_events", "video.completed"),
        ({"prompt": "x", "webhook_url": "ftp://example.com/hook"}, "webhook_url", "scheme"),
        ({"prompt": "x", "webhook_url": "https://169.254.169.254/latest"}, "webhook_url", "private"),
    ],
)
def test_rejections_name_field_value_and_rule(fields, param, fragment):
    error = reject(fields)
    assert error.param == param
    assert fragment in error.message
    assert error.to_body()["error"]["param"] == param


def test_loopback_webhook_allowed_only_when_local_mode_says_so():
    assert reject({"prompt": "x", "webhook_url": "http://127.0.0.1:9/h"}).param == "webhook_url"
    request = parse_create({"prompt": "x", "webhook_url": "http://127.0.0.1:9/h"}, allow_loopback_urls=True)
    assert request.webhook_url == "http://127.0.0.1:9/h"


def test_multipart_fields_arrive_as_strings():
    request = parse_create(
        {"prompt": "x", "metadata": '{"a": "b"}', "webhook_events": "video.completed,video.failed"}, multipart=True
    )
    assert request.metadata == {"a": "b"}
    assert request.webhook_events == ("video.completed", "video.failed")


def test_fingerprint_is_stable_and_body_sensitive():
    a = parse_create({"prompt": "x", "seconds": "4"})
    assert a.fingerprint() == parse_create({"seconds": "4", "prompt": "x"}).fingerprint()
    assert a.fingerprint() != parse_create({"prompt": "y"}).fingerprint()
