"""`vidrelay keys`: API keys for tenants, against the running local stack or a deployed one.

A key is random, shown once (alone on the last line, so `$(vidrelay keys create --tenant a | tail -1)` works),
and stored only as its SHA-256 under the tenant it belongs to. Deployed stacks are reached with the caller's own
AWS credentials: the table name comes from the stack's `JobsTableName` output.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the store pulls in boto3: loaded only when a keys command runs
    from vidrelay_core.store.tenants import ApiKey, TenantStore

TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
STATE_FILE = Path(".vidrelay/local.json")


def add_parser(sub: Any) -> None:
    keys = sub.add_parser("keys", help="create, list and revoke API keys (local stack or --stack NAME)")
    keys.add_argument("--stack", help="a deployed stack's name (default: the running local stack)")
    keys.add_argument("--region", help="the deployed stack's region (default: your AWS configuration's)")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="make a key for a tenant (the tenant is created on first use)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--budget-usd", type=float, help="the tenant's monthly budget: past it, new jobs get 402")
    create.add_argument(
        "--rate-per-minute",
        type=int,
        help="the tenant's own limit of job creations per minute (default: the stack's): past it, 429",
    )
    actions.add_parser("list", help="every key: id, tenant, created, revoked (never the key itself)")
    revoke = actions.add_parser("revoke", help="refuse a key from the next request on")
    revoke.add_argument("key_id")


def store_for(args: argparse.Namespace) -> TenantStore:
    import boto3
    from vidrelay_core.store.codec import Table
    from vidrelay_core.store.tenants import TenantStore

    if args.stack:
        session = boto3.session.Session(region_name=args.region)
        stack = session.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        return TenantStore(Table(session.client("dynamodb"), outputs["JobsTableName"]))
    if not STATE_FILE.exists():
        raise SystemExit("No local stack found (.vidrelay/local.json): start `vidrelay local`, or pass --stack NAME.")
    info = json.loads(STATE_FILE.read_text())
    client = boto3.client(
        "dynamodb",
        endpoint_url=info["aws_endpoint_url"],
        region_name=info["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    return TenantStore(Table(client, info["jobs_table"]))


def run(args: argparse.Namespace) -> int:
    store = store_for(args)
    if args.keys_command == "create":
        return create(store, args.tenant, args.budget_usd, args.rate_per_minute)
    if args.keys_command == "list":
        return show(store.list_api_keys())
    revoked = store.revoke_api_key(args.key_id, now=time.time())
    if revoked is None:
        print(f"no key {args.key_id!r}")
        return 1
    key, changed = revoked
    print(f"{'revoked' if changed else 'already revoked'} {key.key_id} (tenant {key.tenant})")
    return 0


def create(store: TenantStore, tenant: str, budget_usd: float | None = None, rate_per_minute: int | None = None) -> int:
    from vidrelay_core.ids import hash_api_key
    from vidrelay_core.webhooks import new_secret

    if not TENANT_NAME.fullmatch(tenant):
        print(f"invalid tenant name {tenant!r}: 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit")
        return 2
    if budget_usd is not None and budget_usd < 0:
        print(f"invalid --budget-usd {budget_usd}: a monthly amount in USD, 0 or more")
        return 2
    if rate_per_minute is not None and rate_per_minute < 1:
        print(f"invalid --rate-per-minute {rate_per_minute}: at least 1 job creation per minute")
        return 2
    created = store.ensure_tenant(tenant, webhook_secret=new_secret())
    if budget_usd is not None:
        store.set_budget(tenant, budget_usd)
    if rate_per_minute is not None:
        store.set_rate_limit(tenant, rate_per_minute)
    key = "sk-vr-" + secrets.token_urlsafe(32)
    key_id = "key_" + secrets.token_hex(6)
    store.create_api_key(key_id, hash_api_key(key), tenant, now=time.time())
    limits = [f"monthly budget ${budget_usd:.2f}"] if budget_usd is not None else []
    limits += [f"{rate_per_minute} jobs per minute"] if rate_per_minute is not None else []
    budget = f" ({', '.join(limits)})" if limits else ""
    print(f"{'created tenant ' + tenant + ' and' if created else 'tenant ' + tenant + ':'} key {key_id}{budget}")
    print("the key is shown only now:")
    print(key)
    return 0


def show(keys: list[ApiKey]) -> int:
    print(f"{'KEY ID':<18} {'TENANT':<24} {'CREATED':<20} REVOKED")
    for key in keys:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(key.created_at))
        revoked = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(key.revoked_at)) if key.revoked_at else "-"
        print(f"{key.key_id:<18} {key.tenant:<24} {created:<20} {revoked}")
    return 0
