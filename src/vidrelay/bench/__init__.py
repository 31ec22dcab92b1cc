"""`make bench`: measures the relay on this machine and prints one JSON document on stdout.

Two things are measured (progress goes to stderr, so `make bench > bench.json` keeps only the JSON):

* download: the downloader's transfer (`vidrelay_core.transfer.stream_url_to_s3`, upstream simulator → moto S3)
  against a plain HTTP-to-file copy of the same bytes, for time and memory. moto and the simulator run in this
  process; every measured transfer runs in a fresh child process (`python -m vidrelay.bench --child SPEC`), so
  its memory figures hold the transfer alone and none of the S3 objects moto keeps in memory.
* webhook_latency: upstream completion → `video.completed` webhook received, over jobs run through the
  in-process local stack (`vidrelay local`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import hashlib
import json
import os
import platform
import re
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
DEFAULT_SIZES_MIB = (100, 1024)
BUCKET = "vidrelay-bench"
REGION = "us-east-1"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
UPSTREAM_HEADERS = {"Authorization": "Bearer sk-bench"}
TASK_FIELDS = {"model": "sora-2", "seconds": "4", "size": "1280x720"}
DOWNLOAD_RUNS = 3
# The 1 GiB size is there for its peak memory (flat in size); one run keeps `make bench` within minutes.
DOWNLOAD_RUNS_LARGE = 1
LARGE_MIB = 256
CHILD_TIMEOUT_S = 300.0
WEBHOOK_JOBS = 50
WEBHOOK_WAVE = 10
WEBHOOK_SIM_SECONDS = 2.0
WEBHOOK_WAIT_S = 60.0
IDLE_S = 20.0
THROUGHPUT_EVENTS = 200
DRAIN_JOBS = 1000
IMPORT_RUNS = 7
DEFAULT_SWEEP = "100:1000,300:3000"
SWEEP_LATENCY_MS = 200.0
_STATUS_FIELD = re.compile(r"^(\w+):\s+(\d+) kB$", re.MULTILINE)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- pure helpers --------------------------------------------------------------------------------------------


def parse_proc_status(text: str) -> dict[str, int]:
    """The `NAME: N kB` fields of /proc/<pid>/status (VmRSS, VmHWM, ...), in bytes."""
    return {name: int(value) * 1024 for name, value in _STATUS_FIELD.findall(text)}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mib_per_s(size: int, seconds: float) -> float:
    return round(size / MiB / seconds, 1) if seconds > 0 else float("inf")


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator > 0 else None


def to_mib(size: int) -> float:
    return round(size / MiB, 1)


# --- machine -------------------------------------------------------------------------------------------------


def total_memory_bytes() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return None


def machine_info() -> dict[str, Any]:
    from importlib.metadata import version

    memory = total_memory_bytes()
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_total_bytes": memory,
        "memory_total_gib": round(memory / 1024**3, 1) if memory else None,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "packages": {name: version(name) for name in ("httpx", "boto3", "botocore", "moto", "werkzeug")},
    }


# --- child: one measured transfer ----------------------------------------------------------------------------


def read_memory() -> dict[str, int]:
    fields = parse_proc_status(Path("/proc/self/status").read_text())
    return {"rss": fields.get("VmRSS", 0), "hwm": fields.get("VmHWM", 0)}


def reset_peak() -> bool:
    """Resets VmHWM to the current RSS (Linux ≥ 4.0: write 5 to clear_refs); False where that is refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def s3_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    # The downloader's own configuration (vidrelay_core.wiring), pointed at moto.
    config = Config(signature_version="s3v4", s3={"addressing_style": "path", "payload_signing_enabled": False})
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, config=config)


