"""Validation of POST /v1/videos against the catalog: every rejection names the field, the value and the rule."""

from __future__ import annotations

import pytest
from vidrelay_core.bodies import UploadedFile
from vidrelay_core.contract import parse_create
from vidrelay_core.errors import InvalidRequest


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


VEO = "veo-3.1-fast-generate-preview"
IMAGE_URL = {"image_url": "https://93.184.216.34/a.png"}


@pytest.mark.parametrize(
    ("fields", "param", "fragment"),
    [
        # The catalog errors: each names its field.
        ({"model": VEO, "prompt": "x", "duration": "5", "input_reference": IMAGE_URL}, "duration", '"4" | "6" | "8"'),
        ({"model": "sora-2", "prompt": "x", "size": "1920x1080"}, "size", "720x1280, 1280x720"),
        ({"model": "seedance-2.0", "prompt": "x", "aspect_ratio": "4:3"}, "aspect_ratio", '"16:9" | "9:16" | "1:1"'),
        ({"model": "kling-9", "prompt": "x"}, "model", "seedance-2.0"),
        # Seed 003: the length is a string; 1080p/4k must be "8"; image-to-video only.
        ({"model": VEO, "prompt": "x", "duration": 8, "input_reference": IMAGE_URL}, "duration", "a string"),
        (
            {"model": VEO, "prompt": "x", "duration": "4", "resolution": "1080p", "input_reference": IMAGE_URL},
            "duration",
            "1080p",
        ),
        ({"model": VEO, "prompt": "x"}, "input_reference", "image-to-video only"),
        ({"model": VEO, "prompt": "x", "resolution": "8k", "input_reference": IMAGE_URL}, "resolution", "4k"),
        (
            {"model": VEO, "prompt": "x", "size": "1920x1080", "resolution": "720p", "input_reference": IMAGE_URL},
            "size",
            "resolution '1080p'",
        ),
        (
            {"model": VEO, "prompt": "x", "aspect_ratio": "16:9", "input_reference": IMAGE_URL},
            "aspect_ratio",
            "does not take",
        ),
        ({"model": VEO, "prompt": "x", "seed": "twelve", "input_reference": IMAGE_URL}, "seed", "an integer"),
        # Seed 001: integer seconds; references by upload order.
        ({"model": "seedance-2.0", "prompt": "x", "duration": "five"}, "duration", "integer"),
        ({"model": "seedance-2.0", "prompt": "x", "duration": 99}, "duration", "4 to 15"),
        ({"model": "seedance-2.0", "prompt": "x", "duration": "²"}, "duration", "integer"),
        ({"model": "seedance-2.0", "prompt": "x", "duration": "5" * 5000}, "duration", "integer"),
        ({"model": VEO, "prompt": "x", "seed": "--5", "input_reference": IMAGE_URL}, "seed", "an integer"),
        ({"model": "seedance-2.0", "prompt": "x", "input_reference": IMAGE_URL}, "input_reference", "files"),
        (
            {"model": "seedance-2.0", "prompt": "x", "files": [{"audio_url": "https://a/b.mp3"}]},
            "files[0].audio_url",
            "Unrecognized",
        ),
        (
            {"model": "seedance-2.0", "prompt": "x", "files": [{"image_url": "ftp://a/b.png"}]},
            "files[0].image_url",
            "scheme",
        ),
        # Seed 000: one length, one size.
        ({"model": "sora_video2", "prompt": "x", "seconds": "4"}, "seconds", '"10"'),
        ({"model": "sora_video2", "prompt": "x", "size": "1280x704"}, "size", "704x1280"),
        ({"model": "seedance-2.0", "prompt": "x", "seconds": "4", "duration": "8"}, "duration", "disagree"),
    ],
)
def test_catalog_rules_of_every_family(fields, param, fragment):
    error = reject(fields)
    assert error.param == param
    assert fragment in error.message, error.message


def test_veo_size_follows_resolution_and_aspect_ratio():
    request = parse_create(
        {"model": VEO, "prompt": "x", "resolution": "1080p", "aspectRatio": "9:16", "input_reference": IMAGE_URL}
    )
    assert (request.size, request.seconds) == ("1080x1920", "8")
    assert request.options == {"resolution": "1080p", "aspectRatio": "9:16"}
    by_size = parse_create({"model": VEO, "prompt": "x", "size": "3840x2160", "input_reference": IMAGE_URL})
    assert by_size.options == {"resolution": "4k", "aspectRatio": "16:9"}


def test_seedance_keeps_upload_order_and_takes_the_length_as_integer_or_form_text():
    first, second = (UploadedFile(f"{n}.png", "image/png", b"\x89PNG" + bytes([n])) for n in (1, 2))
    request = parse_create(
        {"model": "seedance-2.0", "prompt": "@IMG_1 meets @IMG_2", "duration": "8", "aspect_ratio": "1:1"},
        files={"files": [first, second]},
        multipart=True,
    )
    assert [r.filename for r in request.references] == ["1.png", "2.png"]
    assert (request.seconds, request.size, request.options) == ("8", "960x960", {"aspect_ratio": "1:1"})
    assert parse_create({"model": "seedance-2.0", "prompt": "x", "duration": 6}).seconds == "6"
    assert parse_create({"model": "seedance-2.0", "prompt": "x"}).seconds == "5"


def test_a_model_takes_openai_seconds_as_well_as_its_own_duration():
    request = parse_create({"model": VEO, "prompt": "x", "seconds": "6", "input_reference": IMAGE_URL})
    assert request.seconds == "6"


def test_multipart_takes_the_shapes_the_openai_sdks_send():
    # `metadata[order]=42` and repeated `webhook_events[]` parts, as bodies.py reads them.
    request = parse_create(
        {"prompt": "x", "metadata": {"order": "42"}, "webhook_events": ["video.completed", "video.completed"]},
        multipart=True,
    )
    assert request.metadata == {"order": "42"}
    assert request.webhook_events == ("video.completed",)


def test_json_strings_stand_for_objects_only_in_multipart():
    assert reject({"prompt": "x", "metadata": '{"a": "b"}'}).param == "metadata"
    assert reject({"prompt": "x", "webhook_events": "video.completed"}).param == "webhook_events"


def test_a_nested_error_names_its_path_and_what_is_allowed():
    error = reject({"model": "seedance-2.0", "prompt": "x", "files": [{"image_url": "https://93.184.216.34/a.png"}, 7]})
    assert error.param == "files[1]"
    assert "7" in error.message and "image_url" in error.message
