"""The model catalog: one data entry per model. Validation and prices come from here; a new model is a new entry.

Sources: seed 002 (sora-2 / sora-2-pro text-to-video) and seed 004 (the same models, image-to-video).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Family = Literal["videos", "generations", "chat"]

# Upstreams keep a finished result for one day (seed 002: "Video content is retained ... for 1 day only").
ONE_DAY_S = 86_400


@dataclass(frozen=True)
class PriceRule:
    """How the upstream bills a job. `per_second` maps a size to USD per second; `per_request` is flat."""

    per_second: dict[str, float] = field(default_factory=dict)
    per_request: float | None = None

    def estimate(self, seconds: int, size: str) -> float:
        if self.per_request is not None:
            return round(self.per_request, 4)
        return round(self.per_second[size] * seconds, 4)

    def describe(self) -> dict[str, Any]:
        if self.per_request is not None:
            return {"unit": "request", "usd": self.per_request}
        return {"unit": "second", "usd_by_size": dict(self.per_second)}


@dataclass(frozen=True)
class ModelSpec:
    id: str
    family: Family
    provider: str
    description: str
    # Duration as the upstream wants it on the wire: sora takes the strings "4" | "8" | "12" (seed 002:
    # "Passing "10" / "15" or the integer 4 returns 400").
    seconds_allowed: tuple[str, ...]
    seconds_default: str
    sizes: tuple[str, ...]
    size_default: str
    price: PriceRule
    quality: str
    # How often the poller asks the upstream; seeds recommend 15 s for sora.
    poll_interval_s: float
    upstream_retention_s: int = ONE_DAY_S
    text_to_video: bool = True
    image_to_video: bool = False
    # Image-to-video references: accepted formats, and whether the image must be exactly `size` upstream (vidrelay
    # then fits it, see references.py).
    reference_formats: tuple[str, ...] = ()
    reference_must_match_size: bool = False

    def public(self) -> dict[str, Any]:
        """The entry as `GET /v1/models` shows it."""
        return {
            "id": self.id,
            "object": "model",
            "owned_by": self.provider,
            "family": self.family,
            "description": self.description,
            "seconds": {
                "allowed": list(self.seconds_allowed),
                "default": self.seconds_default,
                "type": "string",
            },
            "size": {"allowed": list(self.sizes), "default": self.size_default},
            "modes": [
                m for m, ok in (("text-to-video", self.text_to_video), ("image-to-video", self.image_to_video)) if ok
            ],
            "price": self.price.describe(),
            "upstream_retention_s": self.upstream_retention_s,
            "reference": {
                "field": "input_reference",
                "count": 1,
                "formats": list(self.reference_formats),
                "must_match_size": self.reference_must_match_size,
                "fit": ["crop", "pad", "none"] if self.reference_must_match_size else [],
            }
            if self.image_to_video
            else None,
        }


_SORA_720 = ("720x1280", "1280x720")
_SORA_PRO_EXTRA = ("1024x1792", "1792x1024", "1080x1920", "1920x1080")
# Seed 004: one `input_reference` file, "image/jpeg / image/png / image/webp", "dimensions must equal size".
_SORA_REFERENCE_FORMATS = ("image/jpeg", "image/png", "image/webp")

# Seed 002 prices the pro tiers ($0.50/s at 1024p, $0.70/s at 1080p) but not 720p; the 720p rates are the
# published OpenAI Sora 2 rates ($0.10/s sora-2, $0.30/s sora-2-pro), recorded in the README.
MODELS: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec(
            id="sora-2",
            family="videos",
            provider="apiyi",
            description="OpenAI Sora 2 (720p) through the /v1/videos dialect",
            seconds_allowed=("4", "8", "12"),
            seconds_default="4",
            sizes=_SORA_720,
            size_default="720x1280",
            price=PriceRule(per_second=dict.fromkeys(_SORA_720, 0.10)),
            quality="standard",
            poll_interval_s=15.0,
            image_to_video=True,
            reference_formats=_SORA_REFERENCE_FORMATS,
            reference_must_match_size=True,
        ),
        ModelSpec(
            id="sora-2-pro",
            family="videos",
            provider="apiyi",
            description="OpenAI Sora 2 Pro (720p, 1024p, 1080p) through the /v1/videos dialect",
            seconds_allowed=("4", "8", "12"),
            seconds_default="4",
            sizes=_SORA_720 + _SORA_PRO_EXTRA,
            size_default="720x1280",
            price=PriceRule(
                per_second={
                    **dict.fromkeys(_SORA_720, 0.30),
                    **dict.fromkeys(("1024x1792", "1792x1024"), 0.50),
                    **dict.fromkeys(("1080x1920", "1920x1080"), 0.70),
                }
            ),
            quality="high",
            poll_interval_s=15.0,
            image_to_video=True,
            reference_formats=_SORA_REFERENCE_FORMATS,
            reference_must_match_size=True,
        ),
    )
}


def get_model(model_id: str) -> ModelSpec | None:
    return MODELS.get(model_id)


def model_ids() -> list[str]:
    return sorted(MODELS)
