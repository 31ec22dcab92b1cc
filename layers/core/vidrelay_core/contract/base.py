"""What every model of the public API shares.

Response models forbid unknown fields, so a field added to an answer without a schema fails its tests. Request
models also refuse an unknown field by name before anything else is checked: a client that thinks it set a
field should learn it did not. Validators raise `refuse(...)`/`invalid(...)`; the one converter in `errors.py`
turns those and pydantic's own errors into the OpenAI error body.

Models build their validators on first use (`defer_build`), not at import: the api function's cold start pays
only for the models a request needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

# Marks an error raised by a vidrelay validator (its message is final) and carries the sub-field it is about.
FIELD_KEY = "field"


@dataclass(frozen=True)
class RequestContext:
    """How a request arrived, for the rules that depend on it: in multipart/form-data every field is text (the
    JSON-string and comma forms are read there only); local mode lets URLs point at loopback."""

    multipart: bool = False
    allow_loopback_urls: bool = False
    max_prompt_chars: int = 4000
    max_upload_bytes: int = 50 * 1024 * 1024


def request_context(info: ValidationInfo) -> RequestContext:
    context = info.context
    return context if isinstance(context, RequestContext) else RequestContext()


def refuse(message: str, code: str = "invalid_value", *, field: str = "") -> PydanticCustomError:
    """A finished error message. `{param}` in it is filled in with the field's full path (`files[0].image_url`)
    by the converter; `field` names the sub-field when a validator of the whole model finds it."""
    return PydanticCustomError(code, message, {FIELD_KEY: field})


def invalid(given: Any, allowed: str, code: str = "invalid_value", *, field: str = "") -> PydanticCustomError:
    """The usual shape: which field, what was given, what is allowed."""
    return refuse(f"Invalid value for '{{param}}': {show(given)}. Allowed: {allowed}.", code, field=field)


def form_integer(value: Any, info: ValidationInfo) -> Any:
    """In multipart/form-data a number arrives as text; in JSON it must be a number (strict fields refuse "5")."""
    if request_context(info).multipart and isinstance(value, str) and value.strip().isdigit() and value.isascii():
        return int(value)
    return value


def show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def given(value: Any) -> bool:
    """An empty form field counts as not given, as an absent one does."""
    return value is not None and value != ""


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class RequestModel(ApiModel):
    # Said after "Unrecognized request field 'x'" for names clients are known to try.
    unknown_field_hints: ClassVar[dict[str, str]] = {}

    @classmethod
    def wire_names(cls) -> frozenset[str]:
        return frozenset(info.alias or name for name, info in cls.model_fields.items())

    @model_validator(mode="before")
    @classmethod
    def _known_fields_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = cls.wire_names()
            unknown = sorted(str(name) for name in data if name not in known)
            if unknown:
                hint = cls.unknown_field_hints.get(unknown[0], "")
                raise refuse(
                    f"Unrecognized request field '{{param}}'{hint}. Allowed: {', '.join(sorted(known))}.",
                    "unknown_parameter",
                    field=unknown[0],
                )
            broken = _not_utf8(data)
            if broken is not None:
                raise refuse(
                    "Invalid value for '{param}': it is not valid Unicode text (it holds a lone UTF-16 surrogate, "
                    "which cannot be stored or sent). Send the text as UTF-8.",
                    "invalid_text",
                    field=broken,
                )
        return data


def _not_utf8(value: Any, path: str = "") -> str | None:
    """The path of the first string (key or value) that UTF-8 cannot encode, e.g. JSON's "\\ud800" alone."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _not_utf8(key) is not None:
                return path or "body"
            found = _not_utf8(item, where)
            if found is not None:
                return found
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _not_utf8(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None
