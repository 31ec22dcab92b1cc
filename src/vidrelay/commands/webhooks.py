"""Webhook commands: a video's deliveries and redelivery, and the tenant's webhook endpoints."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vidrelay.commands.videos import api_parent, client_for, json_option
from vidrelay.failures import CliError

EVENT_TYPES = (
    "video.queued",
    "video.in_progress",
    "video.completed",
    "video.failed",
    "video.canceled",
    "video.expired",
)


def register(sub: Any) -> None:
    from vidrelay.commands.parsing import command

    api = [api_parent()]
    deliveries = command(sub, "deliveries", "every webhook delivery of a video, with every attempt", parents=api)
    deliveries.add_argument("video_id")
    json_option(deliveries)
    deliveries.set_defaults(run=run_deliveries)

    redeliver = command(sub, "redeliver", "send a finished (failed or delivered) delivery once more", parents=api)
    redeliver.add_argument("video_id")
    redeliver.add_argument("delivery_id", help="a dlv_… id of `vidrelay deliveries VIDEO_ID`")
    redeliver.set_defaults(run=run_redeliver)

    endpoints = command(sub, "endpoints", "manage the webhook endpoints that receive every video's events")
    actions = endpoints.add_subparsers(dest="endpoints_command", required=True, metavar="ACTION")
    create = command(actions, "create", "register an endpoint (its signing secret is shown only now)", parents=api)
    create.add_argument("--url", required=True, help="https URL (local stack: http to loopback too)")
    create.add_argument(
        "--event-type",
        action="append",
        default=[],
        choices=EVENT_TYPES,
        metavar="TYPE",
        help=f"send only these events (repeatable: {', '.join(EVENT_TYPES)}; default: every event)",
    )
    create.add_argument("--description", default="", help="a note for yourself (default: none)")
    create.set_defaults(run=run_create)

    listing = command(actions, "list", "the endpoints (never their secrets)", parents=api)
    json_option(listing)
    listing.set_defaults(run=run_list)

    delete = command(actions, "delete", "remove an endpoint; deliveries still due to it stop", parents=api)
    delete.add_argument("endpoint_id")
    delete.set_defaults(run=run_delete)

    rotate = command(actions, "rotate", "give an endpoint a new signing secret (shown only now)", parents=api)
    rotate.add_argument("endpoint_id")
    rotate.add_argument(
        "--grace-period-seconds",
        type=int,
        default=86_400,
        help="how long the old secret also signs (0-604800)",
    )
    rotate.set_defaults(run=run_rotate)

    test = command(actions, "test", "send a signed webhook_endpoint.test event now and show the answer", parents=api)
    test.add_argument("endpoint_id")
    test.set_defaults(run=run_test)


def run_deliveries(args: argparse.Namespace) -> int:
    from vidrelay.console import show, table, when

    deliveries = client_for(args).deliveries(args.video_id)
    if args.json:
        print(json.dumps(deliveries, indent=2))
        return 0
    if not deliveries:
        print(f"no deliveries for {args.video_id} (no webhook_url and no endpoint wanted its events)")
        return 0
    grid = table(
        "DELIVERY", "EVENT", "TARGET", "STATUS", "ATTEMPT", "AT (UTC)", "HTTP", "LATENCY", "ERROR", wide=("ERROR",)
    )
    for delivery in sorted(deliveries, key=lambda d: (d["created_at"], d["id"])):
        head = (delivery["id"], delivery["event_type"], delivery["target"], _delivery_status(delivery))
        attempts = delivery.get("attempts") or []
        if not attempts:
            grid.add_row(*head, "-", "-", "-", "-", "")
        for number, attempt in enumerate(attempts):
            grid.add_row(
                *(head if number == 0 else ("", "", "", "")),
                f"{attempt['attempt']}{' (manual)' if attempt.get('manual') else ''}",
                when(attempt.get("at")),
                str(attempt["status"]) if attempt.get("status") is not None else "-",
                f"{attempt.get('latency_ms', 0)} ms",
                attempt.get("error") or "",
            )
    show(grid)
    return 0


def _delivery_status(delivery: dict[str, Any]) -> str:
    from vidrelay.console import when

    if delivery["status"] == "pending" and delivery.get("next_attempt_at"):
        return f"pending (next {when(delivery['next_attempt_at'])})"
    return str(delivery["status"])


def run_redeliver(args: argparse.Namespace) -> int:
    delivery = client_for(args).redeliver(args.video_id, args.delivery_id)
    target = delivery["url"] if delivery["target"] == "job" else f"endpoint {delivery['target']}"
    print(
        f"{delivery['id']} ({delivery['event_type']} to {target}) is due again; "
        f"`vidrelay deliveries {args.video_id}` shows the attempt"
    )
    return 0


def _show_endpoints(endpoints: list[dict[str, Any]]) -> None:
    from vidrelay.console import show, table, when

    grid = table("ID", "URL", "EVENTS", "STATUS", "CREATED (UTC)", "DESCRIPTION", wide=("DESCRIPTION",))
    for endpoint in endpoints:
        status = endpoint["status"]
        if endpoint.get("disabled_reason"):
            status += f" ({endpoint['disabled_reason']})"
        if endpoint.get("secret_rotating_until"):
            status += f", old secret signs until {when(endpoint['secret_rotating_until'])}"
        grid.add_row(
            endpoint["id"],
            endpoint["url"],
            ", ".join(endpoint.get("event_types") or []) or "every event",
            status,
            when(endpoint.get("created_at")),
            endpoint.get("description") or "",
        )
    show(grid)


def run_create(args: argparse.Namespace) -> int:
    endpoint = client_for(args).create_endpoint(args.url, event_types=args.event_type, description=args.description)
    _show_endpoints([endpoint])
    print("its signing secret is shown only now:")
    print(endpoint["secret"])
    return 0


def run_list(args: argparse.Namespace) -> int:
    endpoints = client_for(args).endpoints()
    if args.json:
        print(json.dumps(endpoints, indent=2))
    elif endpoints:
        _show_endpoints(endpoints)
    else:
        print("no webhook endpoints (`vidrelay endpoints create --url URL` adds one)")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    client_for(args).delete_endpoint(args.endpoint_id)
    print(f"deleted {args.endpoint_id}")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    from vidrelay.console import when

    endpoint = client_for(args).rotate_endpoint_secret(args.endpoint_id, grace_period_s=args.grace_period_seconds)
    until = endpoint.get("secret_rotating_until")
    previous = f"the previous secret also signs until {when(until)} UTC" if until else "the previous secret is void"
    print(f"rotated the secret of {endpoint['id']}; {previous}. The new secret is shown only now:")
    print(endpoint["secret"])
    return 0


def run_test(args: argparse.Namespace) -> int:
    result = client_for(args).test_endpoint(args.endpoint_id)
    answer = f"HTTP {result['status']}" if result.get("status") is not None else "no answer"
    detail = f" ({result['error']})" if result.get("error") else ""
    line = f"{result['event']['type']} {result['event']['id']} to {result['endpoint_id']}: {answer}{detail}"
    if not result["succeeded"]:
        raise CliError(f"{line} in {result['latency_ms']} ms: the endpoint did not accept it")
    print(f"{line} in {result['latency_ms']} ms: delivered")
    return 0
