"""Real, playable H.264 MP4 files for the upstream simulator.

The simulator must hand out genuine videos (the seeds' samples save ``output.mp4`` and people open it), yet
tests create many of them, so generation is kept cheap: a low frame rate, x264 ``ultrafast`` and a simple
moving pattern written straight into YUV planes. Each (width, height, seconds) file is made once and cached on
disk, so repeats cost one ``stat``.

``iter_padded`` serves a cached file grown to an exact byte count by appending a top-level ISO-BMFF ``free``
box, which every MP4 reader skips; this lets tests exercise size limits (large downloads, multipart uploads)
without storing large files.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FPS = 10
CHUNK = 1 << 20  # 1 MiB, the unit in which files and padding are streamed
_FORMAT_VERSION = "v1"  # bump when the picture or encoder settings change, so stale caches are ignored
_MAX_BOX32 = 0xFFFFFFFF

_cache_dir_override: Path | None = None
_locks: dict[tuple[int, int, int], threading.Lock] = {}
_locks_guard = threading.Lock()


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


def _check_dimensions(width: int, height: int, seconds: int) -> None:
    # yuv420p subsamples chroma by two in both directions, so H.264 in this format needs even sizes.
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"width and height must be positive and even, got {width}x{height}")
    if seconds <= 0:
        raise ValueError(f"seconds must be a positive whole number, got {seconds}")


def _key_lock(key: tuple[int, int, int]) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def mp4_path(width: int, height: int, seconds: int) -> Path:
    """Return the path of a cached MP4 of this size and length, generating it on first use.

    Safe to call from many threads (one generation per key) and many processes (atomic rename).
    """
    _check_dimensions(width, height, seconds)
    path = cache_dir() / f"sim_{width}x{height}_{seconds}s_{FPS}fps_{_FORMAT_VERSION}.mp4"
    if path.exists():
        return path
    with _key_lock((width, height, seconds)):
        if path.exists():
            return path
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".part.mp4")
        os.close(fd)
        try:
            _encode(Path(tmp_name), width, height, seconds)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    return path


def _frames(width: int, height: int, count: int) -> Iterator[np.ndarray]:
    """Yield yuv420p planes (stacked as PyAV expects) of a scrolling gradient with a sweeping bright bar.

    Motion on every frame makes it an honest video rather than a still, while staying cheap to compress.
    """
    ys = np.arange(height, dtype=np.uint32)[:, None]
    xs = np.arange(width, dtype=np.uint32)[None, :]
    gradient = ((xs + ys) // 4 % 200 + 28).astype(np.uint8)
    bar_width = max(2, width // 12)
    cw, ch = width // 2, height // 2
    for i in range(count):
        buf = np.empty((height * 3 // 2, width), dtype=np.uint8)
        luma = buf[:height]
        luma[:] = np.roll(gradient, i * max(1, width // 64), axis=1)
        x0 = (i * width // max(count, 1)) % width
        luma[:, x0 : x0 + bar_width] = 235
        # The chroma planes (U then V, each a quarter of the picture) drift in hue over time.
        chroma = buf[height:].reshape(2, ch, cw)
        chroma[0] = (128 + 60 * np.sin(i / 7.0)).astype(np.uint8)
        chroma[1] = (128 + 60 * np.cos(i / 11.0)).astype(np.uint8)
        yield buf


def _encode(path: Path, width: int, height: int, seconds: int) -> None:
    time_base = Fraction(1, FPS)
    # +faststart puts the moov box first, so players (and the relay's sniffing) can read it before mdat.
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = time_base
        stream.options = {"preset": "ultrafast", "crf": "30"}
        for index, planes in enumerate(_frames(width, height, seconds * FPS)):
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


def iter_file(path: str | os.PathLike[str], limit: int | None = None) -> Iterator[bytes]:
    """Stream a file in 1 MiB chunks (optionally only its first ``limit`` bytes), never whole in memory."""
    remaining = limit
    with open(path, "rb") as handle:
        while remaining is None or remaining > 0:
            chunk = handle.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


def iter_padded(path: str | os.PathLike[str], total_bytes: int) -> Iterator[bytes]:
    """Stream the MP4 at ``path`` followed by a zero-filled ``free`` box so exactly ``total_bytes`` come out.

    ``total_bytes`` equal to the file size streams the file unchanged; sizes below it, or 1 to 7 bytes above it
    (too small for a box header), raise ``ValueError`` before anything is yielded.
    """
    size = os.path.getsize(path)
    pad = total_bytes - size
    if pad < 0 or 0 < pad < 8:
        raise ValueError(f"cannot pad a {size}-byte MP4 to {total_bytes} bytes")
    return _padded_chunks(path, pad)


def _padded_chunks(path: str | os.PathLike[str], pad: int) -> Iterator[bytes]:
    yield from iter_file(path)
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
