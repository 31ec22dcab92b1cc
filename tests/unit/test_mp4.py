"""The streaming MP4 reader agrees with PyAV on real files, whatever the chunking, and refuses what is not one."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from vidrelay_core.errors import NotAnMp4, TruncatedDownload
from vidrelay_core.mp4 import Mp4Scanner

from vidrelay.simulator import mp4gen


def encode(path: Path, width: int, height: int, frames: int, *, faststart: bool, fps: int = 24) -> Path:
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(
                np.full((height * 3 // 2, width), index % 255, dtype=np.uint8), format="yuv420p"
            )
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def scan(data: bytes, chunk: int) -> tuple[float, int, int, str]:
    scanner = Mp4Scanner()
    for start in range(0, len(data), chunk):
        scanner.feed(data[start : start + chunk])
    info = scanner.finish()
    return info.duration_s, info.width, info.height, info.major_brand


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("clips")
    return {
        "faststart": encode(folder / "a.mp4", 160, 96, 48, faststart=True).read_bytes(),
        "moov-last": encode(folder / "b.mp4", 96, 160, 36, faststart=False).read_bytes(),
    }


@pytest.mark.parametrize("layout", ["faststart", "moov-last"])
@pytest.mark.parametrize("chunk", [1, 7, 4096, 10**9])
def test_reads_duration_and_size_whatever_the_chunking(clips: dict[str, bytes], layout: str, chunk: int) -> None:
    data = clips[layout]
    assert len(data) < 200_000, "keep the clips small: byte-at-a-time scanning is slow"
    duration, width, height, brand = scan(data, chunk)
    expected = (160, 96, 2.0) if layout == "faststart" else (96, 160, 1.5)
    assert (width, height) == expected[:2]
    assert duration == pytest.approx(expected[2], abs=0.05)
    assert brand in ("isom", "mp42", "iso5", "iso6")
    assert data[moov_offset(data) + 4 : moov_offset(data) + 8] == b"moov"
    assert (moov_offset(data) < data.find(b"mdat")) == (layout == "faststart")


def moov_offset(data: bytes) -> int:
    return data.find(b"moov") - 4


def test_agrees_with_pyav_on_the_simulator_output(tmp_path: Path) -> None:
    path = mp4gen.mp4_path(320, 180, 4)
    data = path.read_bytes()
    duration, width, height, _ = scan(data, 65536)
    assert (width, height, round(duration, 1)) == (*mp4gen.probe(path)[:2], round(mp4gen.probe(path)[2], 1))


def test_padding_after_the_video_is_skipped_without_buffering(tmp_path: Path) -> None:
    source = mp4gen.mp4_path(320, 180, 4)
    padded = tmp_path / "padded.mp4"
    mp4gen.write_padded(source, source.stat().st_size + 3 * 1024 * 1024, padded)
    duration, width, height, _ = scan(padded.read_bytes(), 1 << 20)
    assert (width, height) == (320, 180) and duration == pytest.approx(4.0, abs=0.05)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
        b'{"error": {"message": "not found"}}',
        b"\x00\x00\x00\x18moov" + bytes(16),  # a box, but not ftyp first
    ],
    ids=["empty", "html", "json", "no-ftyp"],
)
def test_not_an_mp4_is_refused(body: bytes) -> None:
    scanner = Mp4Scanner()
    with pytest.raises(NotAnMp4):
        scanner.feed(body)
        scanner.finish()


def test_refused_on_the_first_bytes_not_at_the_end() -> None:
    scanner = Mp4Scanner()
    with pytest.raises(NotAnMp4):
        scanner.feed(b"<html>" + bytes(10))  # raises here, before any more bytes would be read


def test_truncated_file_is_detected(clips: dict[str, bytes]) -> None:
    data = clips["moov-last"]
    for cut in (len(data) // 3, len(data) - 1):
        scanner = Mp4Scanner()
        scanner.feed(data[:cut])
        with pytest.raises((TruncatedDownload, NotAnMp4)):
            scanner.finish()


def test_mp4_without_moov_is_refused(clips: dict[str, bytes]) -> None:
    data = clips["moov-last"]
    scanner = Mp4Scanner()
    scanner.feed(data[: moov_offset(data)])  # everything up to the header box, which never comes
    with pytest.raises(NotAnMp4, match="moov"):
        scanner.finish()


def test_a_largesize_header_split_across_chunks_is_read_whole() -> None:
    from vidrelay_core.mp4 import Mp4Scanner

    ftyp = b"\x00\x00\x00\x10ftypisom\x00\x00\x02\x00"
    # A free box with a 64-bit size (24 bytes in all), its 16-byte header cut after 12 bytes.
    free = b"\x00\x00\x00\x01free" + (24).to_bytes(8, "big") + b"\x00" * 8
    scanner = Mp4Scanner()
    scanner.feed(ftyp + free[:12])
    scanner.feed(free[12:])
    assert scanner.bytes_seen == len(ftyp) + len(free)


def test_a_tiny_fake_mp4_is_refused_not_a_crash() -> None:
    import pytest
    from vidrelay_core.errors import TransferError
    from vidrelay_core.mp4 import Mp4Scanner

    scanner = Mp4Scanner()
    with pytest.raises(TransferError):
        scanner.feed(b"\x00\x00\x00\x01ftyp ")
        scanner.finish()
