"""api function: the OpenAI-Videos-compatible HTTP API. Parses, calls one relay operation, answers."""

from __future__ import annotations

import json
import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from vidrelay_core.bodies import parse_body, raw_body
from vidrelay_core.catalog import MODELS
from vidrelay_core.contract import (
    CreateVideoRequest,
    DeliveryList,
    ErrorResponse,
    Model,
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
from vidrelay_core.errors import InvalidRequest, RateLimited, RouteNotFound, VidrelayError
from vidrelay_core.obs import logger, metrics
from vidrelay_core.runtime import notifier, relay


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
    return relay().authenticate(app.current_event.headers.get("authorization"))


def _video(job: Any) -> dict[str, Any]:
    return Video.from_job(job, retention_days=relay().settings.retention_days).model_dump(mode="json")


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
    job = relay().create_from_fields(
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
    jobs, has_more = relay().list(tenant, after=query.get("after") or None, limit=int(limit_text), order=order)
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
    return _video(relay().get(_tenant(), video_id))


@app.delete(
    "/v1/videos/<video_id>",
    summary="Delete a video",
    responses={200: _json(VideoDeleted, "Canceled if running; the stored MP4 is deleted"), **ERRORS},
)
def delete_video(video_id: str) -> dict[str, Any]:
    job = relay().delete(_tenant(), video_id)
    return {"id": job.id, "object": "video.deleted", "deleted": True}


@app.get(
    "/v1/videos/<video_id>/content",
    summary="Download the MP4",
    responses={302: {"description": "Redirect to a short-lived presigned S3 URL of the MP4"}, **ERRORS},
)
def video_content(video_id: str) -> Response[None]:
    variant = (app.current_event.query_string_parameters or {}).get("variant", "video")
    url = relay().content_url(_tenant(), video_id, variant)
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
    job = relay().get(_tenant(), video_id)
    return {
        "object": "list",
        "data": [WebhookDelivery.from_delivery(d).model_dump(mode="json") for d in notifier().deliveries(job.id)],
    }


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
    job = relay().get(_tenant(), video_id)
    return WebhookDelivery.from_delivery(notifier().redeliver(job.id, delivery_id)).model_dump(mode="json")


@app.post(
    "/v1/webhook_endpoints",
    summary="Create a webhook endpoint",
    responses={200: _json(WebhookEndpointWithSecret, "The endpoint and its signing secret (shown once)"), **ERRORS},
)
def create_endpoint() -> dict[str, Any]:
    endpoint = notifier().create_endpoint(_tenant(), _json_body())
    return WebhookEndpointWithSecret.from_endpoint(endpoint).model_dump(mode="json")


@app.get(
    "/v1/webhook_endpoints",
    summary="List webhook endpoints",
    responses={200: _json(WebhookEndpointList, "The tenant's endpoints"), **ERRORS},
)
def list_endpoints() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            WebhookEndpoint.from_endpoint(e).model_dump(mode="json") for e in notifier().hooks.list_endpoints(_tenant())
        ],
    }


@app.get(
    "/v1/webhook_endpoints/<endpoint_id>",
    summary="Retrieve a webhook endpoint",
    responses={200: _json(WebhookEndpoint, "The endpoint (never its secret)"), **ERRORS},
)
def get_endpoint(endpoint_id: str) -> dict[str, Any]:
    return WebhookEndpoint.from_endpoint(notifier().endpoint(_tenant(), endpoint_id)).model_dump(mode="json")


@app.delete(
    "/v1/webhook_endpoints/<endpoint_id>",
    summary="Delete a webhook endpoint",
    responses={200: _json(WebhookEndpointDeleted, "Deleted; pending deliveries to it stop"), **ERRORS},
)
def delete_endpoint(endpoint_id: str) -> dict[str, Any]:
    notifier().delete_endpoint(_tenant(), endpoint_id)
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
    endpoint = notifier().rotate_secret(_tenant(), endpoint_id, _json_body())
    return WebhookEndpointWithSecret.from_endpoint(endpoint).model_dump(mode="json")


@app.post(
    "/v1/webhook_endpoints/<endpoint_id>/test",
    summary="Send a signed test event to an endpoint now",
    responses={200: _json(WebhookTestResult, "What the endpoint answered"), **ERRORS},
)
def test_endpoint(endpoint_id: str) -> dict[str, Any]:
    return notifier().test_endpoint(_tenant(), endpoint_id)


@app.post(
    "/v1/uploads",
    summary="Upload a large reference file",
    responses={200: _json(Upload, "A presigned PUT URL and the s3:// URI to reference the file by"), **ERRORS},
)
def create_upload() -> dict[str, Any]:
    return relay().create_upload(_tenant(), _json_body())


@app.get(
    "/v1/usage",
    summary="Estimated spend per day and model",
    responses={200: _json(UsageReport, "The caller's usage between two UTC days (default: this month)"), **ERRORS},
)
def usage() -> dict[str, Any]:
    query = app.current_event.query_string_parameters or {}
    return relay().usage(_tenant(), query.get("from") or None, query.get("to") or None)


@app.get("/v1/models", summary="List models", responses={200: _json(ModelList, "The catalog"), **ERRORS})
def list_models() -> dict[str, Any]:
    _tenant()
    return {"object": "list", "data": [Model.from_spec(spec).model_dump(mode="json") for spec in MODELS.values()]}


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
