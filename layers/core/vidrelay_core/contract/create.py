"""`POST /v1/videos`: the body (JSON, or multipart/form-data fields and files) validated against the catalog,
and the normalised request the relay creates a job from.

The fixed fields are OpenAI's and vidrelay's own. The upstream-specific options (Veo `resolution`, Seedance
`aspect_ratio`, ...) and the reference fields (`input_reference`, `files`, ...) are read from the catalog: a
model with a new option is a new catalog entry, and the API takes and documents the field. Every per-model rule
(lengths and their wire types, sizes, options, size from options, lengths only some options allow, references)
is a validator reading the model's `ModelSpec`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    InstanceOf,
    PrivateAttr,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)

from ..bodies import MAX_JSON_DEPTH, UploadedFile, json_depth
from ..catalog import FITS, MODELS, MP4, ModelSpec, get_model, model_ids
from ..jobs import EVENT_TYPES
from ..ssrf import ANY_PORT, WEBHOOK_PORTS, UrlRejected, check_url
from .base import RequestContext, RequestModel, given, invalid, refuse, request_context, show
from .errors import validated

DEFAULT_MODEL = "sora-2"
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
MAX_OPTION_CHARS = 2000
MAX_IDEMPOTENCY_KEY_CHARS = 255
# What one job may carry in references, all told: each is read into the function's memory to be sent.
MAX_REFERENCE_BYTES_PER_JOB = 100 * 1024 * 1024

# Reference inputs and upstream options, by request field (seed names), as the catalog's models take them.
REFERENCE_FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys(rule.field for spec in MODELS.values() for rule in spec.references)
)
OPTION_FIELDS: tuple[str, ...] = tuple(dict.fromkeys(name for spec in MODELS.values() for name in spec.options))
# ASCII digits only: str.isdigit() also takes "²", which int() refuses.
DIGITS = re.compile(r"[0-9]{1,4}")
INTEGER = re.compile(r"-?[0-9]{1,19}")

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
Fit = Literal[FITS]  # type: ignore[valid-type]
ModelId = Annotated[str, WithJsonSchema({"type": "string", "enum": model_ids()})]
# A multipart file part as the bodies parser hands it over; in the document, a binary form field.
FilePart = Annotated[InstanceOf[UploadedFile], WithJsonSchema({"type": "string", "format": "binary"})]


@dataclass(frozen=True)
class ReferenceInput:
    """A reference input as the client gave it: uploaded bytes, or a URL (https, already through the SSRF guard
    once; fetched, and checked again, when the job is created). `field` is the request field it came in."""

    fit: str = "crop"
    data: bytes | None = field(default=None, repr=False)
    content_type: str | None = None
    filename: str | None = None
    image_url: str | None = None
    video_url: str | None = None
    field: str = "input_reference"

    @property
    def url(self) -> str | None:
        return self.image_url or self.video_url

    @property
    def kind(self) -> str:
        """What the input looks like before it is opened: an MP4 has its `ftyp` box at byte 4."""
        if self.video_url is not None or (self.data is not None and self.data[4:8] == b"ftyp"):
            return "video"
        return "image"

    def fingerprint(self) -> dict[str, Any]:
        """What an Idempotency-Key compares: the bytes' hash, not the bytes."""
        return {
            "fit": self.fit,
            "sha256": hashlib.sha256(self.data).hexdigest() if self.data is not None else None,
            "content_type": self.content_type,
            "image_url": self.image_url,
            **({"video_url": self.video_url} if self.video_url else {}),
            **({"field": self.field} if self.field != "input_reference" else {}),
        }


@dataclass(frozen=True)
class CreateRequest:
    """A create request after validation: defaults applied, the size and the options resolved."""

    model: str
    prompt: str
    seconds: str
    size: str
    webhook_url: str | None = None
    webhook_events: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    # Reference inputs as given (bytes or URL), in upload order; prepared when the job is created.
    references: tuple[ReferenceInput, ...] = ()
    options: dict[str, str] = field(default_factory=dict)

    @property
    def reference(self) -> ReferenceInput | None:
        """The one `input_reference` (sora, Veo, sora_video2), if any."""
        return next((r for r in self.references if r.field == "input_reference"), None)

    def fingerprint(self) -> str:
        """Stable hash of the normalised request, compared under one Idempotency-Key. A request without
        references or options hashes as it did before they existed."""
        skip = {"references", "options"}
        body: dict[str, Any] = {f.name: getattr(self, f.name) for f in dataclass_fields(self) if f.name not in skip}
        if len(self.references) == 1 and self.references[0].field == "input_reference":
            body["reference"] = self.references[0].fingerprint()
        elif self.references:
            body["references"] = [r.fingerprint() for r in self.references]
        if self.options:
            body["options"] = self.options
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# -- URL references ------------------------------------------------------------------------------------------


