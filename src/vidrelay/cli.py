"""The `vidrelay` command: local stack, simulator, submitting and listing jobs, and a webhook listener."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from vidrelay import keys as keys_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vidrelay", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    local = sub.add_parser("local", help="serve the whole stack on this machine (moto, simulator, functions)")
    local.add_argument("--port", type=int, default=8787)
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
        type=_share,
        default=0.0,
        metavar="RATE",
        help="deliver this share of SQS messages twice, as SQS may (0..1; for testing idempotent consumers)",
    )

    sim = sub.add_parser("simulator", help="serve only the upstream simulator (all three dialects)")
    sim.add_argument("--port", type=int, default=8790)
    sim.add_argument("--cdn-port", type=int, default=0, help="port of the CDN host (default: any free port)")
    sim.add_argument("--sim-seconds", type=float, default=4.0, help="how long a simulated generation takes")
    sim.add_argument(
        "--content-400-window",
        type=float,
        default=3.0,
        help="seconds after completion during which Veo's /content answers 400 (seed 003)",
    )

    submit = sub.add_parser("submit", help="create a video job")
    _endpoint_args(submit)
    submit.add_argument("--model", required=True)
    submit.add_argument("--prompt", required=True)
    submit.add_argument("--seconds")
    submit.add_argument("--size")
    submit.add_argument("--image", type=Path, help="an input_reference image (image-to-video)")
    submit.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an upstream field under its seed name, e.g. duration=8, resolution=1080p, aspect_ratio=9:16",
    )
    submit.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="FIELD=PATH",
        help="a reference file, e.g. files=cat.png (repeat: upload order is @IMG_n order), first_frame_image=a.jpg",
    )
    submit.add_argument("--webhook-url")
    submit.add_argument("--wait", action="store_true", help="show progress and download the MP4")
    submit.add_argument("--out", type=Path, default=Path("out"))

    jobs = sub.add_parser("jobs", help="list your video jobs")
    _endpoint_args(jobs)
    jobs.add_argument("--limit", type=int, default=20)

    keys_parser.add_parser(sub)
    listen = sub.add_parser("listen", help="receive webhooks locally, verify their signatures, print them")
    listen.add_argument("--port", type=int, default=8788)
    listen.add_argument("--secret", help="whsec_ secret (default: the local stack's)")

    args = parser.parse_args(argv)
    return int(_COMMANDS[args.command](args) or 0)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 1")
    return value


def _endpoint_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-url", help="default: $VIDRELAY_API_URL or the running local stack")
    parser.add_argument("--api-key", help="default: $VIDRELAY_API_KEY or the running local stack")


def _wait_for_signal() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


def _local(args: argparse.Namespace) -> int:
    from vidrelay.local.stack import LocalOptions, LocalStack, PortInUse

    stack = LocalStack(
        LocalOptions(
            port=args.port,
            sim_seconds=args.sim_seconds,
            strict_urls=args.strict_urls,
            webhook_retry_scale=args.webhook_retry_scale,
            rate_per_minute=args.rate_per_minute,
            intake_settle_s=args.intake_settle_seconds,
            duplicate_delivery_rate=args.duplicate_deliveries,
        )
    )
    try:
        info = stack.start()
    except PortInUse as exc:
        print(f"vidrelay local: {exc}", file=sys.stderr)
        return 2
    print(f"vidrelay local is serving {info['api_url']}")
    print(f"  API key:        {info['api_key']}")
    print(f"  webhook secret: {info['webhook_secret']}")
    print(f"  AWS endpoint:   {info['aws_endpoint_url']}  (results bucket {info['results_bucket']})")
    print(f"  intake bucket:  {info['intake_bucket']}  (upload to inbox/{info['tenant']}/)")
    print(f"  simulator:      {info['simulator_url']}")
    print("  state:          .vidrelay/local.json   (Ctrl-C to stop)", flush=True)
    try:
        _wait_for_signal()
    finally:
        stack.stop()
    return 0


def _simulator(args: argparse.Namespace) -> int:
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
        _wait_for_signal()
    finally:
        simulator.stop()
    return 0


def _pair(item: str, option: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise SystemExit(f"{option} takes NAME=VALUE, got {item!r}")
    return name, value


def _submit(args: argparse.Namespace) -> int:
    from vidrelay.client import ApiError, Client, Endpoint

    client = Client(Endpoint.discover(args.api_url, args.api_key))
    try:
        video = client.create(
            model=args.model,
            prompt=args.prompt,
            seconds=args.seconds,
            size=args.size,
            image=args.image,
            webhook_url=args.webhook_url,
            extra=dict(_pair(item, "--field") for item in args.field),
            files=[(name, Path(path)) for name, path in (_pair(item, "--file") for item in args.file)],
        )
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{video['id']}  {video['status']}  {video['model']}  est. ${video['cost']['estimated_usd']:.2f}")
    if not args.wait:
        return 0
    video = wait_with_progress(client, video)
    if video["status"] != "completed":
        print(f"failed: {json.dumps(video.get('error'))}", file=sys.stderr)
        return 1
    path = client.download(video["id"], args.out / f"{video['id']}.mp4")
    out = video["output"]
    print(
        f"saved {path}  ({out['bytes']} bytes, {out['width']}x{out['height']}, {out['duration_s']:.1f} s, "
        f"sha256 {out['sha256'][:12]}…)"
    )
    return 0


def wait_with_progress(client: Any, video: dict[str, Any], *, label: str | None = None) -> dict[str, Any]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    ) as progress:
        task = progress.add_task(label or video["id"], total=100, status=video["status"])

        def update(current: dict[str, Any]) -> None:
            progress.update(task, completed=current.get("progress") or 0, status=current["status"])

        return dict(client.wait(video["id"], on_progress=update))


def _jobs(args: argparse.Namespace) -> int:
    from vidrelay.client import Client, Endpoint

    client = Client(Endpoint.discover(args.api_url, args.api_key))
    for video in client.list(limit=args.limit)["data"]:
        print(
            f"{video['id']}  {video['status']:<11} {video['progress']:>3}%  {video['model']:<12} "
            f"{video['seconds']}s {video['size']}  {video['prompt'][:40]!r}"
        )
    return 0


def _listen(args: argparse.Namespace) -> int:
    from vidrelay.receiver import Received, Receiver

    secret = args.secret
    state = Path(".vidrelay/local.json")
    if secret is None and state.exists():
        secret = json.loads(state.read_text()).get("webhook_secret")

    def show(received: Received) -> None:
        event = received.event
        mark = "verified" if received.verified else "UNVERIFIED"
        print(
            f"{event.get('type'):<18} {event.get('data', {}).get('id')}  attempt {received.attempt}  "
            f"{received.headers.get('webhook-id')}  {mark}",
            flush=True,
        )

    def rejected(headers: dict[str, str]) -> None:
        print(f"{'REJECTED':<18} bad or stale signature  {headers.get('webhook-id')}  (answered 401)", flush=True)

    receiver = Receiver(port=args.port, secret=secret, on_event=show, on_rejected=rejected).start()
    print(
        f"listening on {receiver.url} ({'verifying signatures' if secret else 'NOT verifying: no secret'})",
        flush=True,
    )
    try:
        _wait_for_signal()
    finally:
        receiver.stop()
    return 0


_COMMANDS = {
    "local": _local,
    "simulator": _simulator,
    "submit": _submit,
    "jobs": _jobs,
    "listen": _listen,
    "keys": keys_parser.run,
}

if __name__ == "__main__":
    sys.exit(main())
