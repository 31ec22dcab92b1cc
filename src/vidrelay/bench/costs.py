"""Cost per 1,000 jobs and the idle month, priced from the calls a run of the local stack made (calls.py)."""

from __future__ import annotations

import functools
import math
import operator
from collections import Counter
from typing import Any

from .calls import EMPTY_RECEIVE, Invocation, Snapshot
from .pricing import API_FUNCTION, CLOUD_ANSWER_S, ONE_VCPU_MB, lambda_gb_seconds, lambda_seconds, price, prices, scaled

MONTH_S = 30 * 24 * 3600
POLLER = "PollerFunction"
NOTIFIER = "NotifierFunction"
DEFAULT_MEMORY_MB = 256
# Lambda's SQS event source mapping long-polls each queue with at least five pollers, each ReceiveMessage
# waiting up to 20 s when the queue is empty: 5 x 3 receives a minute per mapping, whatever the load.
ESM_MIN_POLLERS = 5
ESM_WAIT_S = 20
# The modelled cloud job: sora-2 generating for 90 s, polled every 15 s (the catalog's interval).
CLOUD_GENERATION_S = 90.0
CLOUD_POLL_S = 15.0
# The poller's Lambda time per check in the cloud: one upstream round trip of 200 ms (the sweep figure's
# latency), as if no other check shared the invocation (an upper bound: 160 checks run side by side).
CLOUD_CHECK_S = 0.2
# What the local run cannot show: the far end's answer time in the cloud (the local simulator and receiver
# answer in milliseconds). Each is taken to be one such round trip: the api's submit upstream, the downloader's
# content request (a few MB of sora-2 MP4 move in well under it at S3's and CDNs' rates) and each webhook POST.
CLOUD_ROUND_TRIP_S = CLOUD_CHECK_S
DOWNLOADER = "DownloaderFunction"
TARGET_PER_1000_USD = 0.05
TARGET_IDLE_USD = 1.50
TARGET_IDLE_POLLER_USD = 0.10


def per_job(usage: Snapshot, jobs: int) -> Snapshot:
    """The run's usage without the bench's own calls and without empty receives (priced as the floor)."""
    kept = usage.only(lambda who: who != "bench")
    kept.requests = Counter({k: v for k, v in kept.requests.items() if k[2] != EMPTY_RECEIVE})
    return kept


def requests_of(usage: Snapshot, keep: Any) -> dict[str, int]:
    table: dict[str, int] = {}
    for (who, service, operation), n in usage.requests.items():
        if keep(who, service, operation):
            table[f"{service}.{operation}"] = table.get(f"{service}.{operation}", 0) + n
    return dict(sorted(table.items()))


def subtract_rate(usage: Snapshot, idle: Snapshot, idle_s: float, seconds: float, who: str) -> Snapshot:
    """`who`'s usage in a run minus what it would have made idle for as long (the local poller runs back to
    back, so a run's poller calls hold idle sweeps too)."""
    factor = seconds / idle_s if idle_s > 0 else 0.0
    requests = Counter(
        {
            k: max(0.0, v - idle.requests.get(k, 0) * factor)
            for k, v in usage.requests.items()
            if k[0] == who and k[2] != EMPTY_RECEIVE
        }
    )
    units = Counter({k: max(0.0, v - idle.units.get(k, 0) * factor) for k, v in usage.units.items() if k[0] == who})
    return Snapshot(requests=requests, units=units, items_read=Counter(), invocations={})


def gb_seconds(seconds: float, function: str, memory_mb: dict[str, int]) -> float:
    """Lambda GB-s of `seconds` of `function` at its MemorySize in the template (DEFAULT_MEMORY_MB if unsized)."""
    return seconds * memory_mb.get(function, DEFAULT_MEMORY_MB) / 1024