def _url(value: Any, info: ValidationInfo, what: str) -> str | None:
    """An https URL through the SSRF guard, or an `s3://` URI (whose object it is, the tenant's intake prefix or
    its uploads, is checked when the job is created)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid(value, f"an https URL of {what}")
    if value.startswith("s3://"):
        bucket, _, object_key = value[5:].partition("/")
        if not bucket or not object_key or object_key.endswith("/"):
            raise invalid(value, "s3://<bucket>/<key> of one object")
        return value.strip()
    return checked_url(value, info, ports=ANY_PORT)


def checked_url(value: str, info: ValidationInfo, *, ports: frozenset[int] | None = WEBHOOK_PORTS) -> str:
    """The URL through the SSRF guard; webhook receivers only on the web's ports, reference files on any."""
    try:
        check_url(value, ports=ports, allow_loopback=request_context(info).allow_loopback_urls)
    except UrlRejected as exc:
        shown = show(value, 200)
        raise refuse(f"Invalid value for '{{param}}': {shown} was given, but the URL {exc}.", "invalid_url") from None
    return value.strip()


class _UrlReference(RequestModel):
    unknown_field_hints = {"file_id": " (there is no Files API here; upload the file or give its URL)"}


class ImageUrlReference(_UrlReference):
    image_url: str = Field(
        description="https URL of a JPEG, PNG or WebP (at most 20 MiB), fetched through the SSRF guard; or an "
        "s3:// URI in the tenant's intake bucket or of an upload from POST /v1/uploads"
    )

    @field_validator("image_url", mode="before")
    @classmethod
    def _image_url(cls, value: Any, info: ValidationInfo) -> Any:
        return _url(value, info, "an image file")


class FileReference(_UrlReference):
    image_url: str | None = Field(default=None, description="An image: https URL or s3:// URI")
    video_url: str | None = Field(default=None, description="An MP4 (Seedance): https URL or s3:// URI")

    @field_validator("image_url", "video_url", mode="before")
    @classmethod
    def _file_url(cls, value: Any, info: ValidationInfo) -> Any:
        return _url(value, info, "an image file" if info.field_name == "image_url" else "an MP4 file")

    @model_validator(mode="after")
    def _exactly_one(self) -> FileReference:
        if self.image_url is None and self.video_url is None:
            raise refuse("Missing '{param}'. Allowed: an https URL of a file as image_url or video_url.")
        if self.image_url is not None and self.video_url is not None:
            raise refuse("Invalid value for '{param}': both were given. Allowed: exactly one of image_url, video_url.")
        return self


# -- the create body -----------------------------------------------------------------------------------------


def _spec(info: ValidationInfo) -> ModelSpec | None:
    """The model's catalog entry, once `model` (the first field) validated; otherwise its error is the answer."""
    model = info.data.get("model")
    return get_model(model) if isinstance(model, str) else None


def _choices(values: tuple[str, ...]) -> str:
    return " | ".join(f'"{v}"' for v in values)


def _json_or(text: str, fallback: Any) -> Any:
    """A form field's JSON-string form (`metadata='{"a": "b"}'`), or the text itself when it is no JSON (or nests
    deeper than any field can: see bodies.json_depth)."""
    if json_depth(text.encode("utf-8", "surrogatepass")) > MAX_JSON_DEPTH:
        return fallback
    try:
        return json.loads(text)
    except ValueError:
        return fallback


def _prompt_is_required(schema: dict[str, Any]) -> None:
    # `prompt` defaults to None only so that its own validator, which knows the model's limit, says what a
    # missing prompt must be; to clients it is required.
    schema["properties"]["prompt"].pop("default", None)
    schema["required"] = ["prompt", *schema.get("required", [])]


