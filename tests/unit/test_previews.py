"""Deriving a thumbnail and a spritesheet from an MP4 read in ranges: real pictures of the video's aspect ratio,
bounded reads, keyframe seeking, and a clear refusal when the codec or stream cannot be decoded."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image
from vidrelay_core import mp4
from vidrelay_core.previews import (
    SPRITESHEET_FRAMES,
    PreviewFailed,
    S3RangeReader,
    derive,
    fitted,
    frame_times,
)

from vidrelay.simulator import mp4gen
from vidrelay.simulator.frames import Scene


class Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self) -> bytes:
        return self._data


class FakeS3:
    """One object, served by ranged GETs only, each one recorded."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.ranges: list[tuple[int, int]] = []

    def get_object(self, *, Bucket: str, Key: str, Range: str) -> dict[str, Any]:
        first, last = (int(n) for n in Range.removeprefix("bytes=").split("-"))
        self.ranges.append((first, last))
        return {"Body": Body(self.data[first : last + 1])}


def reader_of(data: bytes, block_bytes: int = 64 * 1024) -> tuple[S3RangeReader, FakeS3]:
    s3 = FakeS3(data)
    return S3RangeReader(s3, "bucket", "videos/t/video_1.mp4", size=len(data), block_bytes=block_bytes), s3


def simulator_mp4(width: int, height: int, seconds: int, prompt: str = "a fox in the snow") -> bytes:
    return Path(mp4gen.mp4_path(width, height, seconds, Scene(prompt=prompt))).read_bytes()


def keyframed_mp4(path: Path, *, seconds: int, fps: int = 10, keyframe_every: int = 10) -> bytes:
    """A small H.264 MP4 with a keyframe every `keyframe_every` frames, each frame a flat grey of its index."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {"preset": "ultrafast", "g": str(keyframe_every), "keyint_min": str(keyframe_every)}
        for index in range(seconds * fps):
            picture = np.random.default_rng(index).integers(0, 255, (180, 320, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path.read_bytes()


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (720, 1280)])
def test_the_pictures_are_real_images_of_the_videos_aspect_ratio(width: int, height: int) -> None:
    reader, _ = reader_of(simulator_mp4(width, height, 4))

    previews = derive(reader, width=width, height=height, duration_s=4.0)

    thumbnail = Image.open(io.BytesIO(previews.thumbnail.data))
    sheet = Image.open(io.BytesIO(previews.spritesheet.data))
    assert (thumbnail.format, thumbnail.size) == ("WEBP", fitted(width, height, 640))
    assert thumbnail.width / thumbnail.height == pytest.approx(width / height, rel=0.01)
    tile = (previews.spritesheet.tile_width, previews.spritesheet.tile_height)
    assert tile == fitted(width, height, 240)
    assert sheet.format == "JPEG"
    assert sheet.size == (5 * tile[0], 2 * tile[1])
    assert (previews.spritesheet.columns, previews.spritesheet.rows) == (5, 2)
    assert previews.spritesheet.interval_s == pytest.approx(0.4)


def test_without_the_stored_size_the_pictures_take_the_frames_own_aspect_ratio() -> None:
    # A stored MP4 whose header gave no size (width = height = 0 on its Video.output).
    reader, _ = reader_of(simulator_mp4(720, 1280, 4))

    previews = derive(reader, width=0, height=0, duration_s=4.0)

    assert Image.open(io.BytesIO(previews.thumbnail.data)).size == fitted(720, 1280, 640)
    assert (previews.spritesheet.tile_width, previews.spritesheet.tile_height) == fitted(720, 1280, 240)


def test_the_tiles_show_the_video_as_it_moves_on() -> None:
    reader, _ = reader_of(simulator_mp4(1280, 720, 4))
    previews = derive(reader, width=1280, height=720, duration_s=4.0)
    sheet = Image.open(io.BytesIO(previews.spritesheet.data)).convert("L")
    tile_w, tile_h = previews.spritesheet.tile_width, previews.spritesheet.tile_height

    tiles = [
        np.asarray(sheet.crop((c * tile_w, r * tile_h, (c + 1) * tile_w, (r + 1) * tile_h)))
        for r, c in ((0, 0), (1, 4))
    ]

    # The simulator pans its picture and draws a progress line: the first and last tiles differ visibly.
    assert np.abs(tiles[0].astype(int) - tiles[1].astype(int)).mean() > 1.0


def test_the_mp4_is_read_in_bounded_ranges_never_whole() -> None:
    data = simulator_mp4(1280, 720, 8)
    reader, s3 = reader_of(data, block_bytes=16 * 1024)

    derive(reader, width=1280, height=720, duration_s=8.0)

    assert s3.ranges and all(last - first + 1 <= 16 * 1024 for first, last in s3.ranges)
    assert reader.bytes_fetched <= 2 * len(data)  # a block may be fetched again after it left the two kept


def test_keyframes_between_the_wanted_times_are_sought_not_decoded_up_to(tmp_path: Path) -> None:
    # Given a 30 s video with a keyframe every second: ten tiles, one every 3 s
    data = keyframed_mp4(tmp_path / "keyframed.mp4", seconds=30)
    reader, _ = reader_of(data, block_bytes=8 * 1024)

    previews = derive(reader, width=320, height=180, duration_s=30.0)

    # Then most of the file was skipped, and the tiles are still there
    assert reader.bytes_fetched < 0.6 * len(data), (reader.bytes_fetched, len(data))
    assert previews.spritesheet.columns * previews.spritesheet.rows == SPRITESHEET_FRAMES


def test_a_codec_without_a_decoder_is_refused_by_name() -> None:
    data = simulator_mp4(1280, 720, 4).replace(b"avc1", b"zzzz")
    reader, _ = reader_of(data)

    with pytest.raises(PreviewFailed) as refused:
        derive(reader, width=1280, height=720, duration_s=4.0)

    assert refused.value.code == "codec_not_decodable"
    assert "(zzzz)" in refused.value.message


def test_bytes_that_are_no_video_are_refused_as_not_decodable() -> None:
    reader, _ = reader_of(b"\x00\x00\x00\x18ftypisom" + bytes(5000))

    with pytest.raises(PreviewFailed) as refused:
        derive(reader, width=1280, height=720, duration_s=4.0)

    assert refused.value.code == "video_not_decodable"


def test_a_read_that_fails_is_raised_as_it_came_not_as_undecodable() -> None:
    class Down(FakeS3):
        def get_object(self, **_: Any) -> dict[str, Any]:
            raise ConnectionResetError("connection reset by peer")

    reader = S3RangeReader(Down(b""), "bucket", "key", size=100_000)

    with pytest.raises(ConnectionResetError):
        derive(reader, width=1280, height=720, duration_s=4.0)


def test_the_sample_entry_names_the_codec() -> None:
    data = simulator_mp4(720, 1280, 4)
    start = data.index(b"moov") + 4
    size = int.from_bytes(data[start - 8 : start - 4], "big")

    assert mp4.video_sample_entry(data[start : start - 8 + size]) == "avc1"


def test_frame_times_take_the_thumbnail_early_and_the_tiles_mid_interval() -> None:
    thumbnail, tiles = frame_times(12.0)

    assert thumbnail == 2.0
    assert tiles[0] == pytest.approx(0.6) and tiles[-1] == pytest.approx(11.4)
    assert fitted(1920, 1080, 640) == (640, 360) and fitted(100, 50, 640) == (100, 50)