def cost_per_1000(jobs_run: dict[str, Any], idle: dict[str, Any], memory_mb: dict[str, int]) -> dict[str, Any]:
    jobs = jobs_run["jobs"]
    usage: Snapshot = per_job(jobs_run["usage"], jobs)
    local = scaled(price(usage), 1000 / jobs)
    local_events = sum(jobs_run["events_received"].values()) / jobs
    local_polls = jobs_run["upstream_polls"] / jobs

    # Per step, from the same counts: what an upstream poll costs the poller (its idle sweeps taken out), what
    # an event costs (its SNS publish, the webhook queue's receive and delete, the notifier), the rest per job.
    poller_checks = subtract_rate(jobs_run["usage"], idle["usage"], idle["seconds"], jobs_run["seconds"], POLLER)
    poller_checks.requests = Counter({k: v for k, v in poller_checks.requests.items() if k[1] != "sns"})
    event_side = usage.only(lambda who: who in (NOTIFIER, f"event_source_mapping:{NOTIFIER}"))
    publishes = Counter({k: v for k, v in usage.requests.items() if k[1] == "sns" and k[2] == "Publish"})
    event_side.requests.update(publishes)
    rest = usage.only(lambda who: who not in (POLLER, NOTIFIER, f"event_source_mapping:{NOTIFIER}"))
    rest.requests = Counter({k: v for k, v in rest.requests.items() if not (k[1] == "sns" and k[2] == "Publish")})

    per_poll = price(poller_checks)["total_usd"] / max(1, jobs_run["upstream_polls"])
    per_event = price(event_side)["total_usd"] / max(1.0, local_events * jobs)
    per_rest = price(rest)["total_usd"] / jobs
    cloud_polls = math.ceil(CLOUD_GENERATION_S / CLOUD_POLL_S)
    # Every poll of a running sora-2 job moves its progress, and polls are more than 5 s apart: each one is a
    # video.in_progress event (lifecycle.PROGRESS_EVENT_EVERY_S), plus video.queued and video.completed.
    cloud_events = cloud_polls - 1 + 2
    gb_s_rate = prices()["lambda"]["arm64_gb_second_usd"]
    poller_lambda = gb_seconds(cloud_polls * CLOUD_CHECK_S, POLLER, memory_mb) * gb_s_rate
    # One far-end round trip for the api's submit and the downloader's content request, one per webhook.
    round_trips_of = {API_FUNCTION: 1, DOWNLOADER: 1, NOTIFIER: cloud_events}
    round_trips = gb_s_rate * sum(
        gb_seconds(n * CLOUD_ROUND_TRIP_S, function, memory_mb) for function, n in round_trips_of.items()
    )
    cloud_job = per_rest + cloud_polls * per_poll + cloud_events * per_event + poller_lambda + round_trips
    return {
        "method": (
            f"{jobs} jobs of the webhook latency run (each with a webhook_url), every AWS request counted by "
            "botocore's before-send hook (one per HTTP attempt) and attributed to the function whose invocation "
            "made it (thread pools carry the invocation's context); Lambda requests from the invocations; GB-s "
            "from each function's CPU time (its invocation threads, their pool threads and worker processes) "
            f"stretched to its MemorySize's CPU share (one vCPU at {ONE_VCPU_MB} MB) plus the cloud's answer time "
            "per AWS request ("
            + ", ".join(f"{service} {seconds * 1000:.0f} ms" for service, seconds in CLOUD_ANSWER_S.items())
            + "), times the MemorySize (pricing.lambda_seconds): the local wall time holds moto's slow answers "
            "and the wait for a shared core, not the relay's work (lambda_as_measured_usd prices it as it was); "
            "API Gateway = the api's invocations; DynamoDB "
            "request units from the items read and written (calls.py); priced from src/vidrelay/prices.json. "
            "local_pattern = the run as counted (the local poller runs back to back, every 0.1 s). "
            f"cloud_sora2 = the same counts per step: {cloud_polls} upstream polls (a {CLOUD_GENERATION_S:.0f} s "
            f"generation polled every {CLOUD_POLL_S:.0f} s) x the poller's cost per poll (its calls in the run "
            "minus its idle-rate calls, per upstream poll the simulator logged), "
            f"{cloud_events} events (queued, one in_progress per running poll, completed) x the cost per event "
            "(SNS publish + the webhook queue's event source mapping + the notifier, per event received), the "
            "rest (api, downloader, thumbnailer, their queues) per job as counted, plus the poller's Lambda time "
            f"at {CLOUD_CHECK_S} s per check and the far ends' answer time, {CLOUD_ROUND_TRIP_S} s each, as Lambda "
            "time of the api (its submit), the downloader (the content request) and the notifier (each webhook). "
            "The empty receives are the idle month's SQS floor, not a job's."
        ),
        "jobs_counted": jobs,
        "local_pattern": {
            "usd_per_1000_jobs": round(local["total_usd"], 4),
            "by_caller_usd": local["by_caller_usd"],
            "by_service_usd": local["by_service_usd"],
            "requests_per_job": {
                who: {op: round(n / jobs, 2) for op, n in ops.items()} for who, ops in usage.by_caller().items()
            },
            "dynamodb_units_per_job": {
                f"{who}.{kind}": round(v / jobs, 2) for (who, kind), v in sorted(usage.units.items())
            },
            "lambda_as_measured_usd": local["lambda_as_measured_usd"],
            "lambda_per_job": {
                fn: {
                    "invocations": round(r.count / jobs, 2),
                    "gb_s_cloud": round(lambda_gb_seconds(usage, fn) / jobs, 4),
                    "gb_s_as_measured": round(r.gb_seconds / jobs, 4),
                    "cpu_s": round(usage.cpu_seconds.get(fn, 0.0) / jobs, 4),
                    "moto_wait_s": round(sum(v for (who, _), v in usage.aws_seconds.items() if who == fn) / jobs, 3),
                }
                for fn, r in sorted(usage.invocations.items())
            },
            "upstream_polls_per_job": round(local_polls, 2),
            "events_per_job": round(local_events, 2),
        },
        "cloud_sora2": {
            "usd_per_1000_jobs": round(cloud_job * 1000, 4),
            "polls": cloud_polls,
            "events": cloud_events,
            "usd_per_1000": {
                "per_poll_x_polls": round(cloud_polls * per_poll * 1000, 4),
                "per_event_x_events": round(cloud_events * per_event * 1000, 4),
                "rest_per_job": round(per_rest * 1000, 4),
                "poller_lambda": round(poller_lambda * 1000, 4),
                "far_end_round_trips": round(round_trips * 1000, 4),
            },
        },
        "target_usd_per_1000": TARGET_PER_1000_USD,
        "verdict": verdict(cloud_job * 1000 <= TARGET_PER_1000_USD and local["total_usd"] <= TARGET_PER_1000_USD),
    }


