"""The model catalog: one data entry per model. Validation and prices come from here; a new model is a new entry.

Sources: seed 002 (sora-2 / sora-2-pro text-to-video), seed 004 (the same models, image-to-video), seed 003
(Veo 3.1 image-to-video on the same `/v1/videos` path), seed 001 (Seedance 2.0, `/v1/video/generations`) and
seed 000 (sora_video2 over streaming chat completions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Family = Literal["videos", "generations", "chat"]

# Upstreams keep a finished result for one day (seed 002: "Video content is retained ... for 1 day only"; seed 000:
# "Generated video URLs are valid for only 1 day"; seed 001: "video_url is usually a temporary signed URL").
ONE_DAY_S = 86_400
MiB = 1024 * 1024

JPEG, PNG, WEBP, MP4 = "image/jpeg", "image/png", "image/webp", "video/mp4"
# How a reference image is made the output size (references.py): cover and crop, fit and pad, or refuse.
FITS: tuple[str, ...] = ("crop", "pad", "none")


@dataclass(frozen=True)
class PriceRule:
    """How the upstream bills a job: `per_second` maps a size to USD per second (or "*" for every size);
    `per_request` is flat."""

    per_second: dict[str, float] = field(default_factory=dict)
    per_request: float | None = None

    def estimate(self, seconds: int, size: str) -> float:
        if self.per_request is not None:
            return round(self.per_request, 4)
        rate = self.per_second.get(size, self.per_second.get("*"))
        if rate is None:
            raise KeyError(f"no per-second price for size {size}")
        return round(rate * seconds, 4)

    def describe(self) -> dict[str, Any]:
        if self.per_request is not None:
            return {"unit": "request", "usd": self.per_request}
        return {"unit": "second", "usd_by_size": dict(self.per_second)}


@dataclass(frozen=True)
class DurationRule:
    """The video length as the upstream takes it. `field` is the upstream's name for it (`seconds` for sora,
    `duration` for Veo and Seedance); clients may always use OpenAI's `seconds` instead. `wire` says whether
    the upstream wants a string ("8": Veo, sora — "passing a number fails") or an integer (Seedance)."""

    field: str | None
    allowed: tuple[str, ...]
    default: str
    wire: Literal["string", "integer"] = "string"


@dataclass(frozen=True)
class ReferenceRule:
    """One kind of reference input a model takes. `field` is the request field; `count` the most it takes;
    `formats` the MIME types the upstream accepts (others are converted when that is lossless enough);
    `must_match_size`: the image must equal the output size upstream (vidrelay fits it)."""

    field: str
    count: int
    formats: tuple[str, ...]
    max_bytes: int = 20 * MiB
    must_match_size: bool = False
    required: bool = False


@dataclass(frozen=True)
class ModelSpec:
    id: str
    family: Family
    provider: str
    description: str
    duration: DurationRule
    sizes: tuple[str, ...]
    size_default: str
    price: PriceRule
    quality: str
    # How often the poller asks the upstream (seed 002: 15 s; seed 003 samples: 8 s; seed 001: "20-30 seconds").
    # A streaming model is never polled: this is how long its stream may stay silent before it counts as lost.
    poll_interval_s: float
    upstream_retention_s: int = ONE_DAY_S
    text_to_video: bool = True
    references: tuple[ReferenceRule, ...] = ()
    # Upstream-specific options under their seed names, each with its allowed values ("*" = free text,
    # "int" = an integer, as a string on the wire).
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Veo: the pixel size follows `resolution` x `aspectRatio` (seed 003: resolution has "higher precedence
    # than size"); Seedance: it follows `aspect_ratio`. Maps option values to a size.
    size_from: dict[tuple[str, ...], str] = field(default_factory=dict)
    size_from_options: tuple[str, ...] = ()
    # Durations allowed only at some option values (seed 003: "1080p/4k must be "8"").
    duration_only: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    # Seed 003: "/content returns 400 occasionally right after status flips to completed; retry after 4 sec".
    content_not_ready_retries: int = 0
    streaming: bool = False
    max_prompt_chars: int = 4000

    @property
    def seconds_allowed(self) -> tuple[str, ...]:
        return self.duration.allowed

    @property
    def seconds_default(self) -> str:
        return self.duration.default

    @property
    def image_to_video(self) -> bool:
        return bool(self.references)

    def reference(self, field_name: str) -> ReferenceRule | None:
        return next((r for r in self.references if r.field == field_name), None)


_SORA_720 = ("720x1280", "1280x720")
_SORA_PRO_EXTRA = ("1024x1792", "1792x1024", "1080x1920", "1920x1080")
_SORA_DURATION = DurationRule(field="seconds", allowed=("4", "8", "12"), default="4")
# Seed 004: one `input_reference` file, "image/jpeg / image/png / image/webp", "dimensions must equal size".
_SORA_REFERENCE = ReferenceRule("input_reference", 1, (JPEG, PNG, WEBP), must_match_size=True)

# Seed 003: "only 1 image, accepts image/jpeg / image/png / image/webp"; Veo on this path is image-to-video only.
_VEO_REFERENCE = ReferenceRule("input_reference", 1, (JPEG, PNG, WEBP), required=True)
_VEO_SIZES: dict[tuple[str, ...], str] = {
    ("720p", "16:9"): "1280x720",
    ("720p", "9:16"): "720x1280",
    ("1080p", "16:9"): "1920x1080",
    ("1080p", "9:16"): "1080x1920",
    ("4k", "16:9"): "3840x2160",
    ("4k", "9:16"): "2160x3840",
}
_VEO_OPTIONS: dict[str, tuple[str, ...]] = {
    "resolution": ("720p", "1080p", "4k"),
    "aspectRatio": ("16:9", "9:16"),
    "seed": ("int",),
    "negative_prompt": ("*",),
}

# Seed 001: "supports images (jpg/png) and videos (mp4)", "Individual file size should not exceed 50MB". The seed
# gives no count; Seedance 2.0 takes up to 9 images and 3 videos as references.
_SEEDANCE_FILES = ReferenceRule("files", 12, (JPEG, PNG, MP4), max_bytes=50 * MiB)
_SEEDANCE_FRAME = ("first_frame_image", "last_frame_image")
_SEEDANCE_SIZES: dict[tuple[str, ...], str] = {("16:9",): "1280x720", ("9:16",): "720x1280", ("1:1",): "960x960"}

MODELS: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        # Seed 002 prices the pro tiers ($0.50/s at 1024p, $0.70/s at 1080p) but not 720p; the 720p rates are
        # the published OpenAI Sora 2 rates ($0.10/s sora-2, $0.30/s sora-2-pro), recorded in the README.
        ModelSpec(
            id="sora-2",
            family="videos",
            provider="apiyi",
            description="OpenAI Sora 2 (720p) through the /v1/videos dialect",
            duration=_SORA_DURATION,
            sizes=_SORA_720,
            size_default="720x1280",
            price=PriceRule(per_second=dict.fromkeys(_SORA_720, 0.10)),
            quality="standard",
            poll_interval_s=15.0,
            references=(_SORA_REFERENCE,),
        ),
        ModelSpec(
            id="sora-2-pro",
            family="videos",
            provider="apiyi",
            description="OpenAI Sora 2 Pro (720p, 1024p, 1080p) through the /v1/videos dialect",
            duration=_SORA_DURATION,
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
            references=(_SORA_REFERENCE,),
        ),
        # Seed 003: "$0.3/req" (fast) and "$1.2/req" (standard), "charged per request by model name".
        *(
            ModelSpec(
                id=model_id,
                family="videos",
                provider="apiyi",
                description=f"Google Veo 3.1 {label} image-to-video through the /v1/videos dialect (multipart)",
                duration=DurationRule(field="duration", allowed=("4", "6", "8"), default="8"),
                sizes=tuple(_VEO_SIZES.values()),
                size_default="1280x720",
                price=PriceRule(per_request=price),
                quality=label,
                poll_interval_s=8.0,
                text_to_video=False,
                references=(_VEO_REFERENCE,),
                options=_VEO_OPTIONS,
                size_from=dict(_VEO_SIZES),
                size_from_options=("resolution", "aspectRatio"),
                duration_only={"resolution": {"1080p": ("8",), "4k": ("8",)}},
                content_not_ready_retries=5,
            )
            for model_id, label, price in (
                ("veo-3.1-fast-generate-preview", "fast", 0.3),
                ("veo-3.1-generate-preview", "standard", 1.2),
            )
        ),
        # Seed 001 publishes no price; $0.10/s is an estimate (README), change it here for your contract.
        ModelSpec(
            id="seedance-2.0",
            family="generations",
            provider="yelinai",
            description="ByteDance Seedance 2.0 through /v1/video/generations (images and videos as references)",
            duration=DurationRule(
                field="duration", allowed=tuple(str(s) for s in range(4, 16)), default="5", wire="integer"
            ),
            sizes=tuple(_SEEDANCE_SIZES.values()),
            size_default="1280x720",
            price=PriceRule(per_second={"*": 0.10}),
            quality="standard",
            poll_interval_s=20.0,
            references=(
                _SEEDANCE_FILES,
                *(ReferenceRule(name, 1, (JPEG, PNG), max_bytes=50 * MiB) for name in _SEEDANCE_FRAME),
            ),
            options={"aspect_ratio": ("16:9", "9:16", "1:1")},
            size_from=dict(_SEEDANCE_SIZES),
            size_from_options=("aspect_ratio",),
        ),
        # Seed 000: "sora_video2: Vertical screen (704x1280)", "sora_video2-landscape: Horizontal screen (1280x704)";
        # "About 2-3 minutes (for 10-second video)"; "up to 1 image, supports both URL and Base64". No price is
        # published; $0.15 per video is an estimate (README).
        *(
            ModelSpec(
                id=model_id,
                family="chat",
                provider="yelinai",
                description=f"Sora 2 ({orientation}, {size}) over streaming chat completions",
                duration=DurationRule(field=None, allowed=("10",), default="10"),
                sizes=(size,),
                size_default=size,
                price=PriceRule(per_request=0.15),
                quality="standard",
                # Not polled: the streamer holds the stream (Timing.stream_lease_s decides when it counts as lost).
                # This is how long the poller waits before handing a refused stream to the streamer again.
                poll_interval_s=60.0,
                references=(ReferenceRule("input_reference", 1, (JPEG, PNG, WEBP)),),
                streaming=True,
            )
            for model_id, orientation, size in (
                ("sora_video2", "portrait", "704x1280"),
                ("sora_video2-landscape", "landscape", "1280x704"),
            )
        ),
    )
}


def get_model(model_id: str) -> ModelSpec | None:
    return MODELS.get(model_id)


def model_ids() -> list[str]:
    return sorted(MODELS)
