"""Request bodies as API Gateway hands them over: JSON or multipart/form-data, possibly base64-encoded.

Both become one field map plus a file map, so validation has one set of rules for both. Form fields follow
what the OpenAI SDKs send: `metadata[order]=42` is the object `{"order": "42"}`, repeated `key[]` (or `key`)
parts are a list; objects nest one level only.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any

from .errors import InvalidRequest, PayloadTooLarge

# API Gateway and Lambda take about 6 MB inline; larger inputs go through S3 (SPEC §3).
MAX_BODY_BYTES = 6 * 1024 * 1024
# The deepest nesting a JSON body may have: the API's deepest field (files[n].image_url) is three levels down.
MAX_JSON_DEPTH = 32
# `name`, `name[]` (a list item) or `name[key]` (an object entry), and anything deeper.
_FORM_NAME = re.compile(r"(?P<name>[^\[\]]+)(?:\[(?P<key>[^\[\]]*)\])?(?P<rest>.*)", re.S)


@dataclass(frozen=True)
class UploadedFile:
    filename: str | None
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class ParsedBody:
    fields: dict[str, Any]
    # Repeated parts of one name (Seedance `files`) keep their upload order.
    files: dict[str, list[UploadedFile]]
    multipart: bool


def raw_body(body: str | None, is_base64: bool) -> bytes:
    if body is None:
        return b""
    if is_base64:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("body", message="The request body is not valid base64.") from None
    return body.encode()


def parse_body(content_type: str | None, data: bytes) -> ParsedBody:
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge(
            f"The request body is {len(data)} bytes; at most {MAX_BODY_BYTES} are accepted inline. "
            "Put large references in S3 and send an s3:// URI instead.",
            param="body",
        )
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json":
        return ParsedBody(_json_fields(data), {}, multipart=False)
    if media == "multipart/form-data":
        return _multipart(content_type or "", data)
    raise InvalidRequest(
        "Content-Type",
        content_type or "(none)",
        "application/json or multipart/form-data",
        code="unsupported_media_type",
    )


_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"\\')


def json_depth(data: bytes) -> int:
    """How deeply the JSON text nests objects and arrays (brackets inside strings do not count). Measured before
    parsing: Python's parser recurses per level, and a body of a few thousand `[` would exhaust the stack."""
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        return 0  # the common case: too few brackets to nest too deep, whatever their order
    depth = deepest = 0
    in_string = escaped = False
    # Only brackets, quotes and backslashes decide the depth: everything else is dropped first, in C.
    for byte in data.translate(None, _NOT_STRUCTURE):
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _json_fields(data: bytes) -> dict[str, Any]:
    if not data.strip():
        raise InvalidRequest("body", message="The request body is empty; expected a JSON object.")
    if json_depth(data) > MAX_JSON_DEPTH:
        raise InvalidRequest(
            "body",
            message=f"The request body nests objects or arrays more than {MAX_JSON_DEPTH} levels deep; no field "
            "of this API needs more than a few.",
            code="invalid_json",
        )
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            "body", message=f"The request body is not valid JSON: {exc}.", code="invalid_json"
        ) from None
    if not isinstance(value, dict):
        raise InvalidRequest("body", type(value).__name__, "a JSON object", code="invalid_json")
    return value


def _multipart(content_type: str, data: bytes) -> ParsedBody:
    if "boundary=" not in content_type:
        raise InvalidRequest(
            "Content-Type", content_type, "multipart/form-data with a boundary", code="invalid_multipart"
        )
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + data
    )
    parts = list(message.iter_parts()) if message.is_multipart() else []
    if not parts or message.defects:
        raise InvalidRequest(
            "body",
            message="The multipart/form-data body is malformed (no parts found for the declared boundary).",
            code="invalid_multipart",
        )
    fields: dict[str, Any] = {}
    files: dict[str, list[UploadedFile]] = {}
    for part in parts:
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("body", message="A multipart part has no form field name.", code="invalid_multipart")
        payload = part.get_payload(decode=True)
        payload = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None or part.get_content_type() not in ("text/plain",):
            # `files[]` is how SDKs name one file of a list; repeated parts keep their order either way.
            upload = UploadedFile(filename, part.get_content_type(), payload)
            files.setdefault(name.removesuffix("[]"), []).append(upload)
            continue
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(
                name, message=f"Form field '{name}' is not UTF-8 text.", code="invalid_multipart"
            ) from None
        _add_form_field(fields, name, text)
    return ParsedBody(fields, files, multipart=True)


def _add_form_field(fields: dict[str, Any], part_name: str, text: str) -> None:
    """One form field into the field map: `key[sub]` an object entry, `key[]` or a repeated `key` a list."""
    match = _FORM_NAME.fullmatch(part_name)
    if match is None or match["rest"]:
        raise InvalidRequest(
            part_name,
            text,
            message=f"Form field '{part_name}' nests deeper than vidrelay reads: give an object's entries as "
            "'name[key]' and a list's items as repeated 'name[]' parts, or send the body as JSON.",
            code="invalid_multipart",
        )
    name, key = match["name"], match["key"]
    present = fields.get(name)
    if key:
        if present is None:
            fields[name] = {key: text}
        elif isinstance(present, dict):
            present[key] = text
        else:
            _mixed(part_name, name, text)
    elif present is None:
        fields[name] = text if key is None else [text]
    elif isinstance(present, list):
        present.append(text)
    elif isinstance(present, str):
        fields[name] = [present, text]
    else:
        _mixed(part_name, name, text)


def _mixed(part_name: str, name: str, text: str) -> None:
    raise InvalidRequest(
        part_name,
        text,
        message=f"Form field '{part_name}' makes '{name}' an object, but '{name}' was also given as text or a list; "
        "give it one way.",
        code="invalid_multipart",
    )
