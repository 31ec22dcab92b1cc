"""`vidrelay local` (the whole stack on this machine) and `vidrelay simulator` (the upstream simulator alone)."""

from __future__ import annotations

import argparse
import faulthandler
import signal
import sys
import time
from typing import Any

from vidrelay.failures import USAGE, CliError

# How long a clean stop may take, interpreter exit included, before the process reports itself stuck and ends.
STOP_GRACE_S = 30.0


def register(sub: Any) -> None:
    from vidrelay.commands.parsing import command

    local = command(sub, "local", "serve the whole stack on this machine (moto, simulator, functions)")
    local.add_argument("--port", type=int, default=8787, help="port of the API")
    local.add_argument("--sim-seconds", type=float, default=4.0, help="how long a simulated generation takes")
    local.add_argument("--strict-urls", action="store_true", help="apply the cloud's SSRF rules to URLs")
    local.add_argument(
        "--webhook-retry-scale",
        type=float,
        default=1.0,
        help="multiply every webhook retry delay (0.001 makes hours into seconds)",
    )
    local.add_argument(
        "--rate-per-minute",
        type=int,
        default=60,
        help="job creations per tenant per minute unless a tenant has its own (0: no limit)",
    )
    local.add_argument(
        "--intake-settle-seconds",
        type=float,
        default=5.0,
        help="how long an intake sidecar without its image waits for it",
    )
    local.add_argument(
        "--duplicate-deliveries",
        type=share,
        default=0.0,
        metavar="RATE",
        help="deliver this share of SQS messages twice, as SQS may (0..1; for testing idempotent consumers)",
    )
    local.add_argument(
        "--verbose",
        action="store_true",
        help="print the functions' Powertools JSON logs (INFO) and metrics instead of one line per job step",
    )
    local.set_defaults(run=run_local)

    sim = command(sub, "simulator", "serve only the upstream simulator (all three dialects)")
    sim.add_argument("--port", type=int, default=8790, help="port of the simulated upstream API")
    sim.add_argument("--cdn-port", type=int, default=0, help="port of the CDN host (0: any free port)")
    sim.add_argument("--sim-seconds", type=float, default=4.0, help="how long a simulated generation takes")
    sim.add_argument(
        "--content-400-window",
        type=float,
        default=3.0,
        help="seconds after completion during which Veo's /content answers 400 (seed 003)",
    )
    sim.set_defaults(run=run_simulator)


def share(text: str) -> float:
    """A share between 0 and 1 (argparse's type)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 1")
    return value


def wait_for_signal() -> None:
    """Until Ctrl-C (SIGINT) or SIGTERM: both are a clean stop."""
    # A plain flag, not a threading.Event: Event.set() from a handler takes the lock Event.wait() may hold in the
    # interrupted main thread, and the stop then hangs before it starts (seen as a SIGTERM that never stopped).
    signalled: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _: signalled.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, _: signalled.append(signum))
    while not signalled:
        time.sleep(0.2)


def end_within(grace_s: float) -> None:
    """From now on the process ends within `grace_s`: a stop that hangs (a thread blocked in a call that the
    interpreter waits for at exit, say) prints every thread's stack to stderr and exits with status 1, instead of
    holding the terminal or a supervisor's restart. Never cancelled: it covers the interpreter's exit too."""
    faulthandler.dump_traceback_later(grace_s, exit=True)


def run_local(args: argparse.Namespace) -> int:
    from vidrelay.local.allocator import with_template_allocator
    from vidrelay.local.console import WholeLines
    from vidrelay.local.stack import LocalOptions, LocalStack, PortInUse

    with_template_allocator()  # all functions run in this process: with the deployed allocator setting
    sys.stdout = WholeLines(sys.stdout)

    stack = LocalStack(
        LocalOptions(
            port=args.port,
            sim_seconds=args.sim_seconds,
            strict_urls=args.strict_urls,
            webhook_retry_scale=args.webhook_retry_scale,
            rate_per_minute=args.rate_per_minute,
            intake_settle_s=args.intake_settle_seconds,
            duplicate_delivery_rate=args.duplicate_deliveries,
            verbose=args.verbose,
            on_job_step=None if args.verbose else lambda line: print(line, flush=True),
        )
    )
    try:
        info = stack.start()
    except PortInUse as exc:
        raise CliError(str(exc), USAGE) from exc
    print(f"vidrelay local is serving {info['api_url']}")
    print(f"  API key:        {info['api_key']}")
    print(f"  webhook secret: {info['webhook_secret']}")
    print(f"  AWS endpoint:   {info['aws_endpoint_url']}  (results bucket {info['results_bucket']})")
    print(f"  intake bucket:  {info['intake_bucket']}  (upload to inbox/{info['tenant']}/)")
    print(f"  simulator:      {info['simulator_url']}")
    print(f"  state:          {stack.state_path}   (Ctrl-C to stop)", flush=True)
    try:
        wait_for_signal()
        print("stopping…", flush=True)
    finally:
        end_within(STOP_GRACE_S)
        stack.stop()
    print("stopped", flush=True)
    return 0


def run_simulator(args: argparse.Namespace) -> int:
    from vidrelay.simulator.server import Simulator

    simulator = Simulator(
        "127.0.0.1",
        args.port,
        args.sim_seconds,
        cdn_port=args.cdn_port,
        content_400_window=args.content_400_window,
    ).start()
    print(f"vidrelay upstream simulator (sim_seconds={args.sim_seconds}); any bearer key works")
    print(f"  API base URL: {simulator.url}/v1   (/videos, /video/generations, /chat/completions)")
    print(f"  CDN:          {simulator.cdn_url}   (signed video_url links; no key)")
    print(f"  inspect:      {simulator.url}/_sim/tasks  {simulator.url}/_sim/requests   (Ctrl-C to stop)", flush=True)
    try:
        wait_for_signal()
    finally:
        simulator.stop()
    return 0
