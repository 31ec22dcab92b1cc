"""A delivery's record in the jobs table: written at least twice per event, so its size is a cost. A completed
event's record stays under DynamoDB's 1 KB write unit (the body stored deflated, the ids only in the keys), it reads
back as written, and a record in the older form (the body as text, the ids as attributes) still reads."""

from __future__ import annotations

import json
import time
from typing import Any

from vidrelay_core.ids import event_id, new_endpoint_id, new_video_id
from vidrelay_core.ledger import Delivery
from vidrelay_core.store.codec import Table
from vidrelay_core.store.webhooks import WebhookStore

from vidrelay.bench.units import item_bytes

from .conftest import Stack


def _completed_event(video_id: str) -> str:
    video: dict[str, Any] = {
        "id": video_id, "object": "video", "model": "sora-2", "status": "completed", "progress": 100,
        "created_at": 1796301986, "completed_at": 1796302076, "expires_at": 1798894076,
        "prompt": "a red fox running through fresh snow at dawn, cinematic, slow dolly shot, golden light",
        "seconds": "8", "size": "1280x720", "error": None, "remixed_from_video_id": None, "task_id": "task_01k2x9",
        "provider": "apiyi", "metadata": {"order": "42", "customer": "c-1138"}, "options": {}, "references": [],
        "output": {
            "bytes": 7210215, "sha256": "5b660861958ad7fb88fc02d48fcf26c7812ee7992c11e061a8bf3916cf8f7f94",
            "duration_s": 8.0, "width": 1280, "height": 720,
            "s3_uri": f"s3://vidrelay-prod-resultsbucket-df17ac7b407c/videos/tenant-acme/{video_id}.mp4",
        },
        "cost": {"estimated_usd": 0.8, "currency": "USD"}, "usage": None, "webhook": None, "retry": None,
        "variants": {
            "available": ["video"], "status": "pending", "thumbnail": None, "spritesheet": None, "error": None,
        },
    }  # fmt: skip
    event = {"id": event_id(video_id, 3, "completed"), "object": "event", "created_at": 1796302077}
    return json.dumps({**event, "type": "video.completed", "data": video}, separators=(",", ":"))


def _delivery(target_id: str = "job") -> Delivery:
    video_id = new_video_id()
    body = _completed_event(video_id)
    now = time.time()
    return Delivery(
        tenant="tenant-acme",
        video_id=video_id,
        event_id=json.loads(body)["id"],
        target_id=target_id,
        event_type="video.completed",
        event_body=body,
        url="https://hooks.example.com/vidrelay/webhooks/video-events" if target_id == "job" else "",
        state="pending",
        attempt_count=0,
        next_attempt_at=now,
        created_at=now,
    )


def _raw(stack: Stack, delivery: Delivery) -> dict[str, Any]:
    key = {"pk": {"S": f"JOB#{delivery.video_id}"}, "sk": {"S": f"DELIVERY#{delivery.event_id}#{delivery.target_id}"}}
    item: dict[str, Any] = stack.dynamodb.get_item(TableName=stack.table, Key=key, ConsistentRead=True)["Item"]
    return item


def test_a_completed_event_s_record_is_one_write_unit_taken_and_finished(stack: Stack) -> None:
    store = WebhookStore(Table(stack.dynamodb, stack.table))
    delivery = _delivery()
    assert len(delivery.event_body) > 1024  # as text the body alone would be two units
    claim = store.create_delivery(delivery, lease_s=60)
    assert claim is not None
    assert item_bytes(_raw(stack, delivery)) < 1024
    attempt = {"attempt": 1, "at": int(time.time()), "status": 200, "latency_ms": 41}
    assert store.finish(claim, state="succeeded", attempt=attempt)
    assert item_bytes(_raw(stack, delivery)) < 1024
    # and it reads back as written: the body byte for byte, the ids from the keys
    read = store.get_delivery(delivery.video_id, delivery.event_id, delivery.target_id)
    assert read is not None
    assert (read.video_id, read.event_id, read.target_id) == (delivery.video_id, delivery.event_id, "job")
    assert read.event_body == delivery.event_body and read.state == "succeeded" and read.attempt_count == 1
    endpoint_target = _delivery(new_endpoint_id())
    assert store.create_delivery(endpoint_target) is not None
    (listed,) = store.list_deliveries(endpoint_target.video_id)
    assert listed.target_id == endpoint_target.target_id and listed.event_body == endpoint_target.event_body


def test_a_record_in_the_older_form_still_reads(stack: Stack) -> None:
    delivery = _delivery()
    old = {
        "pk": {"S": f"JOB#{delivery.video_id}"},
        "sk": {"S": f"DELIVERY#{delivery.event_id}#job"},
        "tenant": {"S": delivery.tenant},
        "video_id": {"S": delivery.video_id},
        "event_id": {"S": delivery.event_id},
        "target_id": {"S": "job"},
        "event_type": {"S": delivery.event_type},
        "event_body": {"S": delivery.event_body},
        "url": {"S": delivery.url},
        "state": {"S": "failed"},
        "attempt_count": {"N": "10"},
        "next_attempt_at": {"N": "0"},
        "created_at": {"N": str(delivery.created_at)},
        "attempts": {"L": []},
        "manual_attempts": {"N": "0"},
    }
    stack.dynamodb.put_item(TableName=stack.table, Item=old)
    store = WebhookStore(Table(stack.dynamodb, stack.table))
    read = store.get_delivery(delivery.video_id, delivery.event_id, "job")
    assert read is not None and read.event_body == delivery.event_body and read.state == "failed"
    # and a redelivery of it goes through as for a new record
    assert store.request_redelivery(read, now=time.time())
