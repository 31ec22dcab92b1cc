"""The public API's contract: every request and response as a pydantic model, validated and documented from
the same definitions.

  base.py      ApiModel / RequestModel, RequestContext (JSON or multipart, local-mode URLs), refuse/invalid
  errors.py    ErrorResponse, and `invalid_request` / `validated`: any validation error as the OpenAI error
  create.py    CreateVideoRequest (JSON) and CreateVideoForm (multipart) with the catalog's rules,
               CreateRequest / ReferenceInput (what a job is made from), parse_create, CreateVideoHeaders
  videos.py    Video (+ from_job), VideoList, VideoDeleted, ListQuery, ContentQuery, VideoContentLink,
               RemixBody
  models.py    Model (+ from_spec), ModelList
  usage.py     UsageQuery, UsageReport
  uploads.py   CreateUploadBody, Upload
  webhooks.py  endpoint bodies and answers, WebhookDelivery (+ from_delivery), DeliveryList
  events.py    VideoEvent and one model per event type
  operations.py  every route: its parameters, bodies, answers and errors (the OpenAPI document's source)
"""

from .base import RequestContext
from .create import (
    DEFAULT_MODEL,
    FITS,
    KNOWN_FIELDS,
    MAX_REFERENCE_BYTES_PER_JOB,
    CreateRequest,
    CreateVideoForm,
    CreateVideoHeaders,
    CreateVideoRequest,
    ReferenceInput,
    parse_create,
)
from .errors import ErrorResponse, invalid_request, validated
from .events import EVENT_MODELS, VideoEvent
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

__all__ = [
    "DEFAULT_MODEL",
    "EVENT_MODELS",
    "FITS",
    "KNOWN_FIELDS",
    "MAX_REFERENCE_BYTES_PER_JOB",
    "ContentQuery",
    "CreateEndpointBody",
    "CreateRequest",
    "CreateUploadBody",
    "CreateVideoForm",
    "CreateVideoHeaders",
    "CreateVideoRequest",
    "DeliveryList",
    "ErrorResponse",
    "ListQuery",
    "Model",
    "ModelList",
    "ReferenceInput",
    "RemixBody",
    "RequestContext",
    "RotateSecretBody",
    "Upload",
    "UsageQuery",
    "UsageReport",
    "Video",
    "VideoContentLink",
    "VideoDeleted",
    "VideoEvent",
    "VideoList",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEndpointDeleted",
    "WebhookEndpointList",
    "WebhookEndpointWithSecret",
    "WebhookTestResult",
    "invalid_request",
    "parse_create",
    "validated",
]
