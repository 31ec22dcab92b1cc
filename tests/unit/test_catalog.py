"""Prices and options come from the catalog (seed 002)."""

from __future__ import annotations

from vidrelay_core.catalog import MODELS


def test_sora_pro_prices_follow_the_seed_tiers():
    price = MODELS["sora-2-pro"].price
    assert price.estimate(4, "1792x1024") == 2.0  # $0.50/s at 1024p
    assert price.estimate(12, "1920x1080") == 8.4  # $0.70/s at 1080p


def test_sora_2_is_720p_only_with_string_seconds():
    spec = MODELS["sora-2"]
    assert spec.sizes == ("720x1280", "1280x720")
    assert spec.seconds_allowed == ("4", "8", "12")
    assert spec.public()["seconds"]["type"] == "string"
