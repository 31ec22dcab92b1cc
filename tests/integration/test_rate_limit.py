"""The per-tenant rate of job creation: the N+1th create of a minute is a 429 with Retry-After that stores nothing
and sends nothing upstream, concurrent creates cannot overshoot, and the next minute has room again."""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest
from PIL import Image
from vidrelay_core.bodies import UploadedFile
from vidrelay_core.errors import RateLimited
from vidrelay_core.store.codec import Table
from vidrelay_core.store.counters import CounterStore, rate_window
from vidrelay_core.store.tenants import TenantStore

from .conftest import CallLog, Harness, Process, Tenant


def store(h: Harness) -> TenantStore:
    return h.tenants()


def create(h: Harness, p: Process, tenant: Tenant, case: str, **fields: Any) -> Any:
    return p.parts.create.create(tenant.name, h.request(case, **fields))


def to_next_window(h: Harness, *, into_s: float = 0.01) -> None:
    """Moves the test clock to `into_s` after the start of the next minute."""
    now = h.clock()
    h.clock.advance(rate_window(now) + 60 - now + into_s)


def test_the_create_over_the_tenants_limit_is_refused_with_retry_after_and_leaves_no_trace(harness: Harness) -> None:
    h = harness
    tenant = h.new_tenant()
    store(h).set_rate_limit(tenant.name, 2)
    p = h.process()
    to_next_window(h, into_s=5)  # early in a minute, so the three creates share it
    for n in range(2):
        create(h, p, tenant, f"rl-ok-{n}-{tenant.name}")
    before = p.log.labels("dynamodb.transact_write_items")
    image = io.BytesIO()
    Image.new("RGB", (1280, 720)).save(image, format="PNG")
    reference = {"input_reference": UploadedFile("frame.png", "image/png", image.getvalue())}

    with pytest.raises(RateLimited) as refused:
        p.parts.create.create_from_fields(
            tenant.name, {"prompt": f"one too many [case rl-over-{tenant.name}]"}, reference, multipart=True
        )

    assert 1 <= refused.value.retry_after_s <= 55
    body = refused.value.to_body()["error"]
    assert (body["type"], body["code"]) == ("rate_limit_error", "rate_limited") and "2 videos per minute" in body[
        "message"
    ]
    assert len(h.jobs(tenant)) == 2
    assert h.stack.sim_tasks(f"rl-over-{tenant.name}") == []  # nothing reached the upstream
    assert p.log.labels("dynamodb.transact_write_items") == before  # refused before anything was written
    inputs = h.stack.s3.list_objects_v2(Bucket=h.stack.bucket, Prefix=f"inputs/{tenant.name}/")
    assert inputs["KeyCount"] == 0  # the refused image was never stored

    h.clock.advance(refused.value.retry_after_s)  # what Retry-After says: the window has reopened
    reopened = create(h, p, tenant, f"rl-later-{tenant.name}")
    assert reopened.id in [j.id for j in h.jobs(tenant)] and len(h.jobs(tenant)) == 3


def test_concurrent_creates_cannot_overshoot_the_limit(harness: Harness) -> None:
    h = harness
    tenant = h.new_tenant()
    store(h).set_rate_limit(tenant.name, 3)
    log = CallLog()
    # All six pass the early check (the counter is still 0) before any of them writes: only the transaction's
    # conditional counter keeps the fourth to sixth out.
    log.rendezvous("dynamodb.transact_write_items", parties=6)
    p = h.process(log)
    to_next_window(h, into_s=5)
    results: list[Any] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            result: Any = create(h, p, tenant, f"rl-race-{n}-{tenant.name}")
        except Exception as exc:
            result = exc
        with lock:
            results.append(result)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    refused = [r for r in results if isinstance(r, RateLimited)]
    assert len(results) == 6 and len(refused) == 3, results
    assert len(h.jobs(tenant)) == 3
    assert CounterStore(Table(h.stack.dynamodb, h.stack.table)).rate_used(tenant.name, rate_window(h.clock())) == 3


def test_a_replay_inside_a_full_window_is_answered_not_refused(harness: Harness) -> None:
    h = harness
    tenant = h.new_tenant()
    store(h).set_rate_limit(tenant.name, 1)
    p = h.process()
    to_next_window(h, into_s=5)
    request = h.request(f"rl-replay-{tenant.name}")
    first = p.parts.create.create(tenant.name, request, idempotency_key="order-1")

    again = p.parts.create.create(tenant.name, request, idempotency_key="order-1")

    assert again.id == first.id
    with pytest.raises(RateLimited):
        create(h, p, tenant, f"rl-replay-new-{tenant.name}")


def test_the_deployments_limit_applies_unless_the_tenant_has_its_own(harness: Harness) -> None:
    h = harness
    capped, generous = h.new_tenant(), h.new_tenant()
    store(h).set_rate_limit(generous.name, 5)
    p = h.process(settings={"rate_per_minute": 1})
    to_next_window(h, into_s=5)

    create(h, p, capped, f"rl-global-{capped.name}")
    with pytest.raises(RateLimited):
        create(h, p, capped, f"rl-global-2-{capped.name}")
    for n in range(3):
        create(h, p, generous, f"rl-own-{n}-{generous.name}")

    assert (len(h.jobs(capped)), len(h.jobs(generous))) == (1, 3)
    to_next_window(h)
    create(h, p, capped, f"rl-global-3-{capped.name}")
    assert len(h.jobs(capped)) == 2