class _CreateVideoFields(RequestModel):
    """The fields every model shares; the catalog's options and reference fields are added below."""

    model_config = ConfigDict(json_schema_extra=_prompt_is_required)

    model: ModelId = Field(default=DEFAULT_MODEL, description="A model of GET /v1/models")
    prompt: str = Field(
        default=None,
        validate_default=True,
        description="What the video shows (at most 4000 characters, less for some models)",
    )
    seconds: str | None = Field(
        default=None,
        description='The length, as OpenAI names it: "4" | "8" | "12" for sora; the same values as `duration` '
        "for Veo and Seedance (GET /v1/models lists each model's)",
        examples=["4"],
    )
    duration: str | int | None = Field(
        default=None, description='Veo: the string "4" | "6" | "8"; Seedance: integer seconds 4-15 (default 5)'
    )
    size: str | None = Field(default=None, description="widthxheight; each model's sizes are in GET /v1/models")
    fit: Fit | None = Field(
        default=None,
        description="How an input_reference image is made the requested size: cover and crop (default), fit and "
        "pad, or refuse any other size",
    )
    webhook_url: str | None = Field(default=None, description="Where signed events for this job are sent (https)")
    webhook_events: list[EventType] | None = Field(
        default=None,
        description="Only these event types are sent to webhook_url (default: all). In multipart: repeated "
        "`webhook_events[]` parts, a JSON list, or a comma-separated list",
    )
    metadata: dict[str, str] | None = Field(
        default=None,
        description=f"Up to {MAX_METADATA_KEYS} string pairs, echoed on the Video object and in events. In "
        "multipart: `metadata[key]` fields or a JSON object",
    )

    _request: CreateRequest | None = PrivateAttr(default=None)

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any) -> Any:
        allowed = ", ".join(model_ids())
        if not isinstance(value, str):
            raise invalid(value, f"a string, one of {allowed}")
        if get_model(value) is None:
            raise invalid(value, allowed, "model_not_found")
        return value

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt(cls, value: Any, info: ValidationInfo) -> Any:
        spec = _spec(info)
        limit = request_context(info).max_prompt_chars
        limit = min(limit, spec.max_prompt_chars) if spec else limit
        rule = f"a non-empty string of at most {limit} characters"
        if value is None:
            raise refuse(f"Missing '{{param}}'. Allowed: {rule}.", "missing_required_parameter")
        if not isinstance(value, str):
            raise invalid(value, "a string")
        if not value.strip():
            raise invalid(value, rule)
        if len(value) > limit:
            raise refuse(
                f"Invalid value for '{{param}}': {len(value)} characters given; at most {limit} are allowed.",
                "string_above_max_length",
            )
        return value

    @field_validator("seconds", "duration", mode="before")
    @classmethod
    def _length(cls, value: Any, info: ValidationInfo) -> Any:
        """The length, from OpenAI's `seconds` or the upstream's own `duration` (Veo, Seedance), as text."""
        spec = _spec(info)
        if not given(value) or spec is None:
            return None if not given(value) else value
        rule = spec.duration
        if info.field_name == "duration" and rule.field != "duration":
            raise refuse(
                f"Model '{spec.id}' does not take 'duration'; give the length as 'seconds' ({_choices(rule.allowed)}).",
                "unsupported_parameter",
            )
        if rule.wire == "integer":
            # Seedance takes integer seconds; a form field is text, and "5" in JSON is read the same way.
            if isinstance(value, bool) or not (
                isinstance(value, int) or (isinstance(value, str) and DIGITS.fullmatch(value))
            ):
                raise invalid(
                    value, f"an integer number of seconds from {rule.allowed[0]} to {rule.allowed[-1]} for {spec.id}"
                )
            text = str(int(value))
            if text not in rule.allowed:
                raise invalid(value, f"{rule.allowed[0]} to {rule.allowed[-1]} seconds for {spec.id}")
        elif not isinstance(value, str):
            # Seeds 002/003: the length is a string enum; "the integer 4 returns 400" / "passing a number fails".
            raise invalid(value, f"a string, one of {_choices(rule.allowed)} for {spec.id}")
        elif value not in rule.allowed:
            if rule.field is None:
                raise invalid(value, f'"{rule.default}" ({spec.id} makes videos of one length only)')
            raise invalid(value, f"{_choices(rule.allowed)} for {spec.id}")
        else:
            text = value
        seconds = info.data.get("seconds")
        if info.field_name == "duration" and seconds is not None and seconds != text:
            raise refuse(
                f"'seconds' ({seconds!r}) and 'duration' ({value!r}) disagree; give the length once.",
            )
        return text

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, value: Any, info: ValidationInfo) -> Any:
        spec = _spec(info)
        if not given(value):
            return None
        if spec is not None and (not isinstance(value, str) or value not in spec.sizes):
            raise invalid(value, f"{', '.join(spec.sizes)} for {spec.id}")
        return value

    @field_validator("fit", mode="before")
    @classmethod
    def _fit(cls, value: Any) -> Any:
        if not given(value):
            return None
        if not isinstance(value, str) or value not in FITS:
            raise invalid(value, f"{_choices(FITS)} (how the input_reference image is made the requested size)")
        return value

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _webhook_url(cls, value: Any, info: ValidationInfo) -> Any:
        if not given(value):
            return None
        if not isinstance(value, str):
            raise invalid(value, "an https URL")
        return checked_url(value, info)

    @field_validator("webhook_events", mode="before")
    @classmethod
    def _webhook_events(cls, value: Any, info: ValidationInfo) -> Any:
        if not given(value):
            return None
        if request_context(info).multipart and isinstance(value, str):
            value = _json_or(value, [v.strip() for v in value.split(",") if v.strip()])
        allowed = ", ".join(EVENT_TYPES)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid(value, f"a list of event types: {allowed}")
        for item in value:
            if item not in EVENT_TYPES:
                raise invalid(item, allowed)
        return list(dict.fromkeys(value))

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata(cls, value: Any, info: ValidationInfo) -> Any:
        if not given(value):
            return None
        if request_context(info).multipart and isinstance(value, str):
            value = _json_or(value, value)
        if not isinstance(value, dict):
            raise invalid(value, "an object mapping strings to strings")
        if len(value) > MAX_METADATA_KEYS:
            raise invalid(f"{len(value)} keys", f"at most {MAX_METADATA_KEYS} keys")
        for key, item in value.items():
            if not isinstance(key, str) or not key or len(key) > MAX_METADATA_KEY_CHARS:
                raise invalid(key, f"keys of 1 to {MAX_METADATA_KEY_CHARS} characters", field=str(key))
            if not isinstance(item, str) or len(item) > MAX_METADATA_VALUE_CHARS:
                raise invalid(item, f"string values of at most {MAX_METADATA_VALUE_CHARS} characters", field=key)
        return dict(value)

    # -- catalog fields: options and references --------------------------------------------------------------

    @field_validator(*OPTION_FIELDS, mode="before", check_fields=False)
    @classmethod
    def _option(cls, value: Any, info: ValidationInfo) -> Any:
        spec = _spec(info)
        name = str(info.field_name)
        if not given(value) or spec is None:
            return None if not given(value) else value
        allowed = spec.options.get(name)
        if allowed is None:
            takes = ", ".join(spec.options) or "none"
            raise refuse(
                f"Model '{spec.id}' does not take '{name}' (its upstream options: {takes}).", "unsupported_parameter"
            )
        if allowed == ("int",):
            # Seed 003: "seed | int | ... (multipart form field; string-encoded number is fine)".
            text = str(value).strip() if not isinstance(value, bool) else ""
            if not (isinstance(value, int | str) and INTEGER.fullmatch(text)):
                raise invalid(value, "an integer (a string of digits is fine)")
            return str(int(text))
        if allowed == ("*",):
            if not isinstance(value, str) or len(value) > MAX_OPTION_CHARS:
                raise invalid(value, f"a string of at most {MAX_OPTION_CHARS} characters")
            return value
        if not isinstance(value, str) or value not in allowed:
            raise invalid(value, f"{_choices(allowed)} for {spec.id}")
        return value

    @field_validator(*REFERENCE_FIELDS, mode="before", check_fields=False)
    @classmethod
    def _reference(cls, value: Any, info: ValidationInfo) -> Any:
        """In JSON a URL object (a list of them for a field that takes several); in multipart file parts."""
        spec = _spec(info)
        name = str(info.field_name)
        if not given(value) or value == [] or spec is None:
            return None if not given(value) or value == [] else value
        rule = spec.reference(name)
        if rule is None:
            if not spec.references:
                message = f"Model '{spec.id}' is text-to-video only; send the request without '{name}'."
            else:
                message = f"Model '{spec.id}' does not take '{name}'; its reference fields: " + ", ".join(
                    r.field for r in spec.references
                )
                message += "."
            raise refuse(message, "unsupported_parameter")
        formats = ", ".join(rule.formats)
        many = rule.count > 1
        items = value if isinstance(value, list) else [value]
        if request_context(info).multipart and not all(isinstance(item, UploadedFile) for item in items):
            text = next(item for item in items if not isinstance(item, UploadedFile))
            raise refuse(
                f"Invalid value for '{{param}}': in a multipart/form-data request it must be a file part "
                f"({formats}), not a text field; {show(str(text), 200)} was given. To give a URL, send JSON "
                f'with "{name}": {"[" if many else ""}{{"image_url": "https://..."}}{"]" if many else ""}.',
            )
        if len(items) > rule.count:
            raise refuse(
                f"Invalid value for '{{param}}': {len(items)} were given; {spec.id} takes at most {rule.count}."
            )
        keys = "image_url" if MP4 not in rule.formats else "image_url or video_url"
        for number, item in enumerate(items):
            if not isinstance(item, dict | UploadedFile):
                raise invalid(
                    item,
                    f'an object {{"{keys.split()[0]}": "https://..."}} in JSON, or a file upload in '
                    f"multipart/form-data ({formats})",
                    field=f"[{number}]" if many else "",
                )
        return items if many else items[0]

    @model_validator(mode="after")
    def _catalog_rules(self) -> _CreateVideoFields:
        """The rules between fields, and the request they resolve to."""
        spec = get_model(self.model)
        assert spec is not None  # the model field validated
        rule = spec.duration
        length_field = "duration" if self.duration is not None else "seconds" if self.seconds else None
        length_field = length_field or rule.field or "seconds"
        seconds = str(self.duration or self.seconds or rule.default)
        options = {name: str(getattr(self, name)) for name in spec.options if getattr(self, name, None) is not None}
        size = self.size
        if spec.size_from:
            names = spec.size_from_options
            if size is not None:
                combo = next(c for c, s in spec.size_from.items() if s == size)
                for name, wanted in zip(names, combo, strict=True):
                    if name in options and options[name] != wanted:
                        raise refuse(
                            f"Invalid value for '{{param}}': {size!r} is {name} {wanted!r}, but {name} "
                            f"{options[name]!r} was given. Give one of them, or values that agree.",
                            field="size",
                        )
                options.update(zip(names, combo, strict=True))
            else:
                chosen = {name: options.get(name, spec.options[name][0]) for name in names}
                size = spec.size_from[tuple(chosen[n] for n in names)]
                options.update(chosen)
        size = size or spec.size_default
        for option, only_at in spec.duration_only.items():
            only = only_at.get(options.get(option, ""))
            if only is not None and seconds not in only:
                raise refuse(
                    f"Invalid value for '{{param}}': {seconds!r} at {option} {options[option]!r}; {spec.id} allows "
                    f"only {_choices(only)} there (seed 003).",
                    field=length_field,
                )
        fit = self.fit or "crop"
        references: list[ReferenceInput] = []
        for reference_rule in spec.references:
            value = getattr(self, reference_rule.field, None)
            items = value if isinstance(value, list) else [value] if value is not None else []
            if not items and reference_rule.required:
                raise refuse(
                    f"Missing '{{param}}': {spec.id} is image-to-video only and needs one reference image "
                    f"({', '.join(reference_rule.formats)}) as a multipart file or, in JSON, as "
                    '{"image_url": "https://..."}.',
                    "missing_required_parameter",
                    field=reference_rule.field,
                )
            references.extend(_reference_input(item, reference_rule.field, fit) for item in items)
        if self.fit is not None and not any(r.field == "input_reference" for r in references):
            raise refuse(
                f"Invalid value for '{{param}}': {self.fit!r} was given without an 'input_reference'; 'fit' only says "
                "how a reference image is made the requested size. Send it with one, or leave it out.",
                "unsupported_parameter",
                field="fit",
            )
        self._request = CreateRequest(
            model=spec.id,
            prompt=self.prompt,
            seconds=seconds,
            size=size,
            webhook_url=self.webhook_url,
            webhook_events=tuple(self.webhook_events or ()),
            metadata=dict(self.metadata or {}),
            references=tuple(references),
            options=options,
        )
        return self

    def to_request(self) -> CreateRequest:
        assert self._request is not None  # set by the last validator
        return self._request


