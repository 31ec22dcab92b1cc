"""api function: the OpenAI-Videos-compatible HTTP API. Parses, calls one relay operation, answers."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from vidrelay_core.bodies import parse_body, raw_body
from vidrelay_core.catalog import MODELS
from vidrelay_core.endpoints import endpoint_url
from vidrelay_core.errors import InvalidRequest, RateLimited, RouteNotFound, VidrelayError
from vidrelay_core.jobs import EVENT_TYPES, video_object
from vidrelay_core.obs import logger, metrics
from vidrelay_core.schemas import (
    CreateVideoRequest,
    DeliveryList,
    ErrorResponse,
    ModelList,
    Upload,
    UsageReport,
    Video,
    VideoDeleted,
    VideoList,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointDeleted,
    WebhookEndpointList,
    WebhookEndpointWithSecret,
    WebhookTestResult,
)
from vidrelay_core.uploads import UPLOAD_CONTENT_TYPES
from vidrelay_core.wiring import components


class ApiResolver(APIGatewayHttpResolver):
    """Powertools keeps the event being handled on its BaseRouter class, shared by every resolver in the process.
    A Lambda process handles one event at a time, so that is safe there; the local stack runs several api
    containers in one process, where a second request would overwrite the first's event (its headers, its API
    key) mid-route. Each resolver keeps its own: the instance attribute shadows the class one."""

    def resolve(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        self.current_event = self._to_proxy_event(event)
        self.lambda_context = context
        return super().resolve(event, context)


app = ApiResolver()
app.enable_swagger(
    path="/docs",
    title="vidrelay",
    version="1.0.0",
    description="OpenAI-Videos-compatible relay for AI video generation APIs",
)


def _json(model: type[Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": model}}}


ERRORS: dict[int, dict[str, Any]] = {
    400: _json(ErrorResponse, "Invalid request: the error names the field, what was given and what is allowed"),
    401: _json(ErrorResponse, "Missing or unknown API key"),
    404: _json(ErrorResponse, "No such video for this API key"),
}


def _tenant() -> str:
    return components().auth.tenant(app.current_event.headers.get("authorization"))


def _video(job: Any) -> dict[str, Any]:
    return video_object(job, retention_days=components().settings.retention_days)


@app.post(
    "/v1/videos",
    summary="Create a video",
    responses={
        200: _json(Video, "The job, queued"),
        402: _json(ErrorResponse, "The tenant's monthly budget is reached; nothing was sent upstream"),
        409: _json(ErrorResponse, "Idempotency-Key reused with a different body"),
        413: _json(ErrorResponse, "Body over 6 MB"),
        429: _json(ErrorResponse, "The tenant's job-creation rate limit is reached; see the Retry-After header"),
        **ERRORS,
    },
)
def create_video() -> dict[str, Any]:
    tenant = _tenant()
    event = app.current_event
    body = parse_body(event.headers.get("content-type"), raw_body(event.body, event.is_base64_encoded))
    job = components().create.create_from_fields(
        tenant,
        body.fields,
        body.files,
        multipart=body.multipart,
        idempotency_key=event.headers.get("idempotency-key"),
    )
    logger.append_keys(video_id=job.id)
    return _video(job)


@app.get("/v1/videos", summary="List videos", responses={200: _json(VideoList, "A page of videos"), **ERRORS})
def list_videos() -> dict[str, Any]:
    tenant = _tenant()
    query = app.current_event.query_string_parameters or {}
    limit_text = query.get("limit", "20")
    if not re.fullmatch(r"[0-9]{1,3}", limit_text) or not 1 <= int(limit_text) <= 100:
        raise InvalidRequest("limit", limit_text, "an integer from 1 to 100")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order", order, '"asc" or "desc"')
    jobs, has_more = components().queries.list(
        tenant, after=query.get("after") or None, limit=int(limit_text), order=order
    )
    data = [_video(job) for job in jobs]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


@app.get("/v1/videos/<video_id>", summary="Retrieve a video", responses={200: _json(Video, "The video"), **ERRORS})
def get_video(video_id: str) -> dict[str, Any]:
    return _video(components().queries.get(_tenant(), video_id))


@app.delete(
    "/v1/videos/<video_id>",
    summary="Delete a video",
    responses={200: _json(VideoDeleted, "Canceled if running; the stored MP4 is deleted"), **ERRORS},
)
def delete_video(video_id: str) -> dict[str, Any]:
    job = components().delete.delete(_tenant(), video_id)
    return {"id": job.id, "object": "video.deleted", "deleted": True}


@app.get(
    "/v1/videos/<video_id>/content",
    summary="Download the MP4",
    responses={302: {"description": "Redirect to a short-lived presigned S3 URL of the MP4"}, **ERRORS},
)
def video_content(video_id: str) -> Response[None]:
    variant = (app.current_event.query_string_parameters or {}).get("variant", "video")
    url = components().queries.content_url(_tenant(), video_id, variant)
    # A redirect: the video bytes never pass through API Gateway or Lambda.
    return Response(status_code=302, headers={"Location": url, "Cache-Control": "no-store"})


def _json_body() -> dict[str, Any]:
    event = app.current_event
    if not event.body:
        return {}
    body = parse_body(event.headers.get("content-type"), raw_body(event.body, event.is_base64_encoded))
    return dict(body.fields)


@app.get(
    "/v1/videos/<video_id>/deliveries",
    summary="List a video's webhook deliveries",
    responses={200: _json(DeliveryList, "Every delivery of every event of this video, with all attempts"), **ERRORS},
)
def list_deliveries(video_id: str) -> dict[str, Any]:
    job = components().queries.get(_tenant(), video_id)
    return {"object": "list", "data": [d.public() for d in components().deliveries.list(job.id)]}


@app.post(
    "/v1/videos/<video_id>/deliveries/<delivery_id>/redeliver",
    summary="Send a finished delivery once more",
    responses={
        200: _json(WebhookDelivery, "The delivery, due again"),
        409: _json(ErrorResponse, "Still running"),
        **ERRORS,
    },
)
def redeliver(video_id: str, delivery_id: str) -> dict[str, Any]:
    job = components().queries.get(_tenant(), video_id)
    return components().deliveries.redeliver(job.id, delivery_id).public()


@app.post(
    "/v1/webhook_endpoints",
    summary="Create a webhook endpoint",
    responses={200: _json(WebhookEndpointWithSecret, "The endpoint and its signing secret (shown once)"), **ERRORS},
)
def create_endpoint() -> dict[str, Any]:
    tenant, fields = _tenant(), _json_body()
    unknown = sorted(set(fields) - {"url", "event_types", "description"})
    if unknown:
        raise InvalidRequest(unknown[0], fields[unknown[0]], "one of the fields url, event_types, description")
    description = fields.get("description") or ""
    if not isinstance(description, str) or len(description) > 512:
        raise InvalidRequest("description", description, "a string of at most 512 characters")
    endpoint = components().endpoints.create(
        tenant,
        url=endpoint_url(fields.get("url"), allow_loopback=components().settings.allow_loopback_urls),
        event_types=_event_types(fields.get("event_types")),
        description=description,
    )
    return {**endpoint.public(), "secret": endpoint.secret}


@app.get(
    "/v1/webhook_endpoints",
    summary="List webhook endpoints",
    responses={200: _json(WebhookEndpointList, "The tenant's endpoints"), **ERRORS},
)
def list_endpoints() -> dict[str, Any]:
    return {"object": "list", "data": [e.public() for e in components().endpoints.list(_tenant())]}


@app.get(
    "/v1/webhook_endpoints/<endpoint_id>",
    summary="Retrieve a webhook endpoint",
    responses={200: _json(WebhookEndpoint, "The endpoint (never its secret)"), **ERRORS},
)
def get_endpoint(endpoint_id: str) -> dict[str, Any]:
    return components().endpoints.get(_tenant(), endpoint_id).public()


@app.delete(
    "/v1/webhook_endpoints/<endpoint_id>",
    summary="Delete a webhook endpoint",
    responses={200: _json(WebhookEndpointDeleted, "Deleted; pending deliveries to it stop"), **ERRORS},
)
def delete_endpoint(endpoint_id: str) -> dict[str, Any]:
    components().endpoints.delete(_tenant(), endpoint_id)
    return {"id": endpoint_id, "object": "webhook_endpoint.deleted", "deleted": True}


@app.post(
    "/v1/webhook_endpoints/<endpoint_id>/rotate_secret",
    summary="Rotate an endpoint's signing secret",
    responses={
        200: _json(
            WebhookEndpointWithSecret, "The new secret (shown once); the old one also signs until the grace ends"
        ),
        **ERRORS,
    },
)
def rotate_secret(endpoint_id: str) -> dict[str, Any]:
    tenant, fields = _tenant(), _json_body()
    grace = fields.get("grace_period_seconds", 86_400)
    if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= 7 * 86_400:
        raise InvalidRequest("grace_period_seconds", grace, f"an integer from 0 to {7 * 86_400}")
    endpoint = components().endpoints.rotate_secret(tenant, endpoint_id, grace_s=grace)
    return {**endpoint.public(), "secret": endpoint.secret}


@app.post(
    "/v1/webhook_endpoints/<endpoint_id>/test",
    summary="Send a signed test event to an endpoint now",
    responses={200: _json(WebhookTestResult, "What the endpoint answered"), **ERRORS},
)
def test_endpoint(endpoint_id: str) -> dict[str, Any]:
    result = components().endpoints.test(_tenant(), endpoint_id)
    return {"object": "webhook_endpoint.test", **dataclasses.asdict(result)}


@app.post(
    "/v1/uploads",
    summary="Upload a large reference file",
    responses={200: _json(Upload, "A presigned PUT URL and the s3:// URI to reference the file by"), **ERRORS},
)
def create_upload() -> dict[str, Any]:
    tenant, body = _tenant(), _json_body()
    filename = body.get("filename")
    if not isinstance(filename, str) or not 1 <= len(filename) <= 200:
        raise InvalidRequest("filename", filename, "the file's name, 1 to 200 characters")
    content_type = body.get("content_type")
    if content_type not in UPLOAD_CONTENT_TYPES:
        raise InvalidRequest("content_type", content_type, ", ".join(UPLOAD_CONTENT_TYPES))
    size = body.get("bytes")
    limit = components().settings.max_upload_bytes
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= limit:
        raise InvalidRequest("bytes", size, f"the file's size in bytes, an integer from 1 to {limit}")
    unknown = sorted(set(body) - {"filename", "content_type", "bytes"})
    if unknown:
        raise InvalidRequest(
            unknown[0], body[unknown[0]], "only filename, content_type and bytes", code="unknown_parameter"
        )
    grant = components().uploads.create(tenant, filename=filename, content_type=content_type, size=size)
    return {"object": "upload", "method": "PUT", **dataclasses.asdict(grant)}


@app.get(
    "/v1/usage",
    summary="Estimated spend per day and model",
    responses={200: _json(UsageReport, "The caller's usage between two UTC days (default: this month)"), **ERRORS},
)
def usage() -> dict[str, Any]:
    query = app.current_event.query_string_parameters or {}
    report = components().queries.usage(_tenant(), query.get("from") or None, query.get("to") or None)
    return {
        "object": "usage",
        "from": report.first_day,
        "to": report.last_day,
        "total_usd": report.total_usd,
        "jobs": report.jobs,
        "data": [dataclasses.asdict(row) for row in report.rows],
    }


@app.get("/v1/models", summary="List models", responses={200: _json(ModelList, "The catalog"), **ERRORS})
def list_models() -> dict[str, Any]:
    _tenant()
    return {"object": "list", "data": [spec.public() for spec in MODELS.values()]}


def _event_types(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    allowed = ", ".join(EVENT_TYPES)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest("event_types", value, f"a list of event types: {allowed}")
    for item in value:
        if item not in EVENT_TYPES:
            raise InvalidRequest("event_types", item, allowed)
    return tuple(dict.fromkeys(value))


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[None]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_document())


def openapi_document() -> str:
    """The generated document, plus the request body of POST /v1/videos: the route parses the raw body itself
    (JSON or multipart), so Powertools cannot see it."""
    document = json.loads(app.get_openapi_json_schema(title="vidrelay", version="1.0.0"))
    schema = CreateVideoRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    document.setdefault("components", {}).setdefault("schemas", {})["CreateVideoRequest"] = schema
    reference = {"schema": {"$ref": "#/components/schemas/CreateVideoRequest"}}
    document["paths"]["/v1/videos"]["post"]["requestBody"] = {
        "required": True,
        "content": {"application/json": reference, "multipart/form-data": reference},
    }
    return json.dumps(document)


@app.exception_handler(VidrelayError)
def vidrelay_error(exc: VidrelayError) -> Response[None]:
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, RateLimited) else None
    return Response(
        status_code=exc.status_code,
        content_type=content_types.APPLICATION_JSON,
        body=exc.to_body(),
        headers=headers,
    )


@app.not_found
def not_found(_: NotFoundError) -> Response[None]:
    error = RouteNotFound(f"No route for {app.current_event.http_method} {app.current_event.path}.")
    return vidrelay_error(error)


@app.exception_handler(Exception)
def unexpected(exc: Exception) -> Response[None]:
    # Never leak a stack trace or an internal message to the client; the log has the details.
    logger.exception("unhandled error")
    body = {
        "error": {
            "message": "The server had an error while processing the request.",
            "type": "server_error",
            "param": None,
            "code": "internal_error",
        }
    }
    return Response(status_code=500, content_type=content_types.APPLICATION_JSON, body=body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
