"""The figures of one counted local stack run, in the report's shape, each with its verdict."""

from __future__ import annotations

from typing import Any

from . import log
from .calls import CallCounter
from .costs import cost_per_1000, idle_month, verdict
from .stackrun import THROUGHPUT_METHOD, counted_stack, measure_drain, measure_idle, measure_jobs, measure_throughput

LATENCY_TARGET_P50_MS = 1000.0
LATENCY_TARGET_P99_MS = 3000.0
DRAIN_TARGET_P99_S = 60.0


def bench_stack(
    *,
    jobs: int,
    idle_s: float,
    throughput_events: int,
    drain_jobs: int,
    drain_clients: int = 16,
) -> dict[str, Any]:
    from vidrelay.local.stack import project_root
    from vidrelay.local.template import Template

    template = Template.load(project_root() / "template.yaml")
    memory = {fn.logical_id: fn.memory_mb for fn in template.functions()}
    counter = CallCounter()
    figures: dict[str, Any] = {}
    with counted_stack(counter) as session:
        log(f"idle: counting {idle_s:.0f} s")
        idle = measure_idle(session, idle_s)
        log(f"jobs: {jobs} jobs with webhooks")
        run = measure_jobs(session, jobs)
        latency = run["latency"]
        latency["target"] = {"p50_ms": LATENCY_TARGET_P50_MS, "p99_ms": LATENCY_TARGET_P99_MS}
        latency["verdict"] = verdict(
            latency.get("count", 0) == jobs
            and latency.get("p50_ms", 1e9) <= LATENCY_TARGET_P50_MS
            and latency.get("p99_ms", 1e9) <= LATENCY_TARGET_P99_MS
        )
        figures["webhook_latency"] = latency
        figures["cost_per_1000_jobs"] = cost_per_1000(run, idle, memory)
        figures["idle_month"] = idle_month(idle, template, memory)
        if throughput_events > 0:
            log(f"delivery throughput: {throughput_events} events, receiver 2xx")
            ok = measure_throughput(session, throughput_events, fail_half=False, timeout_s=120)
            log(f"delivery throughput: {throughput_events} events, receiver failing half")
            half = measure_throughput(session, throughput_events, fail_half=True, timeout_s=120)
            figures["delivery_throughput"] = {
                "method": THROUGHPUT_METHOD,
                "receiver_2xx": ok,
                "receiver_failing_half": half,
                "target": "no SPEC §11 number; the drain below is its consequence (every terminal event within "
                "60 s of its job completing, p99)",
                "verdict": "measured (no numeric target)",
            }
        if drain_jobs > 0:
            log(f"drain: {drain_jobs} jobs")
            drain = measure_drain(session, drain_jobs, drain_clients, timeout_s=900)
            drain["target_p99_s"] = DRAIN_TARGET_P99_S
            drain["verdict"] = verdict(
                drain["missing"] == 0
                and not drain["creates_failed"]
                and (drain["lag_p99_s"] or 1e9) <= DRAIN_TARGET_P99_S
            )
            figures["drain"] = drain
    return figures
