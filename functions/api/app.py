"""api function: the OpenAI-Videos-compatible HTTP API. Every route is an operation of the contract: its inputs
are validated with the contract's models, it calls one relay operation, and answers with a contract model."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel
from vidrelay_core.bodies import ParsedBody, parse_body, raw_body
from vidrelay_core.catalog import MODELS, get_model
from vidrelay_core.contract import (
    ContentQuery,
    CreateEndpointBody,
    CreateUploadBody,
    CreateVideoHeaders,
    DeliveryList,
    ListQuery,
    Model,
    ModelList,
    RequestContext,
    RotateSecretBody,
    Upload,
    UsageQuery,
    UsageReport,
    Video,
    VideoContentLink,
    VideoDeleted,
    VideoList,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointDeleted,
    WebhookEndpointList,
    WebhookEndpointWithSecret,
    WebhookTestResult,
    validated,
)
from vidrelay_core.contract.operations import BY_ID, allowed_methods
from vidrelay_core.errors import MethodNotAllowed, NotFound, NotOffered, RateLimited, RouteNotFound, VidrelayError
from vidrelay_core.obs import keys, lambda_entry, logger
from vidrelay_core.wiring import components

M = TypeVar("M", bound=BaseModel)
DOCS = Path(__file__).parent / "swagger_ui"
DOCS_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "docs.js": "text/javascript; charset=utf-8",
}
# The docs page loads only its own files; Swagger UI styles elements inline and draws icons from data: URLs.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
CONSOLE = Path(__file__).parent / "console"
CONSOLE_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


class ApiResolver(APIGatewayHttpResolver):
    """Powertools keeps the event being handled on its BaseRouter class, shared by every resolver in the process.
    A Lambda process handles one event at a time, so that is safe there; the local stack runs several api
    containers in one process, where a second request would overwrite the first's event (its headers, its API
    key) mid-route. Each resolver keeps its own: the instance attribute shadows the class one."""

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        self.current_event = cast(APIGatewayProxyEventV2, self._to_proxy_event(dict(event)))
        self.lambda_context = context
        return super().resolve(event, context)


app = ApiResolver()


def operation(operation_id: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Serves the contract's operation: its path and method come from the route table the document is made of."""
    op = BY_ID[operation_id]
    return app.route(op.powertools_rule, method=op.method, include_in_schema=False)


# -- inputs ---------------------------------------------------------------------------------------------------


def _tenant() -> str:
    return components().auth.tenant(app.current_event.headers.get("authorization"))


def _context(multipart: bool = False) -> RequestContext:
    settings = components().settings
    return RequestContext(
        multipart=multipart,
        allow_loopback_urls=settings.allow_loopback_urls,
        max_prompt_chars=settings.max_prompt_chars,
        max_upload_bytes=settings.max_upload_bytes,
    )


def _query(model: type[M]) -> M:
    return validated(model, dict(app.current_event.query_string_parameters or {}), _context())


def _headers(model: type[M]) -> M:
    headers = app.current_event.headers
    wanted = {info.alias or name for name, info in model.model_fields.items()}
    return validated(model, {name: headers[name.lower()] for name in wanted if name.lower() in headers}, _context())


def _parsed_body() -> ParsedBody:
    event = app.current_event
    return parse_body(event.headers.get("content-type"), raw_body(event.body, bool(event.is_base64_encoded)))


def _body(model: type[M]) -> M:
    """A JSON or form body; no body at all is an empty one (the model says what is required)."""
    if not app.current_event.body:
        return validated(model, {}, _context())
    body = _parsed_body()
    return validated(model, {**body.fields, **body.files}, _context(body.multipart))


# -- answers --------------------------------------------------------------------------------------------------


def _answer(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)


def _video(job: Any) -> Video:
    return Video.from_job(job, retention_days=components().settings.retention_days)


# -- videos ---------------------------------------------------------------------------------------------------


@operation("createVideo")
def create_video() -> dict[str, Any]:
    tenant = _tenant()
    headers = _headers(CreateVideoHeaders)
    body = _parsed_body()
    job = components().create.create_from_fields(
        tenant, body.fields, body.files, multipart=body.multipart, idempotency_key=headers.idempotency_key
    )
    logger.append_keys(video_id=job.id)
    return _answer(_video(job))


@operation("listVideos")
def list_videos() -> dict[str, Any]:
    tenant = _tenant()
    query = _query(ListQuery)
    jobs, has_more = components().queries.list(tenant, after=query.after, limit=query.limit, order=query.order)
    return _answer(VideoList.of([_video(job) for job in jobs], has_more=has_more))


@operation("retrieveVideo")
def get_video(video_id: str) -> dict[str, Any]:
    return _answer(_video(components().queries.get(_tenant(), video_id)))


