"""Real, playable H.264 MP4 files for the upstream simulator.

The simulator must hand out genuine videos (the seeds' samples save ``output.mp4`` and people open it) that show
what was asked (``frames``: the prompt and the reference images), yet tests create many of them, so generation is
kept cheap: a low frame rate, x264 ``ultrafast`` and pictures drawn once then panned. Each distinct video — a
content hash of its size, length, caption and reference images — is encoded once and kept in a bounded cache on
disk (least recently used files go first), so a repeat costs one ``stat``.

``iter_padded`` serves a file grown to an exact byte count by appending a top-level ISO-BMFF ``free`` box, which
every MP4 reader skips; this lets tests exercise size limits (large downloads, multipart uploads) without storing
large files.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av

from vidrelay.simulator import frames
from vidrelay.simulator.frames import Scene

FPS = 10
CHUNK = 1 << 20  # 1 MiB, the unit in which files and padding are streamed
_FORMAT_VERSION = "v2"  # bump when the picture or encoder settings change, so stale caches are ignored
_MAX_BOX32 = 0xFFFFFFFF
# x264 picks its thread count from the machine; a fixed one keeps the bytes of a video the same everywhere.
ENCODER_THREADS = "2"
DEFAULT_CACHE_MB = 512  # a few hundred videos at the usual sizes; VIDRELAY_SIM_CACHE_MB changes it
_LOCK_STRIPES = 64  # generations of the same video wait for each other; a fixed pool keeps memory bounded
_OPEN_ATTEMPTS = 3

_cache_dir_override: Path | None = None
_locks = tuple(threading.Lock() for _ in range(_LOCK_STRIPES))


def cache_dir() -> Path:
    """Directory holding the generated files (``VIDRELAY_SIM_CACHE`` overrides the temp-dir default)."""
    base = _cache_dir_override or Path(
        os.environ.get("VIDRELAY_SIM_CACHE") or Path(tempfile.gettempdir()) / "vidrelay-sim-mp4"
    )
    base.mkdir(parents=True, exist_ok=True)
    return base


def set_cache_dir(path: str | os.PathLike[str] | None) -> None:
    """Point the cache somewhere else (tests); ``None`` restores the default."""
    global _cache_dir_override
    _cache_dir_override = Path(path) if path is not None else None


def cache_limit_bytes() -> int:
    raw = os.environ.get("VIDRELAY_SIM_CACHE_MB") or str(DEFAULT_CACHE_MB)
    try:
        megabytes = float(raw)
    except ValueError as exc:
        raise ValueError(f"VIDRELAY_SIM_CACHE_MB must be a number of megabytes, got {raw!r}") from exc
    return max(0, int(megabytes * 1024 * 1024))


def _check_dimensions(width: int, height: int, seconds: int) -> None:
    # yuv420p subsamples chroma by two in both directions, so H.264 in this format needs even sizes.
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"width and height must be positive and even, got {width}x{height}")
    if seconds <= 0:
        raise ValueError(f"seconds must be a positive whole number, got {seconds}")


def video_key(width: int, height: int, seconds: int, scene: Scene) -> str:
    """The content hash naming a video: everything that changes its bytes, and nothing else."""
    described = [_FORMAT_VERSION, FPS, width, height, seconds, scene.caption, list(scene.reference_digests)]
    return hashlib.sha256(json.dumps(described).encode()).hexdigest()


def mp4_path(width: int, height: int, seconds: int, scene: Scene | None = None) -> Path:
    """Return the path of the cached MP4 of this size, length and scene, generating it on first use.

    Safe to call from many threads (one generation per video) and many processes (atomic rename). The file may
    be evicted later to keep the cache bounded: a reader should use ``open_mp4``, which holds it open.
    """
    _check_dimensions(width, height, seconds)
    scene = scene or Scene()
    key = video_key(width, height, seconds, scene)
    path = cache_dir() / f"sim_{width}x{height}_{seconds}s_{key[:32]}_{_FORMAT_VERSION}.mp4"
    if _touch(path):
        return path
    with _locks[int(key[:8], 16) % _LOCK_STRIPES]:
        if _touch(path):
            return path
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".part")
        os.close(fd)
        try:
            _encode(Path(tmp_name), width, height, seconds, scene)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    _evict(path.parent, keep=path)
    return path


def open_mp4(width: int, height: int, seconds: int, scene: Scene | None = None) -> BinaryIO:
    """The MP4 opened for reading; once open, evicting it from the cache no longer matters (POSIX unlink)."""
    for _ in range(_OPEN_ATTEMPTS - 1):
        try:
            return open(mp4_path(width, height, seconds, scene), "rb")
        except FileNotFoundError:  # evicted between generation and open by a crowded cache: make it again
            continue
    return open(mp4_path(width, height, seconds, scene), "rb")


def _touch(path: Path) -> bool:
    """Mark a cached file as just used (the eviction order); False if it is not there."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


