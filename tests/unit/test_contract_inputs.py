"""The other inputs of the API, checked by the contract's models: what JSON and form bodies may say."""

from __future__ import annotations

from typing import Any

import pytest
from vidrelay_core.contract import (
    ContentQuery,
    CreateEndpointBody,
    CreateUploadBody,
    CreateVideoHeaders,
    ListQuery,
    RequestContext,
    RotateSecretBody,
    UsageQuery,
    validated,
)
from vidrelay_core.errors import InvalidRequest
from vidrelay_core.jobs import EVENT_TYPES

FORM = RequestContext(multipart=True)
LOCAL = RequestContext(allow_loopback_urls=True)


def refused(model: Any, data: dict[str, Any], context: RequestContext | None = None) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        validated(model, data, context)
    return caught.value


def test_list_query_defaults_and_limits() -> None:
    query = validated(ListQuery, {})
    assert (query.after, query.limit, query.order) == (None, 20, "desc")
    assert validated(ListQuery, {"limit": "100", "order": "asc", "after": "video_1"}).limit == 100
    for limit in ("0", "101", "x", "1.5", "-1"):
        error = refused(ListQuery, {"limit": limit})
        assert error.param == "limit" and "from 1 to 100" in error.message
    assert "'asc' or 'desc'" in refused(ListQuery, {"order": "up"}).message
    assert refused(ListQuery, {"page": "2"}).code == "unknown_parameter"


def test_usage_query_takes_utc_days_under_their_wire_names() -> None:
    query = validated(UsageQuery, {"from": "2026-01-01", "to": "2026-01-31"})
    assert (query.from_, query.to) == ("2026-01-01", "2026-01-31")
    assert refused(UsageQuery, {"from": "2026-02-30"}).param == "from"
    assert refused(UsageQuery, {"from_": "2026-01-01"}).code == "unknown_parameter"


def test_content_variants_are_openais() -> None:
    assert validated(ContentQuery, {}).variant == "video"
    assert validated(ContentQuery, {"variant": "thumbnail"}).variant == "thumbnail"
    assert refused(ContentQuery, {"variant": "poster"}).param == "variant"


def test_the_idempotency_key_is_at_most_255_characters() -> None:
    assert validated(CreateVideoHeaders, {"Idempotency-Key": "k" * 255}).idempotency_key == "k" * 255
    error = refused(CreateVideoHeaders, {"Idempotency-Key": "k" * 256})
    assert error.param == "Idempotency-Key" and "255" in error.message


def test_an_endpoint_url_goes_through_the_ssrf_guard_with_the_local_allowance() -> None:
    assert refused(CreateEndpointBody, {"url": "http://127.0.0.1:9/hook"}).param == "url"
    assert "private" in refused(CreateEndpointBody, {"url": "https://169.254.169.254/x"}).message
    body = validated(CreateEndpointBody, {"url": "http://127.0.0.1:9/hook"}, LOCAL)
    assert (body.url, body.event_types, body.description) == ("http://127.0.0.1:9/hook", [], "")


def test_endpoint_event_types_are_the_event_types_in_json_and_forms() -> None:
    url = {"url": "http://127.0.0.1:9/hook"}
    error = refused(CreateEndpointBody, {**url, "event_types": ["video.done"]}, LOCAL)
    assert error.param == "event_types" and all(t in error.message for t in EVENT_TYPES)
    assert refused(CreateEndpointBody, {**url, "event_types": "video.failed"}, LOCAL).param == "event_types"
    form = RequestContext(multipart=True, allow_loopback_urls=True)
    body = validated(CreateEndpointBody, {**url, "event_types": "video.failed,video.completed"}, form)
    assert body.event_types == ["video.failed", "video.completed"]
    assert refused(CreateEndpointBody, {**url, "description": "d" * 513}, LOCAL).param == "description"


@pytest.mark.parametrize(("grace", "context"), [("60", None), (True, None), (-1, None), (7 * 86_400 + 1, FORM)])
def test_rotation_grace_is_an_integer_of_seconds_up_to_a_week(grace: Any, context: RequestContext | None) -> None:
    error = refused(RotateSecretBody, {"grace_period_seconds": grace}, context)
    assert error.param == "grace_period_seconds" and "604800" in error.message


def test_rotation_grace_defaults_to_a_day_and_reads_form_text() -> None:
    assert validated(RotateSecretBody, {}).grace_period_seconds == 86_400
    assert validated(RotateSecretBody, {"grace_period_seconds": "60"}, FORM).grace_period_seconds == 60


def test_an_upload_declares_name_type_and_exact_size() -> None:
    small = RequestContext(max_upload_bytes=1000)
    body = validated(CreateUploadBody, {"filename": "a.png", "content_type": "image/png", "bytes": 10}, small)
    assert (body.filename, body.content_type, body.bytes) == ("a.png", "image/png", 10)
    assert refused(
        CreateUploadBody, {"filename": "a.png", "content_type": "image/png", "bytes": 1001}, small
    ).param == ("bytes")
    assert refused(CreateUploadBody, {"filename": "a.gif", "content_type": "image/gif", "bytes": 1}).param == (
        "content_type"
    )
    assert refused(CreateUploadBody, {"filename": "", "content_type": "image/png", "bytes": 1}).param == "filename"
    error = refused(CreateUploadBody, {"content_type": "image/png", "bytes": 1})
    assert (error.param, error.code) == ("filename", "missing_required_parameter")
