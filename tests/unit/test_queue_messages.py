"""The queue messages are parsed by hand (queues.py): a malformed one fails at the handler's edge with the field
named, and an event's body reaches receivers exactly as the topic published it."""

from __future__ import annotations

import json

import pytest
from vidrelay_core.queues import DeliveryRef, EventMessage, JobMessage, job_message, webhook_message

EVENT = {
    "id": "evt_1",
    "object": "event",
    "created_at": 1796000000,
    "type": "video.completed",
    "data": {"id": "video_1", "status": "completed"},
    "extra": {"kept": True},
}


def test_a_job_message_reads_its_id_and_attempt() -> None:
    assert job_message('{"video_id": "video_1", "attempt": 3}') == JobMessage("video_1", 3)
    assert job_message('{"video_id": "video_1", "unknown": 1}') == JobMessage("video_1", 1)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("{}", "'video_id': expected str, got None"),
        ('{"video_id": 7}', "'video_id': expected str, got 7"),
        ('{"video_id": "v", "attempt": "2"}', "'attempt': expected int, got '2'"),
        ('{"video_id": "v", "attempt": true}', "'attempt': expected int, got True"),
        ('["video_1"]', "must be a JSON object"),
    ],
)
def test_a_malformed_job_message_names_its_field(body: str, named: str) -> None:
    with pytest.raises(ValueError, match="queue message") as raised:
        job_message(body)
    assert named in str(raised.value)


def test_an_event_keeps_its_body_and_takes_the_tenant_from_the_attributes() -> None:
    message = webhook_message(json.dumps(EVENT), {"tenant": "t_1"})
    assert isinstance(message, EventMessage)
    assert (message.id, message.type, message.video_id) == ("evt_1", "video.completed", "video_1")
    assert message.tenant == "t_1"
    # Same keys in the same order: what a receiver verifies is the event as published, tenant never in it.
    assert list(message.body()) == list(EVENT)
    assert message.body() == EVENT


def test_an_enveloped_event_carries_its_tenant_in_the_envelope() -> None:
    envelope = {
        "Type": "Notification",
        "Message": json.dumps(EVENT),
        "MessageAttributes": {"tenant": {"Type": "String", "Value": "t_2"}},
    }
    message = webhook_message(json.dumps(envelope))
    assert isinstance(message, EventMessage) and message.tenant == "t_2"


def test_a_delivery_message_round_trips() -> None:
    ref = DeliveryRef("video_1", "evt_1", "job")
    assert webhook_message(ref.message()) == ref


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"delivery": {"video_id": "v", "event_id": "e"}}, "'target'"),
        ({"delivery": "v"}, "'delivery': expected dict"),
        ({"id": "evt_1", "type": "video.completed"}, "'data': expected dict"),
        ({"type": "video.completed", "data": {}}, "'id': expected str"),
    ],
)
def test_a_malformed_webhook_message_names_its_field(body: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match="queue message") as raised:
        webhook_message(json.dumps(body))
    assert named in str(raised.value)
