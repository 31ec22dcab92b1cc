"""Video commands: submit, get, wait, download, cancel, delete, jobs."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from vidrelay.failures import INTERRUPTED, TIMED_OUT, USAGE, CliError

VARIANTS = ("video", "thumbnail", "spritesheet")
IN_FLIGHT = ("queued", "in_progress")
# What a variant's file is called when no -o says otherwise (its content type decides the extension).
EXTENSIONS = {"video/mp4": ".mp4", "image/webp": ".webp", "image/jpeg": ".jpg", "image/png": ".png"}


def api_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--api-url", help="default: $VIDRELAY_API_URL, else the running local stack")
    parent.add_argument("--api-key", help="default: $VIDRELAY_API_KEY, else the local stack's key")
    return parent


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer instead of a table")


def register(sub: Any) -> None:
    from vidrelay.commands.parsing import command

    api = [api_parent()]
    submit = command(sub, "submit", "create a video job", parents=api)
    submit.add_argument("--model", required=True, help="a model of `GET /v1/models`, e.g. sora-2")
    submit.add_argument("--prompt", required=True)
    submit.add_argument("--seconds", help="default: the model's own (sora-2: 4)")
    submit.add_argument("--size", help="default: the model's own (sora-2: 720x1280)")
    submit.add_argument("--image", type=Path, help="an input_reference image (image-to-video); default: none")
    submit.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an upstream field under its seed name, e.g. duration=8, resolution=1080p, aspect_ratio=9:16 "
        "(repeatable; default: none)",
    )
    submit.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="FIELD=PATH",
        help="a reference file, e.g. files=cat.png (repeat: upload order is @IMG_n order), first_frame_image=a.jpg "
        "(default: none)",
    )
    submit.add_argument("--webhook-url", help="where to POST this job's events (default: none)")
    submit.add_argument("--wait", action="store_true", help="show progress and download the MP4")
    submit.add_argument("--timeout", type=float, default=900.0, help="with --wait: seconds to wait at most")
    submit.add_argument("--out", type=Path, default=Path("out"), help="with --wait: folder of the MP4")
    submit.set_defaults(run=run_submit)

    get = command(sub, "get", "show one video", parents=api)
    get.add_argument("video_id")
    json_option(get)
    get.set_defaults(run=run_get)

    wait = command(sub, "wait", "wait for a video to finish, with a progress bar", parents=api)
    wait.add_argument("video_id")
    wait.add_argument("--timeout", type=float, default=900.0, help="seconds to wait at most (the job goes on)")
    wait.set_defaults(run=run_wait)

    download = command(sub, "download", "save a completed video (or its thumbnail or spritesheet)", parents=api)
    download.add_argument("video_id")
    download.add_argument("--variant", choices=VARIANTS, default="video", help="which stored file")
    download.add_argument(
        "-o",
        "--output",
        help="a file, or a folder (existing, or ending in /) (default: out/<id>.mp4, out/<id>.<variant>.<ext>)",
    )
    download.set_defaults(run=run_download)

    cancel = command(sub, "cancel", "stop a queued or running video (its record and inputs are deleted)", parents=api)
    cancel.add_argument("video_id")
    cancel.set_defaults(run=run_cancel)

    delete = command(sub, "delete", "delete a video and its stored files (canceling it if still running)", parents=api)
    delete.add_argument("video_id")
    delete.set_defaults(run=run_delete)

    jobs = command(sub, "jobs", "list your video jobs, newest first", parents=api)
    jobs.add_argument("--limit", type=int, default=20, help="how many (1-100)")
    jobs.add_argument("--after", metavar="VIDEO_ID", help="the page after this video (default: the first page)")
    jobs.add_argument("--order", choices=("desc", "asc"), default="desc", help="by creation time")
    json_option(jobs)
    jobs.set_defaults(run=run_jobs)


def client_for(args: argparse.Namespace) -> Any:
    from vidrelay.client import Client, Endpoint

    return Client(Endpoint.discover(args.api_url, args.api_key))


def _pair(item: str, option: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise CliError(f"{option} takes NAME=VALUE, got {item!r}", USAGE)
    return name, value


def _readable_file(path: Path, option: str) -> Path:
    """Checked before anything is sent, so a typo costs nothing and says which option it was."""
    if not path.exists():
        raise CliError(f"{option} {path}: no such file", USAGE)
    if not path.is_file():
        raise CliError(f"{option} {path}: not a file", USAGE)
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise CliError(f"{option} {path}: {exc.strerror}", USAGE) from exc
    return path


def run_submit(args: argparse.Namespace) -> int:
    from vidrelay.console import usd

    image = _readable_file(args.image, "--image") if args.image is not None else None
    files = [(name, _readable_file(Path(path), "--file")) for name, path in (_pair(f, "--file") for f in args.file)]
    extra = dict(_pair(item, "--field") for item in args.field)
    client = client_for(args)
    video = client.create(
        model=args.model,
        prompt=args.prompt,
        seconds=args.seconds,
        size=args.size,
        image=image,
        webhook_url=args.webhook_url,
        extra=extra,
        files=files,
    )
    print(f"{video['id']}  {video['status']}  {video['model']}  est. {usd(video['cost']['estimated_usd'])}")
    if not args.wait:
        return 0
    video = _wait(client, video, args.timeout)
    if video["status"] != "completed":
        raise CliError(_failure(video))
    path = client.download(video["id"], args.out / f"{video['id']}.mp4")
    out = video["output"]
    print(
        f"saved {path}  ({out['bytes']} bytes, {out['width']}x{out['height']}, {out['duration_s']:.1f} s, "
        f"sha256 {out['sha256'][:12]}…)"
    )
    return 0


def _failure(video: dict[str, Any]) -> str:
    error = video.get("error") or {}
    return f"{video['id']} failed: {error.get('code') or 'unknown'}: {error.get('message') or 'no message'}"


def _wait(client: Any, video: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Waits with a progress bar; a timeout or Ctrl-C says the job goes on, and how to pick it up again."""
    from vidrelay.client import WaitTimedOut
    from vidrelay.console import status_of, wait_with_progress

    last = dict(video)
    try:
        return wait_with_progress(client, video, timeout_s=timeout_s, seen=last.update)
    except WaitTimedOut as exc:
        raise CliError(
            f"{video['id']} is still {status_of(exc.video)} after {timeout_s:g} s; it goes on: "
            f"`vidrelay wait {video['id']}` to keep waiting",
            TIMED_OUT,
        ) from exc
    except KeyboardInterrupt as exc:
        raise CliError(
            f"stopped waiting for {video['id']} ({status_of(last)}); it goes on: "
            f"`vidrelay wait {video['id']}` to pick it up again",
            INTERRUPTED,
        ) from exc


