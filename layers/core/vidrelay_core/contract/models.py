"""`GET /v1/models` and `GET /v1/models/{model_id}`: the catalog entries as clients read them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ..catalog import FITS, ModelSpec, ReferenceRule
from .base import ApiModel


class SecondsRule(ApiModel):
    field: str = Field(description="The field the upstream names the length by; `seconds` is always accepted too")
    allowed: list[str]
    default: str
    type: Literal["string", "integer"] = Field(description="How the length goes on the wire (in JSON)")


class SizeRule(ApiModel):
    allowed: list[str]
    default: str


class PerSecondPrice(ApiModel):
    unit: Literal["second"]
    usd_by_size: dict[str, float] = Field(description='USD per second by size ("*": every size)')


class PerRequestPrice(ApiModel):
    unit: Literal["request"]
    usd: float


Price = Annotated[PerSecondPrice | PerRequestPrice, Field(discriminator="unit")]


def _price(spec: ModelSpec) -> PerSecondPrice | PerRequestPrice:
    if spec.price.per_request is not None:
        return PerRequestPrice(unit="request", usd=spec.price.per_request)
    return PerSecondPrice(unit="second", usd_by_size=dict(spec.price.per_second))


class ModelReference(ApiModel):
    field: str = Field(description="The request field it is given in")
    count: int = Field(description="How many the model takes at most")
    formats: list[str]
    max_bytes: int
    must_match_size: bool = Field(description="The upstream wants the image at the output size; vidrelay fits it")
    required: bool
    fit: list[str] = Field(description="The `fit` values that apply (only where the size must match)")

    @classmethod
    def from_rule(cls, rule: ReferenceRule) -> ModelReference:
        return cls(
            field=rule.field,
            count=rule.count,
            formats=list(rule.formats),
            max_bytes=rule.max_bytes,
            must_match_size=rule.must_match_size,
            required=rule.required,
            fit=list(FITS) if rule.must_match_size else [],
        )


class Model(ApiModel):
    """One catalog entry: OpenAI's model object plus what the model takes and what it costs."""

    id: str = Field(examples=["sora-2"])
    object: Literal["model"]
    owned_by: str = Field(description="The upstream provider")
    family: str = Field(description="The upstream dialect: videos, generations or chat")
    description: str
    seconds: SecondsRule
    size: SizeRule
    options: dict[str, list[str]] = Field(
        description='Upstream-specific fields and their values ("*": free text, "int": an integer)'
    )
    modes: list[Literal["text-to-video", "image-to-video"]]
    price: Price
    upstream_retention_s: int = Field(description="How long the upstream keeps a result")
    references: list[ModelReference]
    streaming: bool

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> Model:
        modes: list[Literal["text-to-video", "image-to-video"]] = []
        if spec.text_to_video:
            modes.append("text-to-video")
        if spec.image_to_video:
            modes.append("image-to-video")
        return cls(
            id=spec.id,
            object="model",
            owned_by=spec.provider,
            family=spec.family,
            description=spec.description,
            seconds=SecondsRule(
                field=spec.duration.field or "seconds",
                allowed=list(spec.duration.allowed),
                default=spec.duration.default,
                type=spec.duration.wire,
            ),
            size=SizeRule(allowed=list(spec.sizes), default=spec.size_default),
            options={name: list(values) for name, values in spec.options.items()},
            modes=modes,
            price=_price(spec),
            upstream_retention_s=spec.upstream_retention_s,
            references=[ModelReference.from_rule(rule) for rule in spec.references],
            streaming=spec.streaming,
        )


class ModelList(ApiModel):
    object: Literal["list"]
    data: list[Model]