@operation("deleteVideo")
def delete_video(video_id: str) -> dict[str, Any]:
    job = components().delete.delete(_tenant(), video_id)
    return _answer(VideoDeleted(id=job.id, object="video.deleted", deleted=True))


@operation("downloadVideoContent")
def video_content(video_id: str) -> Response[None]:
    tenant = _tenant()
    query = _query(ContentQuery)
    url = components().queries.content_url(tenant, video_id, query.variant)
    # A redirect: the video bytes never pass through API Gateway or Lambda.
    return Response(status_code=302, headers={"Location": url, "Cache-Control": "no-store"})


@operation("retrieveVideoContentUrl")
def video_content_url(video_id: str) -> Response[str]:
    tenant = _tenant()
    query = _query(ContentQuery)
    c = components()
    url = c.queries.content_url(tenant, video_id, query.variant)
    link = VideoContentLink(
        object="video.content_url",
        video_id=video_id,
        variant=query.variant,
        url=url,
        expires_at=int(c.queries.clock()) + c.settings.presign_ttl_s,
    )
    # The URL is a credential for its lifetime: no cache keeps it.
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=link.model_dump_json(by_alias=True),
        headers={"Cache-Control": "no-store"},
    )


@operation("remixVideo")
def remix_video(video_id: str) -> dict[str, Any]:
    tenant = _tenant()
    # Refused whatever the body says: the answer a client needs is that remix is not there.
    components().queries.get(tenant, video_id)
    raise NotOffered(
        "Remix is not offered: none of the upstreams behind vidrelay (Sora 2 and Veo 3.1 through /v1/videos, "
        "Seedance 2.0, sora_video2) can remix a finished video. Create a new video with the changed prompt "
        "instead; an image-to-video request can start from a frame of the original.",
        param="video_id",
        code="remix_not_supported",
    )


# -- deliveries -----------------------------------------------------------------------------------------------


@operation("listVideoDeliveries")
def list_deliveries(video_id: str) -> dict[str, Any]:
    job = components().queries.get(_tenant(), video_id)
    deliveries = [WebhookDelivery.from_delivery(d) for d in components().deliveries.list(job.id)]
    return _answer(DeliveryList(object="list", data=deliveries))


@operation("redeliverVideoDelivery")
def redeliver(video_id: str, delivery_id: str) -> dict[str, Any]:
    job = components().queries.get(_tenant(), video_id)
    return _answer(WebhookDelivery.from_delivery(components().deliveries.redeliver(job.id, delivery_id)))


# -- webhook endpoints ----------------------------------------------------------------------------------------


@operation("createWebhookEndpoint")
def create_endpoint() -> dict[str, Any]:
    tenant = _tenant()
    body = _body(CreateEndpointBody)
    endpoint = components().endpoints.create(
        tenant, url=body.url, event_types=tuple(body.event_types), description=body.description
    )
    return _answer(WebhookEndpointWithSecret.from_endpoint(endpoint))


@operation("listWebhookEndpoints")
def list_endpoints() -> dict[str, Any]:
    endpoints = [WebhookEndpoint.from_endpoint(e) for e in components().endpoints.list(_tenant())]
    return _answer(WebhookEndpointList(object="list", data=endpoints))


@operation("retrieveWebhookEndpoint")
def get_endpoint(endpoint_id: str) -> dict[str, Any]:
    return _answer(WebhookEndpoint.from_endpoint(components().endpoints.get(_tenant(), endpoint_id)))


@operation("deleteWebhookEndpoint")
def delete_endpoint(endpoint_id: str) -> dict[str, Any]:
    components().endpoints.delete(_tenant(), endpoint_id)
    return _answer(WebhookEndpointDeleted(id=endpoint_id, object="webhook_endpoint.deleted", deleted=True))


@operation("rotateWebhookEndpointSecret")
def rotate_secret(endpoint_id: str) -> dict[str, Any]:
    tenant = _tenant()
    body = _body(RotateSecretBody)
    endpoint = components().endpoints.rotate_secret(tenant, endpoint_id, grace_s=body.grace_period_seconds)
    return _answer(WebhookEndpointWithSecret.from_endpoint(endpoint))


@operation("testWebhookEndpoint")
def test_endpoint(endpoint_id: str) -> dict[str, Any]:
    return _answer(WebhookTestResult.from_result(components().endpoints.test(_tenant(), endpoint_id)))


# -- uploads, usage, models -----------------------------------------------------------------------------------


@operation("createUpload")
def create_upload() -> dict[str, Any]:
    tenant = _tenant()
    body = _body(CreateUploadBody)
    grant = components().uploads.create(tenant, filename=body.filename, content_type=body.content_type, size=body.bytes)
    return _answer(Upload.from_grant(grant))


@operation("getUsage")
def usage() -> dict[str, Any]:
    tenant = _tenant()
    query = _query(UsageQuery)
    return _answer(UsageReport.from_usage(components().queries.usage(tenant, query.from_, query.to)))