def run_wait(args: argparse.Namespace) -> int:
    from vidrelay.console import size_of

    client = client_for(args)
    video = _wait(client, client.retrieve(args.video_id), args.timeout)
    if video["status"] != "completed":
        raise CliError(_failure(video))
    out = video["output"]
    print(
        f"{video['id']}  completed  {out['width']}x{out['height']}  {out['duration_s']:.1f} s  "
        f"{size_of(out['bytes'])}  (`vidrelay download {video['id']}` saves it)"
    )
    return 0


def run_get(args: argparse.Namespace) -> int:
    from vidrelay.console import show, size_of, status_of, table, usd, when

    video = client_for(args).retrieve(args.video_id)
    if args.json:
        print(json.dumps(video, indent=2))
        return 0
    grid = table("FIELD", "VALUE")
    rows: list[tuple[str, str]] = [
        ("id", video["id"]),
        ("status", status_of(video)),
        ("model", f"{video['model']}  ({video.get('provider', '-')})"),
        ("prompt", video["prompt"]),
        ("seconds / size", f"{video['seconds']} s  {video['size']}"),
        ("created", when(video.get("created_at"))),
        ("completed", when(video.get("completed_at"))),
        ("expires", when(video.get("expires_at"))),
        ("cost", usd((video.get("cost") or {}).get("estimated_usd"))),
    ]
    for name, value in sorted((video.get("options") or {}).items()):
        rows.append((f"option {name}", str(value)))
    for number, ref in enumerate(video.get("references") or [], start=1):
        rows.append((f"reference {number}", f"{ref['field']}  {ref['kind']}  {ref['content_type']}"))
    output = video.get("output")
    if output:
        rows += [
            (
                "output",
                f"{output['width']}x{output['height']}  {output['duration_s']:.1f} s  {size_of(output['bytes'])}",
            ),
            ("sha256", output["sha256"]),
            ("stored at", output.get("s3_uri") or "-"),
        ]
    error = video.get("error")
    if error:
        rows.append(("error", f"{error.get('code')}: {error.get('message')}"))
    webhook = video.get("webhook")
    if webhook:
        rows.append(("webhook", f"{webhook['url']}  ({', '.join(webhook.get('events') or []) or 'every event'})"))
    for name, value in sorted((video.get("metadata") or {}).items()):
        rows.append((f"metadata {name}", value))
    for row in rows:
        grid.add_row(*row)
    show(grid)
    return 0


