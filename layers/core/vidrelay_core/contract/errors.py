"""The error body of every refusal, and the one converter from a validation error to it.

Whatever refused the input (a pydantic type check, a catalog rule, the SSRF guard), the client gets the OpenAI
error shape naming the field by its path (`metadata.k`, `files[0].image_url`), what was given and what is
allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from ..errors import InvalidRequest
from .base import FIELD_KEY, ApiModel, RequestContext, show


class ErrorDetail(ApiModel):
    message: str = Field(description="Names the field, what was given and what is allowed")
    type: str = Field(examples=["invalid_request_error"])
    param: str | None = Field(examples=["seconds"])
    code: str | None = Field(examples=["invalid_value"])


class ErrorResponse(ApiModel):
    error: ErrorDetail


# What pydantic's own checks allow, said the way the catalog's rules say it.
_ALLOWED_BY_TYPE: dict[str, str] = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "a list",
    "date_type": "a UTC day as YYYY-MM-DD",
    "date_parsing": "a UTC day as YYYY-MM-DD",
    "date_from_datetime_parsing": "a UTC day as YYYY-MM-DD",
    "date_from_datetime_inexact": "a UTC day as YYYY-MM-DD",
}
_ALLOWED_BY_LIMIT: dict[str, str] = {
    "greater_than_equal": "at least {ge}",
    "greater_than": "more than {gt}",
    "less_than_equal": "at most {le}",
    "less_than": "less than {lt}",
    "string_too_short": "at least {min_length} characters",
    "string_too_long": "at most {max_length} characters",
    "too_short": "at least {min_length} items",
    "too_long": "at most {max_length} items",
    "string_pattern_mismatch": "text matching {pattern}",
    "literal_error": "{expected}",
    "enum": "{expected}",
}

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Any, context: RequestContext | None = None) -> M:
    """`model` validated from `data`; any refusal raised as the OpenAI-shaped `InvalidRequest`."""
    try:
        return model.model_validate(data, context=context or RequestContext())
    except ValidationError as exc:
        raise invalid_request(exc.errors(include_url=False)) from None


def invalid_request(errors: Sequence[Mapping[str, Any]]) -> InvalidRequest:
    """The first error, as the client sees it. Errors come in field order, so it is the first field wrong."""
    error = errors[0]
    context: Mapping[str, Any] = error.get("ctx") or {}
    loc = tuple(error.get("loc") or ())
    param = field_path(loc, str(context.get(FIELD_KEY) or ""))
    given = error.get("input")
    kind = str(error["type"])
    if FIELD_KEY in context:
        # A vidrelay rule: its message is already written for the client.
        return InvalidRequest(param, given, message=str(error["msg"]).replace("{param}", param), code=kind)
    if kind == "missing":
        return InvalidRequest(
            param, message=f"Missing required parameter: '{param}'.", code="missing_required_parameter"
        )
    if kind == "extra_forbidden":
        return InvalidRequest(param, given, message=f"Unrecognized request field '{param}'.", code="unknown_parameter")
    allowed = _ALLOWED_BY_TYPE.get(kind)
    if allowed is None and kind in _ALLOWED_BY_LIMIT:
        allowed = _ALLOWED_BY_LIMIT[kind].format(**{k: str(v) for k, v in context.items()})
    message = f"Invalid value for '{param}': {show(given)}. Allowed: {allowed or str(error['msg'])}."
    return InvalidRequest(param, given, message=message)


def field_path(loc: Sequence[Any], sub_field: str = "") -> str:
    """`("files", 0, "image_url")` as `files[0].image_url`: how OpenAI names a nested parameter."""
    path = ""
    for part in (*loc, *([sub_field] if sub_field else [])):
        if isinstance(part, int):
            path += f"[{part}]"
        elif str(part).startswith("["):
            path += str(part)
        else:
            path += f".{part}" if path else str(part)
    return path or "body"
