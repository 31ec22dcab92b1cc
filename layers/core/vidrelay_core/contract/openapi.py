"""The OpenAPI 3.1 document of the public API, generated from the operations and their models: components are
the models' own JSON schemas (pydantic), every route gets its parameters, bodies, answers and error bodies, and
the events are the document's `webhooks`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .errors import ErrorResponse
from .events import EVENT_MODELS
from .operations import ERROR_STATUSES, JSON, MULTIPART, OPERATIONS, Operation

REF = "#/components/schemas/{model}"
BEARER = "bearerAuth"


def document(*, title: str = "vidrelay", version: str = "1.0.0") -> dict[str, Any]:
    schemas = _component_schemas()
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation)
    built: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "OpenAI-Videos-compatible relay for AI video generation APIs. Authenticate with "
            "`Authorization: Bearer <api key>`; events are delivered signed per Standard Webhooks.",
        },
        "tags": [{"name": name} for name in dict.fromkeys(op.tag for op in OPERATIONS)],
        "paths": paths,
        "webhooks": {
            event_type: {
                "post": {
                    "summary": event_type,
                    "operationId": f"on_{event_type.replace('.', '_')}",
                    "description": model.__doc__ or "",
                    "requestBody": {"required": True, "content": {JSON: {"schema": _ref(model)}}},
                    "responses": {"2XX": {"description": "Received; any other answer is retried"}},
                }
            }
            for event_type, model in EVENT_MODELS.items()
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                BEARER: {"type": "http", "scheme": "bearer", "description": "An API key (`vidrelay keys create`)"}
            },
        },
    }
    # Query and header models become parameters, and file parts inline binary: their own schemas go.
    used = _referenced({"paths": paths, "webhooks": built["webhooks"]}, schemas)
    built["components"]["schemas"] = {name: schema for name, schema in schemas.items() if name in used}
    return built


def _referenced(root: Any, schemas: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    pending = [root]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF.format(model="")):
                name = ref.rsplit("/", 1)[1]
                if name not in found:
                    found.add(name)
                    pending.append(schemas[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def _models() -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorResponse, "serialization")]
    for operation in OPERATIONS:
        models += [(body, "validation") for body in operation.body.values()]
        if operation.answer is not None:
            models.append((operation.answer, "serialization"))
    models += [(model, "serialization") for model in EVENT_MODELS.values()]
    return list(dict.fromkeys(models))


def _component_schemas() -> dict[str, Any]:
    _, top = models_json_schema(_models(), ref_template=REF)
    return dict(sorted(top.get("$defs", {}).items()))


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _operation(operation: Operation) -> dict[str, Any]:
    described: dict[str, Any] = {
        "operationId": operation.id,
        "summary": operation.summary,
        "tags": [operation.tag],
        "security": [{BEARER: []}],
    }
    if operation.description:
        described["description"] = operation.description
    parameters = [
        {"name": name, "in": "path", "required": True, "description": text, "schema": {"type": "string"}}
        for name, text in operation.path_params.items()
    ]
    for model, where in ((operation.query, "query"), (operation.headers, "header")):
        if model is not None:
            parameters += _parameters(model.model_json_schema(ref_template=REF), where)
    if parameters:
        described["parameters"] = parameters
    if operation.body:
        described["requestBody"] = {
            "required": operation.body_required,
            "content": {media: _media(model, multipart=media == MULTIPART) for media, model in operation.body.items()},
        }
    described["responses"] = _responses(operation)
    return described


def _parameters(schema: dict[str, Any], where: str) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    found = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        parameter = {"name": name, "in": where, "required": name in required, "schema": _not_null(prop)}
        if description:
            parameter["description"] = description
        found.append(parameter)
    return found


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query or header value is text or absent, never JSON null."""
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        rest = {k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)}
        return {**options[0], **rest}
    return schema


def _media(model: type[BaseModel], *, multipart: bool) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": _ref(model)}
    if multipart:
        schema = model.model_json_schema(ref_template=REF)
        # How a form carries what is not text: objects as `name[key]` fields, lists as repeated parts.
        encoding: dict[str, Any] = {}
        for name, prop in schema.get("properties", {}).items():
            kinds = {s.get("type") for s in prop.get("anyOf", [prop])}
            if "object" in kinds:
                encoding[name] = {"style": "deepObject", "explode": True}
            elif "array" in kinds:
                encoding[name] = {"style": "form", "explode": True}
        if encoding:
            media["encoding"] = encoding
    return media


def _responses(operation: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    answer: dict[str, Any] = {"description": operation.answer_description}
    if operation.answer is not None:
        answer["content"] = {JSON: {"schema": _ref(operation.answer)}}
    elif operation.answer_status == 302:
        answer["headers"] = {"Location": {"description": "The presigned URL", "schema": {"type": "string"}}}
    else:
        answer["content"] = {JSON: {"schema": _ref(ErrorResponse)}}
    responses[str(operation.answer_status)] = answer
    errors = {**ERROR_STATUSES, **operation.errors}
    if not operation.body and not operation.query and not operation.headers and 400 not in operation.errors:
        errors.pop(400)
    for status, text in sorted(errors.items()):
        if str(status) in responses:
            continue
        error: dict[str, Any] = {"description": text, "content": {JSON: {"schema": _ref(ErrorResponse)}}}
        if status == 429:
            error["headers"] = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
        responses[str(status)] = error
    return responses
