"""`vidrelay listen`: receive webhooks on this machine, verify their signatures, print one line per delivery
(like `stripe listen`).

It verifies with every secret it can know: each `--secret`, and when a local stack runs, the secret of each of its
tenants (a job's own `webhook_url`) and of each of their webhook endpoints (both secrets while one rotates).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from vidrelay.localstate import LocalState
from vidrelay.receiver import Received, Rejected, SigningKey


def register(sub: Any) -> None:
    from vidrelay.commands.parsing import command

    listen = command(sub, "listen", "receive webhooks locally, verify their signatures, print them")
    listen.add_argument("--port", type=int, default=8788, help="port to listen on (the URL is /webhooks)")
    listen.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="WHSEC",
        help="a whsec_ secret to verify with (repeatable; default: only the running local stack's secrets)",
    )
    listen.set_defaults(run=run)


def local_signing_keys(state: LocalState) -> list[SigningKey]:
    """Every secret the local stack signs with: each tenant's and each of its endpoints', read from its table."""
    from vidrelay_core.store.codec import Table
    from vidrelay_core.store.tenants import TenantStore
    from vidrelay_core.store.webhooks import WebhookStore

    table = Table(state.aws_client("dynamodb"), str(state.info["jobs_table"]))
    tenants, webhooks = TenantStore(table), WebhookStore(table)
    keys: list[SigningKey] = []
    now = time.time()
    with state.reaching_aws():
        for tenant in sorted({str(state.info["tenant"])} | {key.tenant for key in tenants.list_api_keys()}):
            secret = tenants.webhook_secret(tenant)
            if secret:
                keys.append(SigningKey(secret, f"tenant {tenant}"))
            for endpoint in webhooks.list_endpoints(tenant):
                keys += [SigningKey(s, f"endpoint {endpoint.id}") for s in endpoint.signing_secrets(now)]
    return keys


def run(args: argparse.Namespace) -> int:
    from vidrelay.commands.local import wait_for_signal
    from vidrelay.failures import explain
    from vidrelay.localstate import read_state
    from vidrelay.receiver import Receiver

    state = read_state()
    if state is not None and not state.is_running():
        state = None
    known: list[SigningKey] = []

    def key_source() -> list[SigningKey]:
        # A stack that stops while we listen keeps its last known secrets: deliveries in flight still verify.
        nonlocal known
        assert state is not None
        try:
            known = local_signing_keys(state)
        except Exception as exc:
            problem = explain(exc)
            print(f"could not re-read the local stack's secrets ({problem.message if problem else exc})", flush=True)
        return known

    # Attempts per (event, signer): the job's URL and an endpoint receive the same event id as two deliveries.
    attempts: dict[tuple[str, str | None], int] = {}

    def show(received: Received) -> None:
        event = received.event
        delivery = (received.headers.get("webhook-id", ""), received.signed_by)
        attempts[delivery] = attempts.get(delivery, 0) + 1
        data = event["data"] if isinstance(event.get("data"), dict) else {}
        mark = f"verified ({received.signed_by})" if received.verified else "UNVERIFIED"
        print(
            f"{event.get('type'):<18} {data.get('id')}  attempt {attempts[delivery]}  "
            f"{received.headers.get('webhook-id')}  {mark}",
            flush=True,
        )

    def rejected(refused: Rejected) -> None:
        print(
            f"{'REJECTED':<18} {refused.event_type} {refused.video_id}  {refused.headers.get('webhook-id')}  "
            f"{refused.reason} (answered {refused.answered})",
            flush=True,
        )

    secrets = list(args.secret)
    receiver = Receiver(
        port=args.port,
        signing_keys=[SigningKey(secret, f"--secret {number}") for number, secret in enumerate(secrets, start=1)],
        key_source=key_source if state is not None else None,
        on_event=show,
        on_rejected=rejected,
    ).start()
    if receiver.verifying:
        sources = [f"{len(secrets)} --secret"] if secrets else []
        if state is not None:
            sources.append(f"the local stack's secrets ({len(known)} now, re-read when a signature matches none)")
        print(f"listening on {receiver.url} (verifying signatures with {' and '.join(sources)})", flush=True)
    else:
        print(f"listening on {receiver.url} (NOT verifying: no --secret and no local stack running)", flush=True)
    try:
        wait_for_signal()
    finally:
        receiver.stop()
    return 0