def _evict(folder: Path, keep: Path) -> None:
    """Remove the least recently used videos until the cache fits its limit; files of an older format first."""
    entries: list[tuple[bool, float, int, Path]] = []
    for path in folder.glob("sim_*.mp4"):
        try:
            stat = path.stat()
        except FileNotFoundError:  # another process evicted it meanwhile
            continue
        entries.append((path.stem.endswith(_FORMAT_VERSION), stat.st_mtime, stat.st_size, path))
    total = sum(size for _, _, size, _ in entries)
    limit = cache_limit_bytes()
    for _, _, size, path in sorted(entries):
        if total <= limit:
            return
        if path == keep:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:  # held open on a system that cannot remove open files: try again next time
            print(f"vidrelay simulator: cannot evict {path.name} from the cache: {exc}", file=sys.stderr)
            continue
        total -= size


def _encode(path: Path, width: int, height: int, seconds: int, scene: Scene) -> None:
    time_base = Fraction(1, FPS)
    # +faststart puts the moov box first, so players (and the relay's sniffing) can read it before mdat.
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        codec = stream.codec_context
        codec.time_base = time_base
        # The frames are BT.709 limited range (see frames); saying so spares players a guess.
        codec.color_primaries = codec.color_trc = codec.colorspace = frames.BT709
        codec.color_range = 1  # MPEG (limited) range
        stream.options = {"preset": "ultrafast", "crf": "30", "threads": ENCODER_THREADS}
        for index, planes in enumerate(frames.render(scene, width, height, seconds * FPS)):
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts = index
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def probe(path: str | os.PathLike[str]) -> tuple[int, int, float]:
    """(width, height, duration in seconds) of an MP4, as PyAV (ffprobe's library) reads it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        duration = container.duration / 1_000_000 if container.duration is not None else 0.0
        return stream.codec_context.width, stream.codec_context.height, duration


def free_box_header(pad_bytes: int) -> bytes:
    """Header of a ``free`` box whose total size (header included) is ``pad_bytes``.

    ISO/IEC 14496-12: the 32-bit size field covers boxes up to 4 GiB - 1; beyond that size=1 announces a
    64-bit ``largesize`` after the type, making the header 16 bytes.
    """
    if pad_bytes < 8:
        raise ValueError(f"a free box needs at least 8 bytes, got {pad_bytes}")
    if pad_bytes <= _MAX_BOX32:
        return pad_bytes.to_bytes(4, "big") + b"free"
    return (1).to_bytes(4, "big") + b"free" + pad_bytes.to_bytes(8, "big")


Source = str | os.PathLike[str] | BinaryIO  # a path, or a file already open for reading (see ``open_mp4``)


def _size_of(source: Source) -> int:
    if isinstance(source, str | os.PathLike):
        return os.path.getsize(source)
    return os.fstat(source.fileno()).st_size


def iter_file(source: Source, limit: int | None = None) -> Iterator[bytes]:
    """Stream a file in 1 MiB chunks (optionally only its first ``limit`` bytes), never whole in memory. An open
    file is read from its start and closed at the end."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as handle:
            yield from _chunks(handle, limit)
    else:
        with source:
            source.seek(0)
            yield from _chunks(source, limit)


def _chunks(handle: BinaryIO, limit: int | None) -> Iterator[bytes]:
    remaining = limit
    while remaining is None or remaining > 0:
        chunk = handle.read(CHUNK if remaining is None else min(CHUNK, remaining))
        if not chunk:
            return
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk


def iter_padded(source: Source, total_bytes: int) -> Iterator[bytes]:
    """Stream the MP4 at ``source`` followed by a zero-filled ``free`` box so exactly ``total_bytes`` come out.

    ``total_bytes`` equal to the file size streams the file unchanged; sizes below it, or 1 to 7 bytes above it
    (too small for a box header), raise ``ValueError`` before anything is yielded.
    """
    size = _size_of(source)
    pad = total_bytes - size
    if pad < 0 or 0 < pad < 8:
        raise ValueError(f"cannot pad a {size}-byte MP4 to {total_bytes} bytes")
    return _padded_chunks(source, pad)


def _padded_chunks(source: Source, pad: int) -> Iterator[bytes]:
    yield from iter_file(source)
    if pad == 0:
        return
    header = free_box_header(pad)
    yield header
    remaining = pad - len(header)
    zeros = bytes(CHUNK)
    while remaining > 0:
        step = min(CHUNK, remaining)
        yield zeros if step == CHUNK else zeros[:step]
        remaining -= step


def write_padded(path: str | os.PathLike[str], total_bytes: int, dest: str | os.PathLike[str]) -> None:
    """Write the padded stream to ``dest`` (a convenience for tests and fixtures)."""
    with open(dest, "wb") as out:
        for chunk in iter_padded(path, total_bytes):
            out.write(chunk)