def _reference_input(item: Any, field_name: str, fit: str) -> ReferenceInput:
    if isinstance(item, UploadedFile):
        return ReferenceInput(
            fit=fit,
            data=bytes(item.data),
            content_type=str(item.content_type) if item.content_type else None,
            filename=item.filename,
            field=field_name,
        )
    if isinstance(item, FileReference) and item.video_url is not None:
        return ReferenceInput(fit=fit, field=field_name, video_url=item.video_url)
    return ReferenceInput(fit=fit, field=field_name, image_url=item.image_url)


def _option_field(name: str) -> Any:
    takes = [spec for spec in MODELS.values() if name in spec.options]
    values = tuple(dict.fromkeys(v for spec in takes for v in spec.options[name]))
    where = ", ".join(spec.id for spec in takes)
    if values == ("int",):
        return (int | str | None, Field(default=None, description=f"{where}: an integer (digits as text are fine)"))
    if values == ("*",):
        return (str | None, Field(default=None, max_length=MAX_OPTION_CHARS, description=f"{where}: free text"))
    return (Literal[values] | None, Field(default=None, description=f"{where}"))


def _reference_field(name: str, *, multipart: bool) -> Any:
    rules = [rule for spec in MODELS.values() for rule in spec.references if rule.field == name]
    takers = ", ".join(spec.id for spec in MODELS.values() if spec.reference(name) is not None)
    many = max(rule.count for rule in rules) > 1
    if multipart:
        part: Any = FilePart
        how = "a file part" + (f" per file (repeated `{name}` or `{name}[]` parts, in upload order)" if many else "")
    else:
        part = FileReference if any(MP4 in rule.formats for rule in rules) else ImageUrlReference
        how = "a URL object" + (" per file, in upload order" if many else "")
    annotation = list[part] | None if many else part | None
    return (annotation, Field(default=None, description=f"{takers}: {how}"))