def plain_copy(client: Any, url: str, path: str) -> dict[str, Any]:
    """The baseline: the same GET, read the same way (as the bytes arrive), bytes written straight to a file."""
    written = 0
    with client.stream("GET", url, headers=UPSTREAM_HEADERS) as response, open(path, "wb") as out:
        response.raise_for_status()
        declared = int(response.headers["content-length"])
        for chunk in response.iter_bytes():
            out.write(chunk)
            written += len(chunk)
    return {"bytes": written, "content_length": declared}


def vidrelay_copy(client: Any, url: str, s3: Any, key: str) -> dict[str, Any]:
    from vidrelay_core.transfer import stream_url_to_s3

    result = stream_url_to_s3(client, "GET", url, headers=UPSTREAM_HEADERS, s3_client=s3, bucket=BUCKET, key=key)
    return {"bytes": result.bytes, "sha256": result.sha256, "parts": result.parts}


class StreamReader:
    """A file-like `read(n)` over an httpx response's bytes as they arrive: what `upload_fileobj` reads."""

    def __init__(self, response: Any) -> None:
        self._chunks = response.iter_bytes()
        self._buffer = bytearray()
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        cut = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        data = bytes(self._buffer[:cut])
        del self._buffer[:cut]
        self.bytes += len(data)
        return data


def boto3_copy(client: Any, url: str, s3: Any, key: str) -> dict[str, Any]:
    """The reference: boto3's managed transfer (`upload_fileobj`, its defaults: 8 MiB parts, 10 threads) fed by
    the same streamed GET."""
    with client.stream("GET", url, headers=UPSTREAM_HEADERS) as response:
        response.raise_for_status()
        reader = StreamReader(response)
        s3.upload_fileobj(reader, BUCKET, key)
    return {"bytes": reader.bytes}


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(MiB):
            digest.update(block)
    return digest.hexdigest()


def run_transfer(spec: dict[str, Any]) -> dict[str, Any]:
    """Imports and clients first (both modes alike), then baseline, then the transfer alone is measured."""
    import httpx
    import vidrelay_core.transfer  # noqa: F401  (imported in both modes, so both baselines hold it)

    client = httpx.Client(follow_redirects=False)  # as vidrelay_core.upstream.http_client()
    s3 = s3_client(spec["endpoint"])
    s3.head_bucket(Bucket=BUCKET)  # warm: botocore loads its endpoint rules and signer on the first call
    gc.collect()
    before = read_memory()
    peak_reset = reset_peak()
    cpu, start = time.process_time(), time.perf_counter()
    if spec["mode"] == "plain":
        outcome = plain_copy(client, spec["url"], spec["path"])
    elif spec["mode"] == "boto3":
        outcome = boto3_copy(client, spec["url"], s3, spec["key"])
    else:
        outcome = vidrelay_copy(client, spec["url"], s3, spec["key"])
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    after = read_memory()
    if spec["mode"] == "plain":
        outcome["sha256"] = file_sha256(spec["path"])  # after the measurement: checks, costs nothing measured
    client.close()
    return {**outcome, "seconds": seconds, "cpu_s": cpu, "before": before, "after": after, "peak_reset": peak_reset}


def child_main(raw_spec: str) -> int:
    print(json.dumps(run_transfer(json.loads(raw_spec))))
    return 0


# --- parent: moto, simulator, the download comparison --------------------------------------------------------


def padded_content_url(sim_url: str, size: int) -> str:
    """Creates a simulator task whose content is exactly `size` bytes (content_pad is the total body size:
    the real MP4 followed by a `free` box) and returns its content URL once the task completed."""
    import httpx

    prompt = f"vidrelay bench download [sim:content_pad={size}]"
    with httpx.Client(base_url=sim_url, headers=UPSTREAM_HEADERS, timeout=30) as client:
        created = client.post("/v1/videos", json={**TASK_FIELDS, "prompt": prompt})
        created.raise_for_status()
        video_id = created.json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/v1/videos/{video_id}").json()["status"] != "completed":
            if time.monotonic() > deadline:
                raise TimeoutError(f"simulator task {video_id} did not complete")
            time.sleep(0.1)
    return f"{sim_url}/v1/videos/{video_id}/content"