def esm_floor(template: Any) -> dict[str, Any]:
    """The SQS requests Lambda's event source mappings make on empty queues in a month."""
    per_mapping = ESM_MIN_POLLERS * (60 / ESM_WAIT_S) * MONTH_S / 60
    rate = prices()["sqs"]["standard_request_usd"]
    mappings = {
        f"{fn.logical_id}:{event.queue}": round(per_mapping * rate, 4)
        for fn in template.functions()
        for event in fn.events
        if event.kind == "sqs"
    }
    return {
        "assumption": (
            f"each SQS event source mapping keeps {ESM_MIN_POLLERS} pollers long-polling (WaitTimeSeconds "
            f"{ESM_WAIT_S}) while its queue is empty: {per_mapping:,.0f} ReceiveMessage requests a month per "
            "mapping, at the SQS request price"
        ),
        "receives_per_mapping_month": int(per_mapping),
        "by_mapping_usd": mappings,
        "total_usd": round(sum(mappings.values()), 4),
    }


def idle_month(idle: dict[str, Any], template: Any, memory_mb: dict[str, int]) -> dict[str, Any]:
    usage: Snapshot = idle["usage"]
    seconds: float = idle["seconds"]
    functions = usage.only(lambda who: not who.startswith("event_source_mapping:") and who != "bench")
    scheduled = {fn.logical_id: fn for fn in template.functions() if any(e.kind == "schedule" for e in fn.events)}
    breakdown: dict[str, Any] = {}
    total = 0.0
    for name in scheduled:
        record: Invocation | None = functions.invocations.get(name)
        if record is None or record.count == 0:
            continue
        own = functions.only(functools.partial(operator.eq, name))
        # The cloud runs it once a minute (rate(1 minute)); an idle invocation does what a local one did.
        cloud_invocations = MONTH_S / 60
        per_invocation = price(Snapshot(own.requests, own.units, own.items_read, {}))["total_usd"] / record.count
        calls = {op: round(n / record.count, 2) for op, n in own.by_caller().get(name, {}).items()}
        median_s = sorted(record.durations)[len(record.durations) // 2]
        # As the cloud bills it: CPU time and the cloud's answer times, not moto's (pricing.lambda_seconds).
        cloud_s = lambda_seconds(own, name) / record.count
        gb_s = gb_seconds(cloud_s, name, memory_mb)
        lambda_usd = cloud_invocations * (
            gb_s * prices()["lambda"]["arm64_gb_second_usd"] + prices()["lambda"]["request_usd"]
        )
        calls_usd = cloud_invocations * per_invocation
        breakdown[name] = {
            "local_invocations": record.count,
            "calls_per_invocation": calls,
            "median_invocation_s": round(median_s, 4),
            "cloud_invocation_s": round(cloud_s, 4),
            "cloud_invocations_month": int(cloud_invocations),
            "lambda_usd": round(lambda_usd, 4),
            "aws_calls_usd": round(calls_usd, 4),
            "usd": round(lambda_usd + calls_usd, 4),
        }
        total += lambda_usd + calls_usd
    other = functions.only(lambda who: who not in scheduled)
    other_usd = price(other)["total_usd"] * MONTH_S / seconds if seconds else 0.0
    floor = esm_floor(template)
    total_all = total + other_usd + floor["total_usd"]
    poller_usd = breakdown.get(POLLER, {}).get("usd", 0.0)
    return {
        "method": (
            f"The local stack left idle for {seconds:.0f} s after warming up; every request and invocation counted. "
            "Each scheduled function: the calls and the duration of one idle invocation (its mean as the cloud "
            "would bill it: CPU time and the cloud's answer times, pricing.lambda_seconds), times one "
            "invocation a minute for 30 days (the template's rate(1 minute); locally it runs back to back). "
            "Calls of any other function while idle are extrapolated from the window. The SQS floor is modelled "
            "(the local router's 1 s receives are not Lambda's): see sqs_polling_floor.assumption. EventBridge "
            "scheduled rules cost nothing."
        ),
        "idle_window_s": round(seconds, 1),
        "scheduled_functions": breakdown,
        "other_functions_usd": round(other_usd, 4),
        "other_functions_calls": other.by_caller(),
        "sqs_polling_floor": floor,
        "total_usd_month": round(total_all, 4),
        "poller_usd_month": round(poller_usd, 4),
        "target_usd_month": TARGET_IDLE_USD,
        "target_poller_usd_month": TARGET_IDLE_POLLER_USD,
        "verdict": verdict(total_all <= TARGET_IDLE_USD and poller_usd <= TARGET_IDLE_POLLER_USD),
    }


def verdict(ok: bool) -> str:
    return "meets target" if ok else "misses target"