def _create_body(name: str, *, multipart: bool, doc: str) -> type[_CreateVideoFields]:
    return create_model(
        name,
        __base__=_CreateVideoFields,
        __doc__=doc,
        **{option: _option_field(option) for option in OPTION_FIELDS},
        **{reference: _reference_field(reference, multipart=multipart) for reference in REFERENCE_FIELDS},
    )


CreateVideoRequest = _create_body(
    "CreateVideoRequest",
    multipart=False,
    doc="The body of POST /v1/videos as JSON: references are URL objects.",
)
CreateVideoForm = _create_body(
    "CreateVideoForm",
    multipart=True,
    doc="The body of POST /v1/videos as multipart/form-data: references are file parts, `metadata[key]` fields "
    "make the metadata object and repeated `key[]` parts a list.",
)
# Fields this deployment understands, by their wire names.
KNOWN_FIELDS: frozenset[str] = CreateVideoRequest.wire_names()


def parse_create(
    fields: Mapping[str, Any],
    *,
    files: Mapping[str, Any] | None = None,
    multipart: bool = False,
    max_prompt_chars: int = 4000,
    allow_loopback_urls: bool = False,
) -> CreateRequest:
    """A body's fields and file parts (bodies.py) as a validated create request."""
    uploads = {
        name: list(value) if isinstance(value, list | tuple) else [value] for name, value in (files or {}).items()
    }
    context = RequestContext(
        multipart=multipart, allow_loopback_urls=allow_loopback_urls, max_prompt_chars=max_prompt_chars
    )
    model = CreateVideoForm if multipart or uploads else CreateVideoRequest
    return validated(model, {**fields, **uploads}, context).to_request()


class CreateVideoHeaders(RequestModel):
    idempotency_key: str | None = Field(
        default=None,
        alias="Idempotency-Key",
        max_length=MAX_IDEMPOTENCY_KEY_CHARS,
        description="The same key and body within 24 hours return the same video; another body is a 409",
    )

    @field_validator("idempotency_key", mode="before")
    @classmethod
    def _key(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) > MAX_IDEMPOTENCY_KEY_CHARS:
            raise invalid(value, f"at most {MAX_IDEMPOTENCY_KEY_CHARS} characters")
        return value
