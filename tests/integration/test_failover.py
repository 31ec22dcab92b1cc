"""Several upstream accounts per family, in failover order: a refusal that cannot have been billed (connection
refused, 429, a 5xx without a task id) moves the submit to the next account; an ambiguous one never does. The
job remembers the account that took it (by name), and its polls and download go there."""

from __future__ import annotations

import socket

import httpx
from vidrelay_core.upstream.base import Account, account_for
from vidrelay_core.upstream.videos import VideosAdapter

from .conftest import Harness, Process


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


def with_accounts(h: Harness, *accounts: Account) -> Process:
    http = httpx.Client(follow_redirects=False)
    return h.process(adapters=lambda family: [VideosAdapter(account, http) for account in accounts])


def sim_account(h: Harness, name: str) -> Account:
    primary = account_for("videos", h.stack.env)
    return Account("videos", primary.base_url, primary.api_key, name)


def test_a_refused_connection_moves_the_job_to_the_next_account(harness: Harness) -> None:
    h = harness
    dead = Account("videos", f"http://127.0.0.1:{closed_port()}", "sk-dead", "dead")
    p = with_accounts(h, dead, sim_account(h, "backup"))
    tenant = h.new_tenant()

    job = p.parts.create.create(tenant.name, h.request("failover-refused"))

    assert job.state in ("submitted", "running") and job.upstream_account == "backup"
    assert len(h.stack.sim_tasks("failover-refused")) == 1
    # The poll goes to the account that has the task, not to the first of the list.
    h.wait_sim("failover-refused", "completed")
    current = p.parts.jobs.get_job(job.id)
    assert current is not None and p.parts.poller.check(current) == "downloading"


def test_a_rate_limit_moves_on_and_an_ambiguous_answer_does_not(harness: Harness) -> None:
    h = harness
    p = with_accounts(h, sim_account(h, "first"), sim_account(h, "second"))
    tenant = h.new_tenant()
    h.stack.simulator.add_fault("sora-2", "submit_429", 1, times=1)

    limited = p.parts.create.create(tenant.name, h.request("failover-429"))
    assert limited.upstream_account == "second" and limited.state in ("submitted", "running")

    reset = p.parts.create.create(tenant.name, h.request("failover-reset", prompt="dropped [sim:submit_reset]"))
    assert reset.state == "failed" and reset.error_code == "upstream_submit_unknown"
    assert reset.upstream_account == "first"
    submits = [r for r in h.stack.sim_requests() if r["method"] == "POST" and r["path"] == "/v1/videos"]
    dropped = [r for r in submits if r["status"] is None]
    assert len(dropped) == 1  # the second account was never tried: the first may have the task


def test_every_account_refusing_leaves_the_job_for_the_poller(harness: Harness) -> None:
    h = harness
    dead = [Account("videos", f"http://127.0.0.1:{closed_port()}", "sk-x", f"dead-{n}") for n in (1, 2)]
    p = with_accounts(h, *dead)
    tenant = h.new_tenant()

    job = p.parts.create.create(tenant.name, h.request("failover-none"))

    assert job.state == "accepted" and job.submit_started_at is None and job.next_check_at is not None
