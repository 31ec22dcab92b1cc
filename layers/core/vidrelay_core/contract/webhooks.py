"""Webhook endpoints (`/v1/webhook_endpoints`) and the delivery ledger (`/v1/videos/{id}/deliveries`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from ..jobs import EVENT_TYPES
from .base import ApiModel, RequestModel, form_integer, given, invalid, request_context
from .create import EventType, checked_url

if TYPE_CHECKING:
    from ..endpoints import TestResult
    from ..ledger import Delivery, Endpoint

MAX_ENDPOINT_DESCRIPTION_CHARS = 512
DEFAULT_ROTATION_GRACE_S = 86_400
MAX_ROTATION_GRACE_S = 7 * 86_400


class CreateEndpointBody(RequestModel):
    url: str = Field(description="https URL that receives the signed events (checked by the SSRF guard)")
    event_types: list[EventType] = Field(default_factory=list, description="Only these event types (empty: all)")
    description: str = Field(default="", max_length=MAX_ENDPOINT_DESCRIPTION_CHARS)

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise invalid(value, "an https URL")
        return checked_url(value, info)

    @field_validator("event_types", mode="before")
    @classmethod
    def _event_types(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return []
        if request_context(info).multipart and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        allowed = ", ".join(EVENT_TYPES)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid(value, f"a list of event types: {allowed}")
        for item in value:
            if item not in EVENT_TYPES:
                raise invalid(item, allowed)
        return list(dict.fromkeys(value))

    @field_validator("description", mode="before")
    @classmethod
    def _description(cls, value: Any) -> Any:
        if not given(value):
            return ""
        if not isinstance(value, str) or len(value) > MAX_ENDPOINT_DESCRIPTION_CHARS:
            raise invalid(value, f"a string of at most {MAX_ENDPOINT_DESCRIPTION_CHARS} characters")
        return value


class RotateSecretBody(RequestModel):
    grace_period_seconds: int = Field(
        default=DEFAULT_ROTATION_GRACE_S,
        strict=True,
        ge=0,
        le=MAX_ROTATION_GRACE_S,
        description="How long the previous secret also signs (default one day)",
    )

    @field_validator("grace_period_seconds", mode="before")
    @classmethod
    def _grace(cls, value: Any, info: ValidationInfo) -> Any:
        value = form_integer(value, info)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ROTATION_GRACE_S:
            raise invalid(value, f"an integer from 0 to {MAX_ROTATION_GRACE_S}")
        return value


class WebhookEndpoint(ApiModel):
    id: str = Field(examples=["we_5f1c0a9e2b7d4c6a8e3f1b2d"])
    object: Literal["webhook_endpoint"]
    url: str
    event_types: list[str] = Field(description="Empty: every event type")
    description: str
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None
    created_at: int
    secret_rotating_until: int | None = Field(description="Until when the previous secret also signs")

    @classmethod
    def fields_of(cls, endpoint: Endpoint, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        rotating = endpoint.previous_secret_until
        return {
            "id": endpoint.id,
            "object": "webhook_endpoint",
            "url": endpoint.url,
            "event_types": list(endpoint.event_types),
            "description": endpoint.description,
            "status": "disabled" if endpoint.disabled_at else "enabled",
            "disabled_reason": endpoint.disabled_reason,
            "created_at": int(endpoint.created_at),
            "secret_rotating_until": int(rotating) if rotating and rotating > now else None,
        }

    @classmethod
    def from_endpoint(cls, endpoint: Endpoint, now: float | None = None) -> WebhookEndpoint:
        return cls(**cls.fields_of(endpoint, now))


class WebhookEndpointWithSecret(WebhookEndpoint):
    secret: str = Field(description="whsec_…: shown only when created or rotated")

    @classmethod
    def from_endpoint(cls, endpoint: Endpoint, now: float | None = None) -> WebhookEndpointWithSecret:
        return cls(**cls.fields_of(endpoint, now), secret=endpoint.secret)


class WebhookEndpointList(ApiModel):
    object: Literal["list"]
    data: list[WebhookEndpoint]


class WebhookEndpointDeleted(ApiModel):
    id: str
    object: Literal["webhook_endpoint.deleted"]
    deleted: Literal[True]


class WebhookTestEvent(ApiModel):
    id: str = Field(examples=["evt_test_5f1c0a9e2b7d4c6a8e3f1b2d"])
    object: Literal["event"]
    created_at: int
    type: Literal["webhook_endpoint.test"]
    data: dict[str, str] = Field(description="The endpoint: id, object and url")


class WebhookTestResult(ApiModel):
    object: Literal["webhook_endpoint.test"]
    endpoint_id: str
    event: WebhookTestEvent
    succeeded: bool
    status: int | None = Field(description="The HTTP status the endpoint answered; null when it did not answer")
    latency_ms: int
    error: str | None = Field(
        description="Only a coarse class when it failed: http_<status>, timeout, connection_failed, url_refused or "
        "request_failed"
    )

    @classmethod
    def from_result(cls, result: TestResult) -> WebhookTestResult:
        return cls(
            object="webhook_endpoint.test",
            endpoint_id=result.endpoint_id,
            event=WebhookTestEvent.model_validate(result.event),
            succeeded=result.succeeded,
            status=result.status,
            latency_ms=result.latency_ms,
            error=result.error,
        )


class WebhookAttempt(ApiModel):
    attempt: int
    at: int
    status: int | None = Field(description="The HTTP status the receiver answered; null when it never answered")
    latency_ms: int
    error: str | None
    manual: bool = Field(default=False, description="A redelivery asked for through the API")

    @classmethod
    def from_record(cls, attempt: dict[str, Any]) -> WebhookAttempt:
        # Stored without its None values; shown with every field.
        return cls(
            attempt=int(attempt["attempt"]),
            at=int(attempt["at"]),
            status=attempt.get("status"),
            latency_ms=int(attempt.get("latency_ms") or 0),
            error=attempt.get("error"),
            manual=bool(attempt.get("manual")),
        )


class WebhookDelivery(ApiModel):
    id: str = Field(examples=["dlv_3f1c0a9e2b7d4c6a8e3f1b2d"])
    object: Literal["webhook_delivery"]
    video_id: str
    event_id: str
    event_type: str
    target: str = Field(description='"job" for the job\'s webhook_url, else the endpoint id')
    url: str | None
    status: Literal["pending", "delivering", "succeeded", "failed"]
    attempt_count: int
    next_attempt_at: int | None
    attempts: list[WebhookAttempt]
    created_at: int

    @classmethod
    def from_delivery(cls, delivery: Delivery) -> WebhookDelivery:
        return cls(
            id=delivery.id,
            object="webhook_delivery",
            video_id=delivery.video_id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            target=delivery.target_id,
            url=delivery.url or None,
            status=delivery.state,
            attempt_count=delivery.attempt_count,
            next_attempt_at=int(delivery.next_attempt_at) if delivery.state == "pending" else None,
            attempts=[WebhookAttempt.from_record(a) for a in delivery.attempts],
            created_at=int(delivery.created_at),
        )


class DeliveryList(ApiModel):
    object: Literal["list"]
    data: list[WebhookDelivery]
