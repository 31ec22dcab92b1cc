"""Validation of `POST /v1/videos` against the catalog. Every rejection names the field, what was given and what
is allowed. JSON and multipart bodies arrive here as the same field map, so both follow one set of rules."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any

from .catalog import MODELS, MP4, ModelSpec, ReferenceRule, get_model, model_ids
from .errors import InvalidRequest
from .jobs import EVENT_TYPES
from .ssrf import ANY_PORT, WEBHOOK_PORTS, UrlRejected, check_url

DEFAULT_MODEL = "sora-2"
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
MAX_OPTION_CHARS = 2000

# Reference inputs, by request field (seed names): sora and Veo take one `input_reference`; Seedance takes
# `files` (images and videos, in upload order), `first_frame_image` and `last_frame_image`.
REFERENCE_FIELDS: tuple[str, ...] = ("input_reference", "files", "first_frame_image", "last_frame_image")
# Every upstream-specific option some model of the catalog takes.
OPTION_FIELDS = frozenset(name for spec in MODELS.values() for name in spec.options)
# Fields this deployment understands. Anything else is refused by name rather than silently dropped: a client
# that thinks it set a field should learn it did not.
KNOWN_FIELDS = frozenset(
    {"model", "prompt", "seconds", "duration", "size", "fit", "webhook_url", "webhook_events", "metadata"}
    | set(REFERENCE_FIELDS)
    | OPTION_FIELDS
)
URL_KEYS = frozenset({"image_url", "video_url"})
# How a reference image is made the requested size (references.py): cover and crop, fit and pad, or refuse.
FITS: tuple[str, ...] = ("crop", "pad", "none")
# ASCII digits only: str.isdigit() also takes "²", which int() refuses.
DIGITS = re.compile(r"[0-9]{1,4}")
INTEGER = re.compile(r"-?[0-9]{1,19}")
# What one job may carry in references, all told: each is read into the function's memory to be sent.
MAX_REFERENCE_BYTES_PER_JOB = 100 * 1024 * 1024


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


def parse_create(
    fields: dict[str, Any],
    *,
    files: Mapping[str, Any] | None = None,
    multipart: bool = False,
    max_prompt_chars: int = 4000,
    allow_loopback_urls: bool = False,
) -> CreateRequest:
    uploads = {
        name: list(value) if isinstance(value, list | tuple) else [value] for name, value in (files or {}).items()
    }
    unknown = sorted(set(fields) - KNOWN_FIELDS) + sorted(set(uploads) - set(REFERENCE_FIELDS))
    if unknown:
        raise InvalidRequest(
            unknown[0],
            given=fields.get(unknown[0], "<file>"),
            message=f"Unrecognized request field '{unknown[0]}'. Allowed: {', '.join(sorted(KNOWN_FIELDS))}.",
            code="unknown_parameter",
        )
    spec = _model(fields.get("model", DEFAULT_MODEL))
    _only_supported(fields, uploads, spec)
    prompt = _prompt(fields.get("prompt"), min(max_prompt_chars, spec.max_prompt_chars))
    duration_field, seconds = _seconds(fields, spec, multipart)
    options = _options(fields, spec, multipart)
    size, options = _size(fields.get("size"), spec, options, {k for k in spec.options if k in fields})
    _duration_fits_options(spec, duration_field, seconds, options)
    references = _references(fields, uploads, spec, multipart, allow_loopback_urls)
    webhook_url = _webhook_url(fields.get("webhook_url"), allow_loopback_urls)
    events = _webhook_events(fields.get("webhook_events"), multipart)
    metadata = _metadata(fields.get("metadata"), multipart)
    return CreateRequest(spec.id, prompt, seconds, size, webhook_url, events, metadata, references, options)


def _choices(values: tuple[str, ...]) -> str:
    return " | ".join(f'"{v}"' for v in values)


def _given(value: Any) -> bool:
    return value is not None and value != ""


def _only_supported(fields: dict[str, Any], uploads: dict[str, list[Any]], spec: ModelSpec) -> None:
    """A field another model takes but this one does not is refused by name, with what this model takes."""
    for name in sorted(OPTION_FIELDS):
        if _given(fields.get(name)) and name not in spec.options:
            takes = ", ".join(spec.options) or "none"
            raise InvalidRequest(
                name,
                fields[name],
                message=f"Model '{spec.id}' does not take '{name}' (its upstream options: {takes}).",
                code="unsupported_parameter",
            )
    if _given(fields.get("duration")) and spec.duration.field != "duration":
        raise InvalidRequest(
            "duration",
            fields["duration"],
            message=f"Model '{spec.id}' does not take 'duration'; give the length as 'seconds' "
            f"({_choices(spec.duration.allowed)}).",
            code="unsupported_parameter",
        )
    for name in REFERENCE_FIELDS:
        if (uploads.get(name) or _given(fields.get(name))) and spec.reference(name) is None:
            if not spec.references:
                message = f"Model '{spec.id}' is text-to-video only; send the request without '{name}'."
            else:
                takes = ", ".join(r.field for r in spec.references)
                message = f"Model '{spec.id}' does not take '{name}'; its reference fields: {takes}."
            raise InvalidRequest(name, given="<reference>", message=message, code="unsupported_parameter")


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


def _seconds(fields: dict[str, Any], spec: ModelSpec, multipart: bool) -> tuple[str, str]:
    """The length, from OpenAI's `seconds` or the upstream's own `duration` (Veo, Seedance). Returns the field
    the client used (errors name it) and the length as a string."""
    rule = spec.duration
    given = [name for name in ("seconds", "duration") if _given(fields.get(name))]
    if len(given) == 2 and str(fields["seconds"]) != str(fields["duration"]):
        raise InvalidRequest(
            "duration",
            fields["duration"],
            message=f"'seconds' ({fields['seconds']!r}) and 'duration' ({fields['duration']!r}) disagree; "
            "give the length once.",
        )
    name = given[-1] if given else (rule.field or "seconds")
    allowed = " | ".join(f'"{s}"' for s in rule.allowed)
    if not given:
        return name, rule.default
    value = fields[name]
    if rule.wire == "integer":
        # Seedance takes integer seconds; a form field is text, and "5" in JSON is read the same way.
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and DIGITS.fullmatch(value))
        ):
            raise InvalidRequest(
                name, value, f"an integer number of seconds from {rule.allowed[0]} to {rule.allowed[-1]} for {spec.id}"
            )
        text = str(int(value))
        if text not in rule.allowed:
            raise InvalidRequest(name, value, f"{rule.allowed[0]} to {rule.allowed[-1]} seconds for {spec.id}")
        return name, text
    if not isinstance(value, str):
        # Seeds 002/003: the length is a string enum; "the integer 4 returns 400" / "passing a number fails".
        raise InvalidRequest(name, value, f"a string, one of {allowed} for {spec.id}")
    if value not in rule.allowed:
        if rule.field is None:
            raise InvalidRequest(name, value, f'"{rule.default}" ({spec.id} makes videos of one length only)')
        raise InvalidRequest(name, value, f"{allowed} for {spec.id}")
    return name, value


def _options(fields: dict[str, Any], spec: ModelSpec, multipart: bool) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, allowed in spec.options.items():
        value = fields.get(name)
        if not _given(value):
            continue
        if allowed == ("int",):
            # Seed 003: "seed | int | ... (multipart form field; string-encoded number is fine)".
            text = str(value).strip() if not isinstance(value, bool) else ""
            if not (isinstance(value, int | str) and INTEGER.fullmatch(text)):
                raise InvalidRequest(name, value, "an integer (a string of digits is fine)")
            options[name] = str(int(text))
        elif allowed == ("*",):
            if not isinstance(value, str) or len(value) > MAX_OPTION_CHARS:
                raise InvalidRequest(name, value, f"a string of at most {MAX_OPTION_CHARS} characters")
            options[name] = value
        elif not isinstance(value, str) or value not in allowed:
            raise InvalidRequest(name, value, f"{_choices(allowed)} for {spec.id}")
        else:
            options[name] = value
    return options


def _size(value: Any, spec: ModelSpec, options: dict[str, str], explicit: set[str]) -> tuple[str, dict[str, str]]:
    """The output size. Where it follows options (Veo: resolution x aspectRatio; Seedance: aspect_ratio), a given
    `size` sets those options, and contradicting them is an error rather than a silent override."""
    allowed = ", ".join(spec.sizes)
    if _given(value) and (not isinstance(value, str) or value not in spec.sizes):
        raise InvalidRequest("size", value, f"{allowed} for {spec.id}")
    if not spec.size_from:
        return (value if _given(value) else spec.size_default), options
    names = spec.size_from_options
    if _given(value):
        combo = next(c for c, s in spec.size_from.items() if s == value)
        for name, wanted in zip(names, combo, strict=True):
            if name in explicit and options[name] != wanted:
                raise InvalidRequest(
                    "size",
                    value,
                    message=f"Invalid value for 'size': {value!r} is {name} {wanted!r}, but {name} "
                    f"{options[name]!r} was given. Give one of them, or values that agree.",
                )
        return value, {**options, **dict(zip(names, combo, strict=True))}
    chosen = {name: options.get(name, spec.options[name][0]) for name in names}
    return spec.size_from[tuple(chosen[n] for n in names)], {**options, **chosen}


def _duration_fits_options(spec: ModelSpec, duration_field: str, seconds: str, options: dict[str, str]) -> None:
    for option, rules in spec.duration_only.items():
        only = rules.get(options.get(option, ""))
        if only is not None and seconds not in only:
            raise InvalidRequest(
                duration_field,
                seconds,
                message=f"Invalid value for '{duration_field}': {seconds!r} at {option} {options[option]!r}; "
                f"{spec.id} allows only {_choices(only)} there (seed 003).",
            )


def _fit(value: Any) -> str:
    allowed = " | ".join(f'"{f}"' for f in FITS)
    if value is None or value == "":
        return "crop"
    if not isinstance(value, str) or value not in FITS:
        raise InvalidRequest("fit", value, f"{allowed} (how the input_reference image is made the requested size)")
    return value


def _references(
    fields: dict[str, Any], uploads: dict[str, list[Any]], spec: ModelSpec, multipart: bool, allow_loopback: bool
) -> tuple[ReferenceInput, ...]:
    """Every reference input, in upload order: multipart file parts, or in JSON `{"image_url": ...}` objects
    (`files` takes a list of `{"image_url"}` / `{"video_url"}`). `fit` applies to size-matched images."""
    fit = _fit(fields.get("fit"))
    found: list[ReferenceInput] = []
    for rule in spec.references:
        parts = uploads.get(rule.field) or []
        value = fields.get(rule.field)
        formats = ", ".join(rule.formats)
        if parts:
            items = [
                ReferenceInput(
                    fit=fit,
                    data=bytes(part.data),
                    content_type=str(part.content_type) if part.content_type else None,
                    filename=part.filename,
                    field=rule.field,
                )
                for part in parts
            ]
        elif not _given(value):
            items = []
        elif multipart:
            raise InvalidRequest(
                rule.field,
                value,
                message=f"Invalid value for '{rule.field}': in a multipart/form-data request it must be a file "
                f"part ({formats}), not a text field; {_show(str(value))} was given. To give a URL, send JSON "
                f'with "{rule.field}": {"[" if rule.count > 1 else ""}{{"image_url": "https://..."}}'
                f"{']' if rule.count > 1 else ''}.",
                code="invalid_value",
            )
        else:
            entries = value if rule.count > 1 and isinstance(value, list) else [value]
            items = [
                _url_reference(entry, f"{rule.field}[{i}]" if rule.count > 1 else rule.field, rule, fit, allow_loopback)
                for i, entry in enumerate(entries)
            ]
        if len(items) > rule.count:
            raise InvalidRequest(
                rule.field,
                f"{len(items)} files",
                message=f"Invalid value for '{rule.field}': {len(items)} were given; {spec.id} takes at most "
                f"{rule.count}.",
            )
        if not items and rule.required:
            raise InvalidRequest(
                rule.field,
                None,
                message=f"Missing '{rule.field}': {spec.id} is image-to-video only and needs one reference image "
                f'({formats}) as a multipart file or, in JSON, as {{"image_url": "https://..."}}.',
                code="missing_required_parameter",
            )
        found.extend(items)
    if _given(fields.get("fit")) and not any(r.field == "input_reference" for r in found):
        raise InvalidRequest(
            "fit",
            fields["fit"],
            message=f"Invalid value for 'fit': {fields['fit']!r} was given without an 'input_reference'; "
            "'fit' only says how a reference image is made the requested size. Send it with one, or leave "
            "it out.",
            code="unsupported_parameter",
        )
    return tuple(found)


def _url_reference(entry: Any, param: str, rule: ReferenceRule, fit: str, allow_loopback: bool) -> ReferenceInput:
    formats = ", ".join(rule.formats)
    keys = ("image_url", "video_url") if MP4 in rule.formats else ("image_url",)
    if not isinstance(entry, dict):
        raise InvalidRequest(
            param,
            entry,
            f'an object {{"{keys[0]}": "https://..."}} in JSON, or a file upload in multipart/form-data ({formats})',
        )
    for key in sorted(entry):
        if key not in keys:
            hint = " (there is no Files API here; upload the file or give its URL)" if key == "file_id" else ""
            raise InvalidRequest(
                f"{param}.{key}",
                entry[key],
                message=f"Unrecognized field '{param}.{key}'{hint}. Allowed: {', '.join(keys)}.",
                code="unknown_parameter",
            )
    given = [key for key in keys if key in entry]
    if not given:
        where = f"{param}.{keys[0]}" if len(keys) == 1 else param
        raise InvalidRequest(where, None, f"an https URL of a {formats} file as {' or '.join(keys)}")
    if len(given) > 1:
        raise InvalidRequest(param, entry, f"exactly one of {', '.join(keys)}")
    key = given[0]
    url = entry[key]
    where = f"{param}.{key}"
    if not isinstance(url, str) or not url.strip():
        raise InvalidRequest(where, url, f"an https URL of a {formats} file")
    if url.startswith("s3://"):
        # Whose object it is (the tenant's intake prefix or its uploads) is checked when the job is created.
        bucket, _, object_key = url[5:].partition("/")
        if not bucket or not object_key or object_key.endswith("/"):
            raise InvalidRequest(where, url, "s3://<bucket>/<key> of one object")
    else:
        _check_public_url(where, url, allow_loopback)
    url = url.strip()
    if key == "video_url":
        return ReferenceInput(fit=fit, field=rule.field, video_url=url)
    return ReferenceInput(fit=fit, field=rule.field, image_url=url)


def _check_public_url(where: str, url: str, allow_loopback: bool) -> None:
    try:
        check_url(url, ports=ANY_PORT, allow_loopback=allow_loopback)
    except UrlRejected as exc:
        raise InvalidRequest(
            where,
            url,
            message=f"Invalid value for '{where}': {_show(url)} was given, but the URL {exc}.",
            code="invalid_url",
        ) from None


def _show(value: str) -> str:
    return repr(value) if len(value) <= 200 else repr(value[:197] + "...")


def _webhook_url(value: Any, allow_loopback: bool) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequest("webhook_url", value, "an https URL")
    try:
        check_url(value, ports=WEBHOOK_PORTS, allow_loopback=allow_loopback)
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
