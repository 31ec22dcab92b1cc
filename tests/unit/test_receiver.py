"""The webhook receiver behind `vidrelay listen`: verifies with every key it knows, learns new ones when a
signature matches none, and says why it refused a delivery."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from vidrelay_core.webhooks import new_secret, sign

from vidrelay.receiver import Receiver, Rejected, SigningKey

EVENT = {"id": "evt_1", "object": "event", "type": "video.completed", "data": {"id": "video_1"}}


def _delivery(
    secret: str, *, at: float | None = None, event: dict[str, object] = EVENT
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event)
    timestamp = int(at if at is not None else time.time())
    headers = {
        "webhook-id": str(event["id"]),
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign([secret], str(event["id"]), timestamp, body),
    }
    return body.encode(), headers


@pytest.fixture
def rejected() -> list[Rejected]:
    return []


@pytest.fixture
def receiver_for(rejected: list[Rejected]) -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        receiver = Receiver(on_rejected=rejected.append, **kwargs)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver._server.server_close()


def test_a_delivery_signed_by_an_endpoint_created_after_start_is_verified(
    receiver_for: Callable[..., Receiver], rejected: list[Rejected]
) -> None:
    # Given a receiver that knows the tenant's secret, and an endpoint secret that appears only later
    tenant, endpoint = new_secret(), new_secret()
    stored = [SigningKey(tenant, "tenant local")]
    reads: list[int] = []

    def source() -> list[SigningKey]:
        reads.append(1)
        return list(stored)

    receiver = receiver_for(key_source=source, refresh_interval_s=0)
    stored.append(SigningKey(endpoint, "endpoint we_1"))
    # When a delivery signed with the new endpoint's secret arrives
    status, _ = receiver.handle(*_delivery(endpoint))
    # Then the receiver re-read its keys and verified it
    assert status == 200 and not rejected
    received = receiver.events.get_nowait()
    assert received.verified and received.signed_by == "endpoint we_1"
    assert len(reads) == 2


def test_a_forgery_is_refused_with_its_type_video_id_and_reason(
    receiver_for: Callable[..., Receiver], rejected: list[Rejected]
) -> None:
    receiver = receiver_for(secret=new_secret())
    status, _ = receiver.handle(*_delivery(new_secret()))
    assert status == 401
    assert rejected == [
        Rejected(rejected[0].headers, "signature matches none of the 1 known secret", "video.completed", "video_1", 401)
    ]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        # Offsets from the moment the test runs (not the moment the suite was collected).
        ({"webhook-timestamp": -3600}, r"timestamp 360\d s old \(more than 300 s: stale or replayed\)"),
        ({"webhook-timestamp": 3600}, r"timestamp 3[56]\d\d s in the future"),
        ({"webhook-signature": ""}, "no v1 signature in webhook-signature$"),
        ({"webhook-id": ""}, "no webhook-id header$"),
        ({"webhook-timestamp": "soon"}, "webhook-timestamp 'soon' is not a unix time$"),
    ],
)
def test_each_reason_for_refusing_is_named(
    receiver_for: Callable[..., Receiver], rejected: list[Rejected], change: dict[str, str | int], reason: str
) -> None:
    secret = new_secret()
    receiver = receiver_for(secret=secret)
    body, headers = _delivery(secret)
    changed = {k: str(int(time.time()) + v) if isinstance(v, int) else v for k, v in change.items()}
    assert receiver.handle(body, {**headers, **changed})[0] == 401
    assert re.match(reason, rejected[0].reason), rejected[0].reason


def test_the_key_source_is_not_read_more_than_once_a_second_by_a_flood_of_forgeries(
    receiver_for: Callable[..., Receiver],
) -> None:
    reads: list[int] = []

    def source() -> list[SigningKey]:
        reads.append(1)
        return []

    receiver = receiver_for(key_source=source, refresh_interval_s=60)
    for _ in range(20):
        assert receiver.handle(*_delivery(new_secret()))[0] == 401
    assert len(reads) == 1  # the read at start; the flood falls inside the interval


def test_deliveries_of_a_new_endpoint_arriving_side_by_side_are_all_verified(
    receiver_for: Callable[..., Receiver], rejected: list[Rejected]
) -> None:
    # Given a receiver whose key source is slow, and an endpoint created after it started
    endpoint = new_secret()
    stored: list[SigningKey] = []
    reading = threading.Event()

    def source() -> list[SigningKey]:
        reading.set()
        time.sleep(0.2)
        return list(stored)

    receiver = receiver_for(key_source=source, refresh_interval_s=0.5)
    stored.append(SigningKey(endpoint, "endpoint we_1"))
    # When two of its deliveries arrive at once, within the re-read interval of the read at start: the second one
    # while the first one's re-read is under way
    statuses: list[int] = []
    first = threading.Thread(target=lambda: statuses.append(receiver.handle(*_delivery(endpoint))[0]))
    reading.clear()
    first.start()
    assert reading.wait(5)
    statuses.append(receiver.handle(*_delivery(endpoint))[0])
    first.join()
    # Then neither is refused for falling inside the re-read interval
    assert statuses == [200, 200] and not rejected
