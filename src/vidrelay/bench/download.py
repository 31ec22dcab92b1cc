"""The downloader's figure: its transfer (`stream_url_to_s3`) against a plain HTTP-to-file copy and against boto3's
own `upload_fileobj`, side by side in one run, into moto (a process of its own) and into a discard S3 sink (also
its own process), at each size; peak memory from the same children."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from . import (
    BUCKET,
    CHILD_TIMEOUT_S,
    FAKE_AWS_ENV,
    MiB,
    log,
    mib_per_s,
    padded_content_url,
    ratio,
    run_line,
    s3_client,
    summarize,
    to_mib,
    warm_content,
)

SINKS = ("moto", "discard_sink")
MODES = ("vidrelay", "boto3")
TARGET_VS_PLAIN = 0.8
TARGET_VS_UPLOAD_FILEOBJ = 1.0
TARGET_PEAK_MIB = 64.0
# "Flat": the 1 GiB peak within this much of the smallest size's.
FLAT_MARGIN_MIB = 8.0


def serve(kind: str) -> int:
    """`--serve moto|sink|simulator`: serves until stdin closes; the first stdout line is the URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if kind == "moto":
        from vidrelay.local.aws import LocalAws

        server: Any = LocalAws().start()
    elif kind == "simulator":
        from vidrelay.simulator.server import Simulator

        # Generations that never finish: every poll of the sweep finds its task still running.
        server = Simulator(port=0, sim_seconds=24 * 3600.0).start()
    else:
        from .sink import DiscardSink

        server = DiscardSink().start()
    print(server.url, flush=True)
    sys.stdin.read()
    server.stop()
    return 0


