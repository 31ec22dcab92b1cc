"""Validation of `POST /v1/videos` against the catalog. Every rejection names the field, what was given and what
is allowed. JSON and multipart bodies arrive here as the same field map, so both follow one set of rules."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any

from .catalog import ModelSpec, get_model, model_ids
from .errors import InvalidRequest
from .jobs import EVENT_TYPES
from .ssrf import UrlRejected, check_url

DEFAULT_MODEL = "sora-2"
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512

# Fields this deployment understands for the models it serves. Anything else is refused by name rather than
# silently dropped: a client that thinks it set `duration` should learn it did not.
KNOWN_FIELDS = frozenset(
    {"model", "prompt", "seconds", "size", "input_reference", "fit", "webhook_url", "webhook_events", "metadata"}
)
REFERENCE_KEYS = frozenset({"image_url"})
# How a reference image is made the requested size (references.py): cover and crop, fit and pad, or refuse.
FITS: tuple[str, ...] = ("crop", "pad", "none")


@dataclass(frozen=True)
class ReferenceInput:
    """The reference image as the client gave it: uploaded bytes, or an https URL (already through the SSRF
    guard once; fetched, and checked again, when the job is created)."""

    fit: str = "crop"
    data: bytes | None = field(default=None, repr=False)
    content_type: str | None = None
    filename: str | None = None
    image_url: str | None = None

    def fingerprint(self) -> dict[str, Any]:
        """What an Idempotency-Key compares: the bytes' hash, not the bytes."""
        return {
            "fit": self.fit,
            "sha256": hashlib.sha256(self.data).hexdigest() if self.data is not None else None,
            "content_type": self.content_type,
            "image_url": self.image_url,
        }


@dataclass(frozen=True)
class CreateRequest:
    model: str
    prompt: str
    seconds: str
    size: str
    webhook_url: str | None = None
    webhook_events: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    # The image for image-to-video, as given (bytes or URL); prepared when the job is created.
    reference: ReferenceInput | None = None

    def fingerprint(self) -> str:
        """Stable hash of the normalised request, compared under one Idempotency-Key. A text-only request
        hashes as it did before references existed."""
        body: dict[str, Any] = {f.name: getattr(self, f.name) for f in dataclass_fields(self) if f.name != "reference"}
        if self.reference is not None:
            body["reference"] = self.reference.fingerprint()
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def parse_create(
    fields: dict[str, Any],
    *,
    files: dict[str, Any] | None = None,
    multipart: bool = False,
    max_prompt_chars: int = 4000,
    allow_loopback_urls: bool = False,
) -> CreateRequest:
    files = files or {}
    unknown = sorted(set(fields) - KNOWN_FIELDS) + sorted(set(files) - {"input_reference"})
    if unknown:
        raise InvalidRequest(
            unknown[0],
            given=fields.get(unknown[0], "<file>"),
            message=f"Unrecognized request field '{unknown[0]}'. Allowed: {', '.join(sorted(KNOWN_FIELDS))}.",
            code="unknown_parameter",
        )
    spec = _model(fields.get("model", DEFAULT_MODEL))
    prompt = _prompt(fields.get("prompt"), max_prompt_chars)
    seconds = _seconds(fields.get("seconds"), spec)
    size = _size(fields.get("size"), spec)
    reference = _reference(fields, files, spec, multipart, allow_loopback_urls)
    webhook_url = _webhook_url(fields.get("webhook_url"), allow_loopback_urls)
    events = _webhook_events(fields.get("webhook_events"), multipart)
    metadata = _metadata(fields.get("metadata"), multipart)
    return CreateRequest(spec.id, prompt, seconds, size, webhook_url, events, metadata, reference)


def _model(value: Any) -> ModelSpec:
    allowed = ", ".join(model_ids())
    if not isinstance(value, str):
        raise InvalidRequest("model", value, f"a string, one of {allowed}")
    spec = get_model(value)
    if spec is None:
        raise InvalidRequest("model", value, allowed, code="model_not_found")
    return spec


def _prompt(value: Any, max_chars: int) -> str:
    if value is None:
        raise InvalidRequest(
            "prompt",
            None,
            f"a non-empty string of at most {max_chars} characters",
            code="missing_required_parameter",
        )
    if not isinstance(value, str):
        raise InvalidRequest("prompt", value, "a string")
    if not value.strip():
        raise InvalidRequest("prompt", value, f"a non-empty string of at most {max_chars} characters")
    if len(value) > max_chars:
        raise InvalidRequest(
            "prompt",
            message=f"Invalid value for 'prompt': {len(value)} characters given; at most {max_chars} are allowed.",
            code="string_above_max_length",
        )
    return value


def _seconds(value: Any, spec: ModelSpec) -> str:
    allowed = " | ".join(f'"{s}"' for s in spec.seconds_allowed)
    if value is None:
        return spec.seconds_default
    if not isinstance(value, str):
        # Seed 002: seconds is a string enum; "the integer 4 returns 400" upstream, so it does here too.
        raise InvalidRequest("seconds", value, f"a string, one of {allowed} for {spec.id}")
    if value not in spec.seconds_allowed:
        raise InvalidRequest("seconds", value, f"{allowed} for {spec.id}")
    return value


