"""Every route of the public API: its parameters, bodies, answer and errors. The api function serves these and
validates with their models; `openapi.py` documents exactly these, so the two cannot drift."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from pydantic import BaseModel

from .create import CreateVideoForm, CreateVideoHeaders, CreateVideoRequest
from .models import Model, ModelList
from .uploads import CreateUploadBody, Upload
from .usage import UsageQuery, UsageReport
from .videos import ContentQuery, ListQuery, RemixBody, Video, VideoContentLink, VideoDeleted, VideoList
from .webhooks import (
    CreateEndpointBody,
    DeliveryList,
    RotateSecretBody,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointDeleted,
    WebhookEndpointList,
    WebhookEndpointWithSecret,
    WebhookTestResult,
)

JSON = "application/json"
MULTIPART = "multipart/form-data"

# What each status means on any route; a route says what it means there.
ERROR_STATUSES: dict[int, str] = {
    400: "Invalid request: the error names the field, what was given and what is allowed",
    401: "Missing or unknown API key",
}


@dataclass(frozen=True)
class Operation:
    id: str
    method: str
    path: str
    summary: str
    tag: str
    answer: type[BaseModel] | None
    answer_description: str
    answer_status: int = 200
    description: str = ""
    query: type[BaseModel] | None = None
    headers: type[BaseModel] | None = None
    # By media type; a route that takes both JSON and multipart lists both.
    body: dict[str, type[BaseModel]] = field(default_factory=dict)
    body_required: bool = True
    path_params: dict[str, str] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """The path as a regex over a raw request path: a parameter is one segment."""
        return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)))

    @property
    def powertools_rule(self) -> str:
        return re.sub(r"\{(\w+)\}", r"<\1>", self.path)


_VIDEO_ID = {"video_id": "A video id (video_…)"}
_ENDPOINT_ID = {"endpoint_id": "A webhook endpoint id (we_…)"}
_NO_VIDEO = "No video with this id for this API key"
_NO_ENDPOINT = "No webhook endpoint with this id for this API key"

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        id="createVideo",
        method="POST",
        path="/v1/videos",
        summary="Create a video",
        tag="Videos",
        description="JSON, or multipart/form-data with the reference files as parts (what the OpenAI SDKs send).",
        headers=CreateVideoHeaders,
        body={JSON: CreateVideoRequest, MULTIPART: CreateVideoForm},
        answer=Video,
        answer_description="The job: queued, or failed when the upstream refused it",
        errors={
            402: "The tenant's monthly budget is reached; nothing was sent upstream",
            409: "Idempotency-Key reused with a different body",
            413: "Body over 6 MB: send large references as s3:// URIs (POST /v1/uploads)",
            429: "The tenant's job-creation rate limit is reached; see the Retry-After header",
        },
    ),
    Operation(
        id="listVideos",
        method="GET",
        path="/v1/videos",
        summary="List videos",
        tag="Videos",
        query=ListQuery,
        answer=VideoList,
        answer_description="A page of the caller's videos",
        errors={404: "The `after` video does not exist for this API key"},
    ),
    Operation(
        id="retrieveVideo",
        method="GET",
        path="/v1/videos/{video_id}",
        summary="Retrieve a video",
        tag="Videos",
        path_params=_VIDEO_ID,
        answer=Video,
        answer_description="The video",
        errors={404: _NO_VIDEO},
    ),
    Operation(
        id="deleteVideo",
        method="DELETE",
        path="/v1/videos/{video_id}",
        summary="Delete a video",
        tag="Videos",
        path_params=_VIDEO_ID,
        answer=VideoDeleted,
        answer_description="Canceled if still running; the stored MP4 is deleted",
        errors={404: _NO_VIDEO},
    ),
    Operation(
        id="downloadVideoContent",
        method="GET",
        path="/v1/videos/{video_id}/content",
        summary="Download the MP4, its thumbnail or its spritesheet",
        tag="Videos",
        path_params=_VIDEO_ID,
        query=ContentQuery,
        answer=None,
        answer_status=302,
        answer_description="Redirect (Location) to a short-lived presigned S3 URL: no bytes pass through the API",
        errors={
            400: "The video is not completed yet, its thumbnail or spritesheet is still being made, or it could not "
            "be made (the Video object's variants.error says why)",
            404: _NO_VIDEO,
        },
    ),
    Operation(
        id="retrieveVideoContentUrl",
        method="GET",
        path="/v1/videos/{video_id}/content_url",
        summary="The MP4's presigned URL, as JSON",
        tag="Videos",
        description="The URL `GET /v1/videos/{video_id}/content` redirects to, for clients that cannot read a "
        "redirect's Location (a browser's fetch): put it in a `<video>` or download it without the API key.",
        path_params=_VIDEO_ID,
        query=ContentQuery,
        answer=VideoContentLink,
        answer_description="A short-lived presigned S3 URL and when it expires",
        errors={400: "The video is not completed yet, or the variant is not kept", 404: _NO_VIDEO},
    ),
    Operation(
        id="remixVideo",
        method="POST",
        path="/v1/videos/{video_id}/remix",
        summary="Remix a video (not offered)",
        tag="Videos",
        description="OpenAI's remix: none of the upstreams behind vidrelay can remix a video, so the request is "
        "refused (400, code `remix_not_supported`) whatever the body says; create a new video instead.",
        path_params=_VIDEO_ID,
        body={JSON: RemixBody},
        answer=None,
        answer_status=400,
        answer_description="Always: remix is not offered by these upstreams",
        errors={404: _NO_VIDEO},
    ),
    Operation(
        id="listVideoDeliveries",
        method="GET",
        path="/v1/videos/{video_id}/deliveries",
        summary="List a video's webhook deliveries",
        tag="Webhooks",
        path_params=_VIDEO_ID,
        answer=DeliveryList,
        answer_description="Every delivery of every event of this video, with all attempts",
        errors={404: _NO_VIDEO},
    ),
    Operation(
        id="redeliverVideoDelivery",
        method="POST",
        path="/v1/videos/{video_id}/deliveries/{delivery_id}/redeliver",
        summary="Send a finished delivery once more",
        tag="Webhooks",
        path_params={**_VIDEO_ID, "delivery_id": "A delivery id (dlv_…)"},
        answer=WebhookDelivery,
        answer_description="The delivery, due again",
        errors={404: "No such video, or no such delivery of it", 409: "Attempted as often as one delivery may be"},
    ),
    Operation(
        id="createWebhookEndpoint",
        method="POST",
        path="/v1/webhook_endpoints",
        summary="Create a webhook endpoint",
        tag="Webhooks",
        body={JSON: CreateEndpointBody},
        answer=WebhookEndpointWithSecret,
        answer_description="The endpoint and its signing secret (shown once)",
    ),
    Operation(
        id="listWebhookEndpoints",
        method="GET",
        path="/v1/webhook_endpoints",
        summary="List webhook endpoints",
        tag="Webhooks",
        answer=WebhookEndpointList,
        answer_description="The caller's endpoints",
    ),
    Operation(
        id="retrieveWebhookEndpoint",
        method="GET",
        path="/v1/webhook_endpoints/{endpoint_id}",
        summary="Retrieve a webhook endpoint",
        tag="Webhooks",
        path_params=_ENDPOINT_ID,
        answer=WebhookEndpoint,
        answer_description="The endpoint (never its secret)",
        errors={404: _NO_ENDPOINT},
    ),
    Operation(
        id="deleteWebhookEndpoint",
        method="DELETE",
        path="/v1/webhook_endpoints/{endpoint_id}",
        summary="Delete a webhook endpoint",
        tag="Webhooks",
        path_params=_ENDPOINT_ID,
        answer=WebhookEndpointDeleted,
        answer_description="Deleted; pending deliveries to it stop",
        errors={404: _NO_ENDPOINT},
    ),
    Operation(
        id="rotateWebhookEndpointSecret",
        method="POST",
        path="/v1/webhook_endpoints/{endpoint_id}/rotate_secret",
        summary="Rotate an endpoint's signing secret",
        tag="Webhooks",
        path_params=_ENDPOINT_ID,
        body={JSON: RotateSecretBody},
        body_required=False,
        answer=WebhookEndpointWithSecret,
        answer_description="The new secret (shown once); the old one also signs until the grace period ends",
        errors={404: _NO_ENDPOINT, 409: "Rotated by another request at the same time; try again"},
    ),
    Operation(
        id="testWebhookEndpoint",
        method="POST",
        path="/v1/webhook_endpoints/{endpoint_id}/test",
        summary="Send a signed test event to an endpoint now",
        tag="Webhooks",
        path_params=_ENDPOINT_ID,
        answer=WebhookTestResult,
        answer_description="What the endpoint answered",
        errors={404: _NO_ENDPOINT},
    ),
    Operation(
        id="createUpload",
        method="POST",
        path="/v1/uploads",
        summary="Upload a large reference file",
        tag="Uploads",
        body={JSON: CreateUploadBody},
        answer=Upload,
        answer_description="A presigned PUT URL and the s3:// URI to reference the file by",
    ),
    Operation(
        id="getUsage",
        method="GET",
        path="/v1/usage",
        summary="Estimated spend per day and model",
        tag="Usage",
        query=UsageQuery,
        answer=UsageReport,
        answer_description="The caller's usage between two UTC days (default: this month)",
    ),
    Operation(
        id="listModels",
        method="GET",
        path="/v1/models",
        summary="List models",
        tag="Models",
        answer=ModelList,
        answer_description="The catalog: each model's lengths, sizes, options, references and price",
    ),
    Operation(
        id="retrieveModel",
        method="GET",
        path="/v1/models/{model_id}",
        summary="Retrieve a model",
        tag="Models",
        path_params={"model_id": "A model id of GET /v1/models, e.g. sora-2"},
        answer=Model,
        answer_description="The catalog entry",
        errors={404: "No model with this id"},
    ),
)

BY_ID: dict[str, Operation] = {operation.id: operation for operation in OPERATIONS}


def allowed_methods(raw_path: str) -> list[str]:
    """The methods the API serves on a path (for a 405's `Allow`); empty when no route has that path."""
    return sorted({op.method for op in OPERATIONS if op.pattern.fullmatch(raw_path)})
