"""`vidrelay keys`: API keys for tenants, against the running local stack or a deployed one.

A key is random, shown once (alone on the last line, so `$(vidrelay keys create --tenant a | tail -1)` works),
and stored only as its SHA-256 under the tenant it belongs to. Deployed stacks are reached with the caller's own
AWS credentials: the table name comes from the stack's `JobsTableName` output.
"""

from __future__ import annotations

import argparse
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

from vidrelay.failures import USAGE, CliError

if TYPE_CHECKING:  # the store pulls in boto3: loaded only when a keys command runs
    from vidrelay_core.store.tenants import ApiKey, TenantStore

TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def register(sub: Any) -> None:
    from vidrelay.commands.parsing import command

    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--stack", help="a deployed stack's name (default: the running local stack)")
    where.add_argument("--region", help="the deployed stack's region (default: your AWS configuration's)")
    keys = command(sub, "keys", "create, list and revoke API keys (local stack or --stack NAME)", parents=[where])
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    # --stack/--region are accepted before the action (`keys --stack S list`) and after it (`keys list --stack S`).
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("--stack", default=argparse.SUPPRESS, help="a deployed stack's name (default: the local stack)")
    after.add_argument("--region", default=argparse.SUPPRESS, help="its region (default: your AWS configuration's)")
    create = command(actions, "create", "make a key for a tenant (the tenant is created on first use)", parents=[after])
    create.add_argument("--tenant", required=True, help="1-63 characters of a-z, 0-9 and '-'")
    create.add_argument(
        "--budget-usd", type=float, help="the tenant's monthly budget: past it, new jobs get 402 (default: none)"
    )
    create.add_argument(
        "--rate-per-minute",
        type=int,
        help="the tenant's own limit of job creations per minute (default: the stack's): past it, 429",
    )
    command(actions, "list", "every key: id, tenant, created, revoked (never the key itself)", parents=[after])
    revoke = command(actions, "revoke", "refuse a key from the next request on", parents=[after])
    revoke.add_argument("key_id")
    keys.set_defaults(run=run)


def deployed_store(args: argparse.Namespace) -> TenantStore:
    """The tenants of a deployed stack, reached with the caller's own AWS credentials."""
    import boto3
    from botocore.exceptions import ClientError
    from vidrelay_core.store.codec import Table
    from vidrelay_core.store.tenants import TenantStore

    session = boto3.session.Session(region_name=args.region)
    try:
        stack = session.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in str(exc):
            region = session.region_name or "your default region"
            raise CliError(f"no stack {args.stack!r} in {region}: check --stack and --region") from exc
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    if "JobsTableName" not in outputs:
        raise CliError(f"stack {args.stack!r} has no JobsTableName output: is it a vidrelay stack?")
    return TenantStore(Table(session.client("dynamodb"), outputs["JobsTableName"]))


def run(args: argparse.Namespace) -> int:
    if args.keys_command == "create":
        _check_create(args.tenant, args.budget_usd, args.rate_per_minute)
    if args.stack:
        return act(args, deployed_store(args))
    from vidrelay_core.store.codec import Table
    from vidrelay_core.store.tenants import TenantStore

    from vidrelay.localstate import running_stack

    state = running_stack("to keep keys in (or pass --stack NAME for a deployed one)")
    with state.reaching_aws():
        return act(args, TenantStore(Table(state.aws_client("dynamodb"), state.info["jobs_table"])))


def act(args: argparse.Namespace, store: TenantStore) -> int:
    if args.keys_command == "create":
        return create(store, args.tenant, args.budget_usd, args.rate_per_minute)
    if args.keys_command == "list":
        return show(store.list_api_keys())
    revoked = store.revoke_api_key(args.key_id, now=time.time())
    if revoked is None:
        raise CliError(f"no API key {args.key_id!r} (`vidrelay keys list` shows the key ids)")
    key, changed = revoked
    print(f"{'revoked' if changed else 'already revoked'} {key.key_id} (tenant {key.tenant})")
    return 0


def _check_create(tenant: str, budget_usd: float | None, rate_per_minute: int | None) -> None:
    """Before any AWS call: a typo is told at once, and nothing is written."""
    if not TENANT_NAME.fullmatch(tenant):
        raise CliError(
            f"invalid tenant name {tenant!r}: 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit",
            USAGE,
        )
    if budget_usd is not None and budget_usd < 0:
        raise CliError(f"invalid --budget-usd {budget_usd}: a monthly amount in USD, 0 or more", USAGE)
    if rate_per_minute is not None and rate_per_minute < 1:
        raise CliError(f"invalid --rate-per-minute {rate_per_minute}: at least 1 job creation per minute", USAGE)


def create(store: TenantStore, tenant: str, budget_usd: float | None = None, rate_per_minute: int | None = None) -> int:
    from vidrelay_core.ids import hash_api_key
    from vidrelay_core.webhooks import new_secret

    _check_create(tenant, budget_usd, rate_per_minute)
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
    from vidrelay.console import show as print_table
    from vidrelay.console import table, when

    grid = table("KEY ID", "TENANT", "CREATED (UTC)", "REVOKED (UTC)")
    for key in keys:
        grid.add_row(key.key_id, key.tenant, when(key.created_at), when(key.revoked_at))
    print_table(grid)
    return 0