def default_download_path(video_id: str, variant: str, content_type: str) -> Path:
    extension = EXTENSIONS.get(content_type.split(";")[0].strip().lower(), ".bin")
    name = f"{video_id}{extension}" if variant == "video" else f"{video_id}.{variant}{extension}"
    return Path("out") / name


def run_download(args: argparse.Namespace) -> int:
    from vidrelay.console import progress_bar, size_of

    def target(content_type: str) -> Path:
        default = default_download_path(args.video_id, args.variant, content_type)
        if args.output is None:
            return default
        output = Path(args.output)
        return output / default.name if output.is_dir() or args.output.endswith(("/", os.sep)) else output

    client = client_for(args)
    with progress_bar(f"{args.video_id} {args.variant}", total=None, transfer=True) as update:
        path = client.download(
            args.video_id,
            target,
            variant=args.variant,
            on_bytes=lambda done, total: update(completed=done, total=total),
        )
    print(f"saved {path}  ({size_of(path.stat().st_size)})")
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    from vidrelay.console import status_of

    client = client_for(args)
    video = client.retrieve(args.video_id)
    if video["status"] not in IN_FLIGHT:
        raise CliError(
            f"{video['id']} is {status_of(video)}: nothing to cancel (`vidrelay delete {video['id']}` deletes it)"
        )
    client.delete(video["id"])
    print(f"canceled {video['id']} while {status_of(video)}; it is deleted and will not be fetched")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    from vidrelay.console import status_of

    client = client_for(args)
    video = client.retrieve(args.video_id)
    client.delete(video["id"])
    if video["status"] in IN_FLIGHT:
        print(f"canceled {video['id']} while {status_of(video)}, and deleted it")
    else:
        stored = " and its stored MP4" if video.get("output") else ""
        print(f"deleted {video['id']} ({status_of(video)}){stored}")
    return 0


def run_jobs(args: argparse.Namespace) -> int:
    from vidrelay.console import show, status_of, table, usd, when

    if not 1 <= args.limit <= 100:
        raise CliError(f"--limit {args.limit}: from 1 to 100", USAGE)
    page = client_for(args).list_videos(limit=args.limit, after=args.after, order=args.order)
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    grid = table("ID", "CREATED (UTC)", "STATUS", "MODEL", "SIZE", "SECONDS", "COST", "PROMPT", wide=("PROMPT",))
    for video in page["data"]:
        grid.add_row(
            video["id"],
            when(video.get("created_at")),
            status_of(video),
            video["model"],
            video["size"],
            video["seconds"],
            usd((video.get("cost") or {}).get("estimated_usd")),
            video["prompt"],
        )
    if page["data"]:
        show(grid)
    else:
        print("no videos" + (f" after {args.after}" if args.after else ""))
    if page.get("has_more"):
        print(f"more: vidrelay jobs --limit {args.limit} --after {page['last_id']}")
    return 0
