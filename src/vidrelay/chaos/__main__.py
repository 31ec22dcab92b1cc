"""`make chaos` (`python -m vidrelay.chaos --jobs N`): N jobs of every model through `vidrelay local`, under
injected upstream faults, a webhook receiver that fails half its requests, duplicated SQS deliveries and
idempotent replays; then one JSON document on stdout saying what was lost or doubled. Exit code 1 when any
failure counter is not zero (progress goes to stderr).

The counters are described in the package docstring."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import httpx

from .audit import (
    Findings,
    check_ledger,
    check_objects,
    check_outcomes,
    check_submissions,
    check_terminal_events,
    fetch_deliveries,
    unsettled,
)
from .clients import Api, ApiLog, Created, Creator, wait_until_terminal
from .plan import ModelInfo, plan, shuffled
from .receiver import FlakyReceiver
from .stack import RunningStack, StackOptions, local_stack

FAILURE_COUNTERS = (
    "lost",
    "creates_unanswered",
    "unexpected_outcomes",
    "double_submissions",
    "s3_duplicate_objects",
    "s3_missing_objects",
    "s3_mismatching_objects",
    "s3_stray_objects",
    "terminal_events_not_delivered",
    "unstable_webhook_ids",
    "duplicate_deliveries",
    "bad_signatures",
    "api_5xx",
    "api_transport_errors",
    "ledger_disagreements",
    "replay_mismatches",
)


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def catalog(api: Api) -> list[ModelInfo]:
    response = api.call("GET", "/models")
    response.raise_for_status()
    return [ModelInfo(m["id"], m["family"]) for m in response.json()["data"]]


def stored_keys(stack: RunningStack) -> list[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.info["aws_endpoint_url"],
        region_name=stack.info["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.info["results_bucket"], Prefix="videos/"):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def settle_deliveries(api: Api, ids: list[str], timeout_s: float) -> dict[str, list[dict[str, Any]]]:
    """The deliveries of every job, once none is pending or in flight (or the time is up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        listed = fetch_deliveries(api, ids)
        left = unsettled(listed)
        if not left or time.monotonic() > deadline:
            return listed
        log(f"{left} deliveries still pending")
        time.sleep(2.0)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    started = time.monotonic()
    run_id = uuid.uuid4().hex[:8]
    options = StackOptions(
        sim_seconds=args.sim_seconds,
        webhook_retry_scale=args.webhook_retry_scale,
        duplicate_deliveries=args.duplicate_deliveries,
    )
    api_log = ApiLog()
    found = Findings()
    log(f"starting vidrelay local in {workdir}")
    with local_stack(workdir, options) as stack:
        receiver = FlakyReceiver(str(stack.info["webhook_secret"]), seed=args.seed).start()
        api = Api(stack.api_url, str(stack.info["api_key"]), api_log)
        try:
            models = catalog(api)
            jobs = shuffled(plan(run_id, models, args.jobs), args.seed)
            creator = Creator(
                stack.api_url, str(stack.info["api_key"]), stack.simulator_url, api_log, run_id, receiver.url
            )
            log(f"creating {len(jobs)} jobs over {len(models)} models with {args.clients} clients")
            with ThreadPoolExecutor(max_workers=args.clients) as pool:
                created: list[Created] = list(pool.map(creator.create, jobs))
            ids = {c.video["id"] for c in created if c.video is not None}
            log(f"{len(ids)} created in {time.monotonic() - started:.0f} s; waiting until every job is terminal")
            wait_until_terminal(api, ids, args.timeout)
            # The Video objects themselves, one GET each: the list's answer is not what is checked.
            final = {}
            for video_id in sorted(ids):
                response = api.call("GET", f"/videos/{video_id}")
                if response.status_code == 200:
                    final[video_id] = response.json()
            log("every job terminal; waiting until every delivery is settled")
            deliveries = settle_deliveries(api, sorted(ids), args.settle_timeout)
            received = receiver.snapshot()
            tasks = list(httpx.get(f"{stack.simulator_url}/_sim/tasks", timeout=60).json())
            check_outcomes(created, final, found)
            check_submissions(created, tasks, found)
            log("checking the stored MP4s")
            objects = check_objects(api, final, stored_keys(stack), found)
            check_terminal_events(final, received, found)
            compared = check_ledger(deliveries, received, found)
            found.counters["bad_signatures"] += receiver.bad_signatures
            stack_errors = _log_errors(stack.log_path)
            log("checked; stopping the local stack")
        finally:
            receiver.stop()
            api.close()
    found.counters["api_5xx"] += sum(n for status, n in api_log.statuses.items() if status >= 500)
    found.counters["api_transport_errors"] += len(api_log.transport_errors)
    found.details["api_5xx"] = api_log.server_errors[:20]
    found.details["api_transport_errors"] = api_log.transport_errors[:20]
    requests = [r for listed in received.values() for r in listed]
    answers = Counter("dropped" if r.answer is None else str(r.answer) for r in requests)
    terminal = sum(1 for v in final.values() if v.get("status") in ("completed", "failed", "expired", "canceled"))
    report: dict[str, Any] = {
        "created": len(ids),
        "terminal": terminal,
        **{name: found.counters[name] for name in FAILURE_COUNTERS},
        "duration_s": round(time.monotonic() - started, 1),
        "figures": {
            "jobs_planned": len(jobs),
            "models": {m.id: sum(1 for j in jobs if j.model == m) for m in models},
            "outcomes": dict(Counter(v.get("status") for v in final.values())),
            "faults": dict(Counter(j.fault.name for j in jobs if j.fault.name != "none")),
            "replays": dict(Counter(j.replay for j in jobs if j.replay != "none")),
            "create_seconds": _spread(api_log.create_seconds),
            "upstream_tasks": len(tasks),
            "s3": objects,
            "webhook_requests": len(requests),
            "webhook_answers": dict(answers),
            "deliveries_compared": compared,
            "api_statuses": {str(k): v for k, v in sorted(api_log.statuses.items())},
            "stack_log_errors": stack_errors,
        },
        "settings": {
            "jobs": args.jobs,
            "clients": args.clients,
            "sim_seconds": args.sim_seconds,
            "webhook_retry_scale": args.webhook_retry_scale,
            "duplicate_deliveries": args.duplicate_deliveries,
            "receiver_failure_rate": receiver.failure_rate,
            "receiver_max_failures_in_a_row": receiver.max_failures_in_a_row,
            "retry_budget_s": options.retry_budget_s,
            "seed": args.seed,
        },
        "details": {name: found.details[name] for name in FAILURE_COUNTERS if found.details.get(name)},
    }
    return report


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "p50": round(ordered[len(ordered) // 2], 2),
        "p95": round(ordered[int(len(ordered) * 0.95)], 2),
        "max": round(ordered[-1], 2),
    }


def _log_errors(path: Path) -> int:
    """Error lines in the stack's log (ERROR records, tracebacks): a figure to look into, not a verdict."""
    text = path.read_text(errors="replace")
    return text.count('"level":"ERROR"') + text.count("Traceback (most recent call last)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m vidrelay.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=300, help="how many jobs (default 300)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent API clients (default 16)")
    parser.add_argument("--sim-seconds", type=float, default=2.0, help="how long a simulated generation takes")
    parser.add_argument("--webhook-retry-scale", type=float, default=0.001, help="the webhook schedule's scale")
    parser.add_argument("--duplicate-deliveries", type=float, default=0.1, help="share of SQS messages sent twice")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds to wait for every job to end")
    parser.add_argument("--settle-timeout", type=float, default=300.0, help="seconds to wait for the deliveries")
    parser.add_argument("--seed", type=int, default=7, help="the order, the receiver's answers")
    parser.add_argument("--workdir", type=Path, help="keep the local stack's state and log here")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.clients < 1:
        parser.error("--jobs and --clients must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vidrelay-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report = run(args, workdir)
    failures = sum(report[name] for name in FAILURE_COUNTERS)
    print(json.dumps(report, indent=2))
    if failures:
        log(f"{failures} failures; the stack's log is kept in {workdir}")
    elif args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