def _size(value: Any, spec: ModelSpec) -> str:
    allowed = ", ".join(spec.sizes)
    if value is None:
        return spec.size_default
    if not isinstance(value, str) or value not in spec.sizes:
        raise InvalidRequest("size", value, f"{allowed} for {spec.id}")
    return value


def _fit(value: Any) -> str:
    allowed = " | ".join(f'"{f}"' for f in FITS)
    if value is None or value == "":
        return "crop"
    if not isinstance(value, str) or value not in FITS:
        raise InvalidRequest("fit", value, f"{allowed} (how the input_reference image is made the requested size)")
    return value


def _reference(
    fields: dict[str, Any], files: dict[str, Any], spec: ModelSpec, multipart: bool, allow_loopback: bool
) -> ReferenceInput | None:
    """`input_reference` as a multipart file, or in JSON as `{"image_url": "https://..."}`; `fit` with it."""
    fit = _fit(fields.get("fit"))
    upload = files.get("input_reference")
    value = fields.get("input_reference")
    if upload is None and value is None:
        if "fit" in fields and fields["fit"] not in (None, ""):
            raise InvalidRequest(
                "fit",
                fields["fit"],
                message=f"Invalid value for 'fit': {fields['fit']!r} was given without an 'input_reference'; "
                "'fit' only says how a reference image is made the requested size. Send it with one, or leave "
                "it out.",
                code="unsupported_parameter",
            )
        return None
    if not spec.image_to_video:
        raise InvalidRequest(
            "input_reference",
            given="<reference image>",
            message=f"Model '{spec.id}' is text-to-video only; send the request without 'input_reference'.",
            code="unsupported_parameter",
        )
    formats = ", ".join(spec.reference_formats)
    if upload is not None:
        return ReferenceInput(
            fit=fit,
            data=bytes(upload.data),
            content_type=str(upload.content_type) if upload.content_type else None,
            filename=upload.filename,
        )
    if multipart:
        raise InvalidRequest(
            "input_reference",
            value,
            message=f"Invalid value for 'input_reference': in a multipart/form-data request it must be a file "
            f"part ({formats}), not a text field; {_show(str(value))} was given. To give an image URL, send JSON "
            'with "input_reference": {"image_url": "https://..."}.',
            code="invalid_value",
        )
    if not isinstance(value, dict):
        raise InvalidRequest(
            "input_reference",
            value,
            f'an object {{"image_url": "https://..."}} in JSON, or a file upload in multipart/form-data ({formats})',
        )
    for key in sorted(value):
        if key not in REFERENCE_KEYS:
            hint = " (there is no Files API here; upload the image or give its URL)" if key == "file_id" else ""
            raise InvalidRequest(
                f"input_reference.{key}",
                value[key],
                message=f"Unrecognized field 'input_reference.{key}'{hint}. Allowed: image_url.",
                code="unknown_parameter",
            )
    url = value.get("image_url")
    if not isinstance(url, str) or not url.strip():
        raise InvalidRequest("input_reference.image_url", url, f"an https URL of a {formats} image")
    try:
        check_url(url, allow_loopback=allow_loopback)
    except UrlRejected as exc:
        raise InvalidRequest(
            "input_reference.image_url",
            url,
            message=f"Invalid value for 'input_reference.image_url': {_show(url)} was given, but the URL {exc}.",
            code="invalid_url",
        ) from None
    return ReferenceInput(fit=fit, image_url=url.strip())


def _show(value: str) -> str:
    return repr(value) if len(value) <= 200 else repr(value[:197] + "...")


def _webhook_url(value: Any, allow_loopback: bool) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequest("webhook_url", value, "an https URL")
    try:
        check_url(value, allow_loopback=allow_loopback)
    except UrlRejected as exc:
        raise InvalidRequest(
            "webhook_url",
            value,
            message=f"Invalid value for 'webhook_url': {_show(value)} was given, but the URL {exc}.",
            code="invalid_url",
        ) from None
    return value.strip()


def _webhook_events(value: Any, multipart: bool) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if multipart and isinstance(value, str):
        value = _json_or(value, [v.strip() for v in value.split(",") if v.strip()])
    allowed = ", ".join(EVENT_TYPES)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest("webhook_events", value, f"a list of event types: {allowed}")
    for item in value:
        if item not in EVENT_TYPES:
            raise InvalidRequest("webhook_events", item, allowed)
    return tuple(dict.fromkeys(value))


def _metadata(value: Any, multipart: bool) -> dict[str, str]:
    if value is None or value == "":
        return {}
    if multipart and isinstance(value, str):
        value = _json_or(value, value)
    if not isinstance(value, dict):
        raise InvalidRequest("metadata", value, "an object mapping strings to strings")
    if len(value) > MAX_METADATA_KEYS:
        raise InvalidRequest("metadata", f"{len(value)} keys", f"at most {MAX_METADATA_KEYS} keys")
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > MAX_METADATA_KEY_CHARS:
            raise InvalidRequest(f"metadata.{key}", key, f"keys of 1 to {MAX_METADATA_KEY_CHARS} characters")
        if not isinstance(item, str) or len(item) > MAX_METADATA_VALUE_CHARS:
            raise InvalidRequest(
                f"metadata.{key}", item, f"string values of at most {MAX_METADATA_VALUE_CHARS} characters"
            )
    return dict(value)


def _json_or(text: str, fallback: Any) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return fallback