def warm_content(url: str) -> None:
    """One unmeasured GET, so the simulator's MP4 is encoded and cached before any timing starts."""
    import httpx

    with httpx.stream("GET", url, headers=UPSTREAM_HEADERS, timeout=120) as response:
        response.raise_for_status()
        next(response.iter_bytes(MiB), b"")


def peak_delta(raw: dict[str, Any]) -> int:
    delta: int = raw["after"]["hwm"] - raw["before"]["rss"]
    return delta


def run_line(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "seconds": round(raw["seconds"], 3),
        "peak_memory_delta_mib": to_mib(peak_delta(raw)),
        "cpu_s": round(raw["cpu_s"], 2),
        "server_cpu_s": round(raw["server_cpu_s"], 2),
    }


def summarize(raws: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs (time, memory and CPU each on their own), plus every run."""
    seconds = median([raw["seconds"] for raw in raws])
    peak = int(median([peak_delta(raw) for raw in raws]))
    first = raws[0]
    return {
        "bytes": first["bytes"],
        "size_ok": all(raw["size_ok"] for raw in raws),
        "seconds": round(seconds, 3),
        "throughput_mib_s": mib_per_s(first["bytes"], seconds),
        "peak_memory_delta_bytes": peak,
        "peak_memory_delta_mib": to_mib(peak),
        "peak_memory_delta_max_mib": to_mib(max(peak_delta(raw) for raw in raws)),
        "rss_before_mib": to_mib(int(median([raw["before"]["rss"] for raw in raws]))),
        "peak_rss_mib": to_mib(int(median([raw["after"]["hwm"] for raw in raws]))),
        "cpu_s": round(median([raw["cpu_s"] for raw in raws]), 2),
        "server_cpu_s": round(median([raw["server_cpu_s"] for raw in raws]), 2),
        "hwm_reset_before_transfer": all(raw["peak_reset"] for raw in raws),
        **({"s3_parts": first["parts"]} if "parts" in first else {}),
        "runs": [run_line(raw) for raw in raws],
    }


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


# --- webhook latency -----------------------------------------------------------------------------------------


class WebhookLog:
    """The first `video.completed` arrival time (epoch seconds) per video id."""

    def __init__(self) -> None:
        self.completed: dict[str, float] = {}
        self.other: dict[str, int] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def record(self, received: Any) -> None:
        arrived = getattr(received, "received_at", 0.0) or time.time()
        kind, video_id = received.event.get("type", "?"), received.event.get("data", {}).get("id", "")
        with self._changed:
            if kind == "video.completed":
                self.completed.setdefault(video_id, arrived)
            else:
                self.other[kind] = self.other.get(kind, 0) + 1
            self._changed.notify_all()

    def wait_for(self, video_ids: Sequence[str], timeout_s: float) -> list[str]:
        """Waits until every id has its webhook; returns the ids still missing at the timeout."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while missing := [v for v in video_ids if v not in self.completed]:
                left = deadline - time.monotonic()
                if left <= 0:
                    return missing
                self._changed.wait(left)
        return []


# What every benchmark job's video shows. The prompt of each is this plus a [sim:bench=...] tag (unique: how the
# upstream task is found again in the simulator) that the simulator leaves out of the picture, so all of them
# are one MP4, encoded once before the run: the figures time vidrelay, not the simulator's H.264 encoder (a real
# upstream serves a finished video; it does not encode it while it is downloaded).
BENCH_CAPTION = "vidrelay bench"


def bench_prompt(run_id: str, n: int | str) -> str:
    return f"{BENCH_CAPTION} [sim:bench={run_id}-{n}]"


def warm_bench_video() -> None:
    """Encodes the benchmark jobs' one MP4 into the simulator's cache (the simulator runs in this process)."""
    from vidrelay.simulator import mp4gen

    width, height = (int(side) for side in TASK_FIELDS["size"].split("x"))
    mp4gen.mp4_path(width, height, int(TASK_FIELDS["seconds"]), mp4gen.Scene(prompt=bench_prompt("warm", 0)))


def submit_wave(api: Any, receiver_url: str, run_id: str, numbers: range) -> dict[str, str]:
    """Submits one wave back to back; returns prompt → vidrelay video id."""
    submitted: dict[str, str] = {}
    for n in numbers:
        prompt = bench_prompt(run_id, n)
        answer = api.post("/videos", json={**TASK_FIELDS, "prompt": prompt, "webhook_url": receiver_url})
        answer.raise_for_status()
        submitted[prompt] = answer.json()["id"]
    return submitted


def upstream_completions(simulator_url: str) -> dict[str, int]:
    """prompt → the simulator's completed_at_ms (the moment the upstream reports the task completed)."""
    import httpx

    tasks = httpx.get(f"{simulator_url}/_sim/tasks", timeout=30).json()
    return {task["prompt"]: int(task["completed_at_ms"]) for task in tasks}


def run_waves(info: dict[str, Any], receiver_url: str, hooks: WebhookLog, jobs: int) -> dict[str, str]:
    import httpx

    run_id = uuid.uuid4().hex[:8]
    submitted: dict[str, str] = {}
    headers = {"Authorization": f"Bearer {info['api_key']}"}
    with httpx.Client(base_url=info["api_url"], headers=headers, timeout=30) as api:
        for start in range(0, jobs, WEBHOOK_WAVE):
            wave = submit_wave(api, receiver_url, run_id, range(start, min(start + WEBHOOK_WAVE, jobs)))
            missing = hooks.wait_for(list(wave.values()), WEBHOOK_WAIT_S)
            log(f"webhook wave {start // WEBHOOK_WAVE + 1}: {len(wave) - len(missing)}/{len(wave)} completed")
            submitted.update(wave)
    return submitted


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, Any]:
    if not latencies_ms:
        return {"count": 0}
    return {
        "count": len(latencies_ms),
        "p50_ms": round(percentile(latencies_ms, 50), 1),
        "p99_ms": round(percentile(latencies_ms, 99), 1),
        "max_ms": round(max(latencies_ms), 1),
        "min_ms": round(min(latencies_ms), 1),
        "mean_ms": round(sum(latencies_ms) / len(latencies_ms), 1),
    }


