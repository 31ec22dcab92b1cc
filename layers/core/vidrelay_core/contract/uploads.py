"""`POST /v1/uploads`: a presigned PUT for a reference file too big for an inline body."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from ..catalog import MODELS
from .base import ApiModel, RequestModel, form_integer, invalid, request_context

if TYPE_CHECKING:
    from ..uploads import UploadGrant

# What a reference may be, in any model of the catalog.
UPLOAD_CONTENT_TYPES: tuple[str, ...] = tuple(
    dict.fromkeys(fmt for spec in MODELS.values() for rule in spec.references for fmt in rule.formats)
)
UploadContentType = Literal[UPLOAD_CONTENT_TYPES]  # type: ignore[valid-type]


class CreateUploadBody(RequestModel):
    filename: str = Field(min_length=1, max_length=200, description="The file's name, 1 to 200 characters")
    content_type: UploadContentType
    bytes: int = Field(strict=True, ge=1, description="The file's exact size; S3 refuses any other")

    @field_validator("filename", mode="before")
    @classmethod
    def _filename(cls, value: Any) -> Any:
        if not isinstance(value, str) or not 1 <= len(value) <= 200:
            raise invalid(value, "the file's name, 1 to 200 characters")
        return value

    @field_validator("bytes", mode="before")
    @classmethod
    def _bytes(cls, value: Any, info: ValidationInfo) -> Any:
        value = form_integer(value, info)
        limit = request_context(info).max_upload_bytes
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
            raise invalid(value, f"the file's size in bytes, an integer from 1 to {limit}")
        return value


class Upload(ApiModel):
    id: str = Field(examples=["upload_5f1c0a9e2b7d4c6a8e3f1b2d"])
    object: Literal["upload"]
    filename: str
    content_type: str
    bytes: int
    method: Literal["PUT"]
    upload_url: str = Field(description="Presigned S3 PUT URL, valid for expires_at; send exactly `headers`")
    headers: dict[str, str]
    s3_uri: str = Field(description='Reference the file with {"image_url": s3_uri} or {"video_url": s3_uri}')
    expires_at: int

    @classmethod
    def from_grant(cls, grant: UploadGrant) -> Upload:
        return cls(object="upload", method="PUT", **asdict(grant))