@operation("listModels")
def list_models() -> dict[str, Any]:
    _tenant()
    return _answer(ModelList(object="list", data=[Model.from_spec(spec) for spec in MODELS.values()]))


@operation("retrieveModel")
def get_model_entry(model_id: str) -> dict[str, Any]:
    _tenant()
    spec = get_model(model_id)
    if spec is None:
        raise NotFound(
            f"No model '{model_id}'. Models: {', '.join(sorted(MODELS))}.", param="model_id", code="model_not_found"
        )
    return _answer(Model.from_spec(spec))


# -- the document and its page --------------------------------------------------------------------------------


@cache
def openapi_document() -> str:
    from vidrelay_core.contract.openapi import document  # built on the first request for it, not at cold start

    return json.dumps(document())


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_document())


@app.get("/docs", include_in_schema=False)
def docs_page() -> Response[str]:
    return _docs_file("docs.html", "text/html; charset=utf-8")


@app.get("/docs/<asset>", include_in_schema=False, compress=True)
def docs_asset(asset: str) -> Response[str]:
    if asset not in DOCS_FILES:
        raise RouteNotFound(f"No documentation file '{asset}'.", param="asset")
    return _docs_file(asset, DOCS_FILES[asset])


def _docs_file(name: str, content_type: str) -> Response[str]:
    return Response(
        status_code=200,
        content_type=content_type,
        body=(DOCS / name).read_text(encoding="utf-8"),
        headers={"Content-Security-Policy": DOCS_CSP, "Cache-Control": "public, max-age=3600"},
    )


# -- the console ------------------------------------------------------------------------------------------------


@cache
def _media_origin() -> str:
    """Where the presigned URLs point (the results bucket's S3 host): the one other place the console may load
    from, for its `<video>` and thumbnails. Signing is local, so this costs no request."""
    c = components()
    url = c.clients("s3").generate_presigned_url(
        "get_object", Params={"Bucket": c.settings.results_bucket, "Key": "console"}, ExpiresIn=60
    )
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _console_csp() -> str:
    # No inline script or style, no string-to-DOM sinks (Trusted Types), nothing from another host but the stored
    # videos and their thumbnails.
    return (
        f"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: {_media_origin()}; "
        f"media-src {_media_origin()}; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'none'; require-trusted-types-for 'script'"
    )


@app.get("/console", include_in_schema=False)
def console_page() -> Response[str]:
    return _console_file("index.html")


@cache
def console_files() -> dict[str, str]:
    """The console's files by name, with their content types: only these are served."""
    return {p.name: CONSOLE_TYPES[p.suffix] for p in CONSOLE.iterdir() if p.suffix in CONSOLE_TYPES}


@app.get("/console/<asset>", include_in_schema=False, compress=True)
def console_asset(asset: str) -> Response[str]:
    if asset not in console_files():
        raise RouteNotFound(f"No console file '{asset}'.", param="asset")
    return _console_file(asset)


def _console_file(name: str) -> Response[str]:
    return Response(
        status_code=200,
        content_type=console_files()[name],
        body=(CONSOLE / name).read_text(encoding="utf-8"),
        headers={
            "Content-Security-Policy": _console_csp(),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            # Revalidated on every load: a deployment's new page and its modules arrive together.
            "Cache-Control": "no-cache",
        },
    )


# -- errors ---------------------------------------------------------------------------------------------------


@app.exception_handler(VidrelayError)
def vidrelay_error(exc: VidrelayError) -> Response[dict[str, Any]]:
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, MethodNotAllowed):
        headers["Allow"] = ", ".join(exc.allowed)
    return Response(
        status_code=exc.status_code,
        content_type=content_types.APPLICATION_JSON,
        body=exc.to_body(),
        headers=headers or None,
    )


@app.not_found
def not_found(_: NotFoundError) -> Response[dict[str, Any]]:
    event = app.current_event
    allowed = allowed_methods(event.path)
    if allowed:
        return vidrelay_error(MethodNotAllowed(event.http_method, event.path, allowed))
    return vidrelay_error(RouteNotFound(f"No route for {event.http_method} {event.path}.", param=None))


@app.exception_handler(Exception)
def unexpected(exc: Exception) -> Response[dict[str, Any]]:
    # Never leak a stack trace or an internal message to the client; the log has the details.
    logger.exception("unhandled error")
    body: dict[str, Any] = {
        "error": {
            "message": "The server had an error while processing the request.",
            "type": "server_error",
            "param": None,
            "code": "internal_error",
        }
    }
    return Response(status_code=500, content_type=content_types.APPLICATION_JSON, body=body)


@lambda_entry
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # API Gateway's request id, as Powertools' correlation_paths.API_GATEWAY_HTTP would take it.
    keys(correlation_id=(event.get("requestContext") or {}).get("requestId"))
    return app.resolve(event, context)