def webhook_method(jobs: int) -> str:
    waves = -(-jobs // WEBHOOK_WAVE)
    return (
        f"{jobs} jobs (sora-2, 4 s, 1280x720) in {waves} waves of up to {WEBHOOK_WAVE}: a wave's jobs are POSTed "
        f"back to back to the local API, and the next wave starts once every job of this one has its "
        f"video.completed webhook (or after {WEBHOOK_WAIT_S:.0f} s). Simulator sim_seconds={WEBHOOK_SIM_SECONDS}, "
        "so a wave's jobs complete upstream within the submit spread of each other; local stack defaults "
        "otherwise (4 containers per function, poll interval 15 s x 0.02 = 0.3 s, poller tick 0.1 s)."
    )


WEBHOOK_NOTES = (
    "Latency = arrival of the signed video.completed webhook at a local receiver (Receiver.received_at, "
    "time.time() when the request arrived) - the simulator's completed_at_ms for the job's upstream task (the "
    "first moment GET /v1/videos/{id} answers completed; read from GET /_sim/tasks, matched by a unique "
    "prompt, since the API's task_id is vidrelay's own id; every job's video is the same MP4, encoded before the "
    "run, so no encoding is timed). It includes the poller noticing the completion, "
    "the MP4 download into moto S3, the SNS/SQS fan-out and the webhook POST. Everything runs in one process "
    "(LocalStack: moto, simulator, API and functions in threads), on one clock."
)


# --- entry point ---------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m vidrelay.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    parser.add_argument("--serve", choices=("moto", "sink", "simulator"), help=argparse.SUPPRESS)
    parser.add_argument("--sizes-mib", default=",".join(map(str, DEFAULT_SIZES_MIB)), help="download sizes")
    parser.add_argument("--runs", type=int, default=DOWNLOAD_RUNS, help="runs per download size and mode")
    parser.add_argument(
        "--runs-large", type=int, default=DOWNLOAD_RUNS_LARGE, help=f"runs for sizes over {LARGE_MIB} MiB"
    )
    parser.add_argument("--jobs", type=int, default=WEBHOOK_JOBS, help="jobs of the latency and cost run (0 skips)")
    parser.add_argument("--idle-s", type=float, default=IDLE_S, help="idle window counted for the idle month")
    parser.add_argument("--throughput-events", type=int, default=THROUGHPUT_EVENTS, help="events per receiver")
    parser.add_argument("--drain", action="store_true", help="also the 1,000-job drain (minutes)")
    parser.add_argument("--drain-jobs", type=int, default=DRAIN_JOBS, help="jobs of the drain")
    parser.add_argument("--import-runs", type=int, default=IMPORT_RUNS, help="cold imports per handler (0 skips)")
    parser.add_argument("--sweep-sizes", default=DEFAULT_SWEEP, help="due:finished pairs, e.g. 10000:100000")
    parser.add_argument("--sweep-latency-ms", type=float, default=SWEEP_LATENCY_MS, help="injected upstream latency")
    parser.add_argument(
        "--sweep-relay-due", type=int, default=10_000, help="tasks of the relay measured at full size (0 skips)"
    )
    return parser.parse_args(argv)


def parse_sweep_sizes(text: str) -> list[tuple[int, int]]:
    """ "due:finished,..." → [(due, finished), ...]; an empty text skips the sweep."""
    pairs: list[tuple[int, int]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        due, _, finished = part.partition(":")
        pairs.append((int(due), int(finished or 0)))
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child)
    if args.serve:
        from .download import serve

        return serve(args.serve)
    from vidrelay.local.allocator import with_template_allocator

    # The stack figures run every function in this process: with the deployed allocator setting, as each is.
    with_template_allocator()
    # The report alone goes to stdout: anything the measured code prints (the functions' Powertools loggers write
    # to the stdout they find when made) goes to stderr with the progress lines.
    report_out, sys.stdout = sys.stdout, sys.stderr
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    started = time.perf_counter()
    sizes = [int(value) * MiB for value in args.sizes_mib.split(",") if value.strip()]
    report: dict[str, Any] = {"machine": machine_info()}
    if sizes:
        from .download import bench_download

        report["download"] = bench_download(sizes, args.runs, runs_large=args.runs_large)
    if args.import_runs > 0:
        from .imports import bench_cold_import

        report["cold_import"] = bench_cold_import(args.import_runs)
    sweeps = parse_sweep_sizes(args.sweep_sizes)
    if sweeps:
        from .sweep import bench_sweep

        report["sweep"] = bench_sweep(sweeps, latency_s=args.sweep_latency_ms / 1000, relay_due=args.sweep_relay_due)
    if args.jobs > 0:
        from .stackfigures import bench_stack

        drain_jobs = args.drain_jobs if args.drain else 0
        report.update(
            bench_stack(
                jobs=args.jobs, idle_s=args.idle_s, throughput_events=args.throughput_events, drain_jobs=drain_jobs
            )
        )
    report["verdicts"] = {
        name: figure["verdict"] for name, figure in report.items() if isinstance(figure, dict) and "verdict" in figure
    }
    report["runtime_s"] = round(time.perf_counter() - started, 1)
    log(f"done in {report['runtime_s']} s")
    print(json.dumps(report, indent=2), file=report_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