class ServerProcess:
    def __init__(self, kind: str) -> None:
        env = {**os.environ, **FAKE_AWS_ENV}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vidrelay.bench", "--serve", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url:
            raise RuntimeError(f"the {kind} server did not start")

    def cpu_s(self) -> float:
        """User + system CPU the server process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@contextlib.contextmanager
def services() -> Iterator[tuple[dict[str, ServerProcess], str]]:
    from vidrelay.simulator.server import Simulator

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.update(FAKE_AWS_ENV)  # never real credentials: everything here talks to moto or the sink
    servers: dict[str, ServerProcess] = {}
    simulator = Simulator(port=0, sim_seconds=0.5).start()
    try:
        servers["moto"] = ServerProcess("moto")
        servers["discard_sink"] = ServerProcess("sink")
        s3_client(servers["moto"].url).create_bucket(Bucket=BUCKET)
        yield servers, simulator.url
    finally:
        for server in servers.values():
            server.stop()
        simulator.stop()


def run_child(spec: dict[str, Any], server: ServerProcess | None) -> dict[str, Any]:
    """One transfer in a fresh interpreter; adds the CPU the S3 server spent meanwhile."""
    from vidrelay.local.allocator import template_allocator_env

    env = {**os.environ, **FAKE_AWS_ENV, **template_allocator_env()}
    command = [sys.executable, "-m", "vidrelay.bench", "--child", json.dumps(spec)]
    cpu = server.cpu_s() if server else 0.0
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    server_cpu = (server.cpu_s() - cpu) if server else 0.0
    if done.returncode != 0:
        raise RuntimeError(f"bench child ({spec['mode']}) failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["server_cpu_s"] = server_cpu
    return result


def measure_plain(url: str, size: int, endpoint: str, workdir: Path) -> dict[str, Any]:
    path = workdir / f"plain-{uuid.uuid4().hex}.bin"
    try:
        raw = run_child({"mode": "plain", "url": url, "path": str(path), "endpoint": endpoint}, None)
        on_disk = path.stat().st_size
    finally:
        path.unlink(missing_ok=True)
    raw["size_ok"] = raw["bytes"] == raw["content_length"] == on_disk == size
    return raw


def measure_upload(mode: str, url: str, size: int, server: ServerProcess) -> dict[str, Any]:
    s3 = s3_client(server.url)
    key = f"bench/{uuid.uuid4().hex}.mp4"
    try:
        raw = run_child({"mode": mode, "url": url, "key": key, "endpoint": server.url}, server)
        stored = s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    finally:
        s3.delete_object(Bucket=BUCKET, Key=key)
    raw["size_ok"] = raw["bytes"] == stored == size
    return raw


def throughput_ratio(ours: dict[str, Any], theirs: dict[str, Any]) -> float | None:
    return ratio(theirs["seconds"], ours["seconds"])  # time ratio inverted: throughput over throughput


def measure_size(
    sim_url: str, servers: dict[str, ServerProcess], size: int, runs: int, workdir: Path
) -> dict[str, Any]:
    url = padded_content_url(sim_url, size)
    warm_content(url)
    raws: dict[str, list[dict[str, Any]]] = {"plain": [], **{f"{s}:{m}": [] for s in SINKS for m in MODES}}
    label = f"{to_mib(size):g} MiB"
    for run in range(1, runs + 1):  # alternated, so drift (page cache, heat, neighbours) hits every mode alike
        raws["plain"].append(measure_plain(url, size, servers["moto"].url, workdir))
        log(f"{label} run {run}/{runs} plain HTTP → file: {run_line(raws['plain'][-1])}")
        for sink in SINKS:
            for mode in MODES:
                raws[f"{sink}:{mode}"].append(measure_upload(mode, url, size, servers[sink]))
                log(f"{label} run {run}/{runs} {mode} → {sink}: {run_line(raws[f'{sink}:{mode}'][-1])}")
    plain = summarize(raws["plain"])
    result: dict[str, Any] = {"size_bytes": size, "size_mib": to_mib(size), "runs": runs, "plain_http_to_file": plain}
    hashes = {raw["sha256"] for raw in raws["plain"]} | {raw["sha256"] for s in SINKS for raw in raws[f"{s}:vidrelay"]}
    result["same_bytes"] = len(hashes) == 1
    for sink in SINKS:
        ours, theirs = summarize(raws[f"{sink}:vidrelay"]), summarize(raws[f"{sink}:boto3"])
        result[sink] = {
            "vidrelay_stream_url_to_s3": ours,
            "boto3_upload_fileobj": theirs,
            "throughput_ratio_vidrelay_over_plain": throughput_ratio(ours, plain),
            "throughput_ratio_vidrelay_over_upload_fileobj": throughput_ratio(ours, theirs),
            "throughput_ratio_upload_fileobj_over_plain": throughput_ratio(theirs, plain),
        }
    return result


DOWNLOAD_METHOD = (
    "Each size is one simulator task's content (content_pad = the total body: the real H.264 MP4 plus a zero-filled "
    "`free` box), served by the simulator in this process; one unmeasured GET warms its cache. Two S3 endpoints, "
    "each a process of its own: moto (the local stack's S3) and a discard sink (bench/sink.py: PutObject and "
    "multipart upload over HTTP, bytes read and dropped). Every measured transfer runs in a fresh child process "
    "(the template's MALLOC_MMAP_THRESHOLD_ in its environment) that first imports httpx, boto3 and the "
    "transfer module, makes an httpx client and a path-style boto3 S3 client (payload signing off, as the "
    "downloader's) and one head_bucket call; then reads VmRSS, resets VmHWM to it (clear_refs 5) and times the "
    "transfer alone. Modes: plain = httpx stream -> file, "
    "chunks as they arrive; vidrelay = stream_url_to_s3 with its defaults (8 MiB parts, 4 in flight, SHA-256 "
    "and MP4 scan); boto3 = upload_fileobj (8 MiB parts, 10 threads) reading the same stream. Each run does plain, "
    "then both uploads into moto, then both into the sink (sizes over 256 MiB: one run by default, there for "
    "their peak memory); figures are medians over the runs and the ratios "
    "(throughput over throughput) compare medians of the same run. peak_memory_delta = VmHWM after - VmRSS "
    "before; server_cpu_s = the S3 server process's CPU during the child. Sizes are checked (Content-Length, "
    "file, S3 HEAD) and the SHA-256 of plain and vidrelay copies compared (same_bytes)."
)


def download_verdict(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    sink = [r["discard_sink"] for r in results]
    vs_plain = min((s["throughput_ratio_vidrelay_over_plain"] or 0) for s in sink)
    vs_boto3 = min((s["throughput_ratio_vidrelay_over_upload_fileobj"] or 0) for s in sink)
    peaks = [max(r[s]["vidrelay_stream_url_to_s3"]["peak_memory_delta_max_mib"] for s in SINKS) for r in results]
    flat = max(peaks) - peaks[0] <= FLAT_MARGIN_MIB
    checks = {
        "throughput_vs_plain_on_discard_sink": {"worst": vs_plain, "target": f">= {TARGET_VS_PLAIN}"},
        "throughput_vs_upload_fileobj_on_discard_sink": {"worst": vs_boto3, "target": f">= {TARGET_VS_UPLOAD_FILEOBJ}"},
        "peak_memory_delta_mib": {
            "by_size": peaks,
            "target": f"<= {TARGET_PEAK_MIB}, flat (within {FLAT_MARGIN_MIB} MiB)",
        },
    }
    memory_ok = max(peaks) <= TARGET_PEAK_MIB and flat
    ok = vs_plain >= TARGET_VS_PLAIN and vs_boto3 >= TARGET_VS_UPLOAD_FILEOBJ and memory_ok
    checks["memory_verdict"] = "meets target" if memory_ok else "misses target"
    checks["throughput_verdict"] = (
        "meets target" if vs_plain >= TARGET_VS_PLAIN and vs_boto3 >= TARGET_VS_UPLOAD_FILEOBJ else "misses target"
    )
    return {"checks": checks, "verdict": "meets target" if ok else "misses target"}


def bench_download(sizes: Sequence[int], runs: int, *, runs_large: int | None = None) -> dict[str, Any]:
    from vidrelay.local.allocator import template_allocator_env

    from . import LARGE_MIB

    results: list[dict[str, Any]] = []
    with services() as (servers, sim_url), tempfile.TemporaryDirectory(prefix="vidrelay-bench-") as tmp:
        for size in sizes:
            started = time.perf_counter()
            count = runs_large if runs_large is not None and size > LARGE_MIB * MiB else runs
            results.append(measure_size(sim_url, servers, size, count, Path(tmp)))
            log(f"{to_mib(size):g} MiB measured in {time.perf_counter() - started:.0f} s")
    summary = {
        f"{r['size_mib']:g}_mib": {
            "plain_mib_s": r["plain_http_to_file"]["throughput_mib_s"],
            **{
                f"{sink}_{mode}_mib_s": r[sink][key]["throughput_mib_s"]
                for sink in SINKS
                for mode, key in (("vidrelay", "vidrelay_stream_url_to_s3"), ("boto3", "boto3_upload_fileobj"))
            },
        }
        for r in results
    }
    return {
        "method": DOWNLOAD_METHOD,
        "child_env": dict(template_allocator_env()),
        "throughput_mib_s": summary,
        **download_verdict(results),
        "results": results,
    }


__all__ = ["MiB", "bench_download", "mib_per_s", "serve"]
