"""Prices and options come from the catalog (seed 002)."""

from __future__ import annotations

from vidrelay_core.catalog import MODELS
from vidrelay_core.contract import Model


def test_sora_pro_prices_follow_the_seed_tiers():
    price = MODELS["sora-2-pro"].price
    assert price.estimate(4, "1792x1024") == 2.0  # $0.50/s at 1024p
    assert price.estimate(12, "1920x1080") == 8.4  # $0.70/s at 1080p


def test_sora_2_is_720p_only_with_string_seconds():
    spec = MODELS["sora-2"]
    assert spec.sizes == ("720x1280", "1280x720")
    assert spec.seconds_allowed == ("4", "8", "12")
    assert Model.from_spec(spec).model_dump()["seconds"]["type"] == "string"


def test_every_seed_model_has_an_entry_with_its_own_length_rule():
    assert set(MODELS) == {
        "sora-2",
        "sora-2-pro",
        "veo-3.1-fast-generate-preview",
        "veo-3.1-generate-preview",
        "seedance-2.0",
        "sora_video2",
        "sora_video2-landscape",
    }
    veo = MODELS["veo-3.1-fast-generate-preview"]
    assert (veo.duration.field, veo.duration.allowed, veo.duration.default, veo.duration.wire) == (
        "duration",
        ("4", "6", "8"),
        "8",
        "string",
    )
    seedance = MODELS["seedance-2.0"]
    assert (seedance.duration.default, seedance.duration.wire) == ("5", "integer")
    assert MODELS["sora_video2"].sizes == ("704x1280",)
    assert MODELS["sora_video2-landscape"].sizes == ("1280x704",)
    assert MODELS["sora_video2"].streaming


def test_prices_follow_the_seeds():
    # Seed 003: "fast $0.3 / standard $1.2", charged per request whatever the length.
    assert MODELS["veo-3.1-fast-generate-preview"].price.estimate(8, "1920x1080") == 0.3
    assert MODELS["veo-3.1-generate-preview"].price.estimate(4, "1280x720") == 1.2
    assert MODELS["seedance-2.0"].price.estimate(5, "960x960") == 0.5
    assert MODELS["sora_video2"].price.describe() == {"unit": "request", "usd": 0.15}


def test_the_public_entry_names_the_wire_type_and_references():
    seedance = Model.from_spec(MODELS["seedance-2.0"]).model_dump()
    assert seedance["seconds"] == {
        "field": "duration",
        "allowed": [str(s) for s in range(4, 16)],
        "default": "5",
        "type": "integer",
    }
    assert [r["field"] for r in seedance["references"]] == ["files", "first_frame_image", "last_frame_image"]
    assert seedance["options"] == {"aspect_ratio": ["16:9", "9:16", "1:1"]}
    veo = Model.from_spec(MODELS["veo-3.1-generate-preview"]).model_dump()
    assert veo["modes"] == ["image-to-video"] and veo["references"][0]["required"] is True
