"""Pictures derived from a stored MP4: a thumbnail (one frame, the video's aspect ratio) and a spritesheet (frames
at even intervals, tiled in a grid), read from S3 with range requests and decoded as they arrive.

Lambda has no ffmpeg binary, so the decoding is PyAV's: its wheels bundle FFmpeg's libraries (H.264, HEVC, VP9,
AV1 and the rest) for Lambda's python3.13 on arm64 and x86_64, and ship only in the thumbnailer's own layer. The
MP4 is never held whole: `S3RangeReader` fetches it in blocks of `BLOCK_BYTES` (two kept), and frames are scaled
down to tiles as soon as they are decoded. When the sample index shows a keyframe between the last decoded frame
and the next wanted one, the decoder seeks there instead of decoding every frame in between.

What cannot be derived raises `PreviewFailed` with a code the Video object shows: `codec_not_decodable` (no
decoder for the video track's codec, named by its sample entry), `video_not_decodable` (a stream the decoder
refuses). A read from S3 that fails is not that: it is raised as it came, for the function to be tried again.
"""

from __future__ import annotations

import io
import math
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import mp4

if TYPE_CHECKING:
    from PIL.Image import Image

MiB = 1024 * 1024
BLOCK_BYTES = 2 * MiB
BLOCKS_KEPT = 2  # the moov (read first) and the block being decoded, for files whose moov comes after mdat
THUMBNAIL_MAX_SIDE = 640
TILE_MAX_SIDE = 240
SPRITESHEET_COLUMNS = 5
SPRITESHEET_FRAMES = 10
# The thumbnail shows a frame a quarter of the way in (openings often fade in from black), at most 2 s in.
THUMBNAIL_AT_SHARE = 0.25
THUMBNAIL_AT_MAX_S = 2.0
WEBP_QUALITY = 82
JPEG_QUALITY = 80


class PreviewFailed(Exception):
    """The MP4 stored for a job gives no pictures; `code` and the message are shown on the Video object."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Picture:
    content_type: str
    extension: str
    data: bytes
    width: int
    height: int
    columns: int = 1
    rows: int = 1
    tile_width: int = 0
    tile_height: int = 0
    interval_s: float = 0.0


@dataclass(frozen=True)
class Previews:
    thumbnail: Picture
    spritesheet: Picture


class S3RangeReader(io.RawIOBase):
    """A seekable, read-only file over one S3 object, fetched in ranged GETs of `block_bytes` as it is read."""

    def __init__(self, s3: Any, bucket: str, key: str, *, size: int, block_bytes: int = BLOCK_BYTES) -> None:
        super().__init__()
        self._s3 = s3
        self._bucket = bucket
        self._key = key
        self._size = size
        self._block_bytes = block_bytes
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._position = 0
        self.requests = 0
        self.bytes_fetched = 0
        # An S3 failure inside the decoder's read callback reaches us as a decoder error; this keeps the real one.
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._position >= self._size or not len(view):
            return 0
        index, start = divmod(self._position, self._block_bytes)
        block = self._block(index)
        taken = block[start : start + len(view)]
        view[: len(taken)] = taken
        self._position += len(taken)
        return len(taken)

    def _block(self, index: int) -> bytes:
        if index in self._blocks:
            self._blocks.move_to_end(index)
            return self._blocks[index]
        first = index * self._block_bytes
        last = min(self._size, first + self._block_bytes) - 1
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=self._key, Range=f"bytes={first}-{last}")
            data = bytes(response["Body"].read())
        except Exception as exc:
            self.error = exc
            raise
        self.requests += 1
        self.bytes_fetched += len(data)
        self._blocks[index] = data
        while len(self._blocks) > BLOCKS_KEPT:
            self._blocks.popitem(last=False)
        return data


def fitted(width: int, height: int, max_side: int) -> tuple[int, int]:
    """`width` x `height` scaled down (never up) so its longer side is at most `max_side`, aspect ratio kept."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def frame_times(duration_s: float) -> tuple[float, list[float]]:
    """When the thumbnail is taken, and when each spritesheet tile is (the middle of its interval)."""
    duration = max(duration_s, 0.0)
    interval = duration / SPRITESHEET_FRAMES
    thumbnail = min(duration * THUMBNAIL_AT_SHARE, THUMBNAIL_AT_MAX_S)
    return thumbnail, [(index + 0.5) * interval for index in range(SPRITESHEET_FRAMES)]


def derive(reader: S3RangeReader, *, width: int, height: int, duration_s: float) -> Previews:
    """The thumbnail and spritesheet of the MP4 `reader` reads; `width`, `height` and `duration_s` are what its
    header said when it was stored (Video.output)."""
    import av

    thumbnail_at, tile_times = frame_times(duration_s)
    wanted = sorted({thumbnail_at, *tile_times})
    try:
        container = av.open(reader, mode="r")
    except av.error.FFmpegError as exc:
        _reraise_read_error(reader)
        raise PreviewFailed("video_not_decodable", f"the stored MP4 cannot be opened: {exc}") from exc
    with container:
        if not container.streams.video:
            raise PreviewFailed("video_not_decodable", "the stored MP4 has no video track")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise _codec_not_decodable(reader)
        # Without the stored header's size, each frame keeps its own aspect ratio.
        size = fitted(width, height, THUMBNAIL_MAX_SIDE) if width > 0 and height > 0 else None
        try:
            frames = dict(_frames_at(container, stream, wanted, size))
        except av.error.DecoderNotFoundError as exc:
            _reraise_read_error(reader)
            raise _codec_not_decodable(reader) from exc
        except av.error.FFmpegError as exc:
            _reraise_read_error(reader)
            raise PreviewFailed("video_not_decodable", f"the video stream cannot be decoded: {exc}") from exc
    if not frames:
        raise PreviewFailed("video_not_decodable", "no frame of the video could be decoded")
    aspect = (width, height) if size else next(iter(frames.values())).size
    return Previews(
        thumbnail=_thumbnail(frames[thumbnail_at], aspect),
        spritesheet=_spritesheet([frames[t] for t in tile_times], aspect, duration_s),
    )


def _frames_at(
    container: Any, stream: Any, wanted: list[float], size: tuple[int, int] | None
) -> Iterator[tuple[float, Image]]:
    """(time, picture) for each wanted time, in order: the first frame at or after it (the last frame for times
    past the end). Seeks forward to a keyframe whenever one lies between here and the next wanted time.

    A kept frame is scaled by FFmpeg as it is converted to RGB, to `size` (the thumbnail's, the largest picture
    made) or, without it, to the thumbnail's longest side in the frame's own aspect ratio: converting the whole
    frame and scaling it in Pillow took over half the thumbnailer's CPU time."""
    time_base = float(stream.time_base) if stream.time_base else 0.0
    keyframes = [e.timestamp * time_base for e in stream.index_entries if e.is_keyframe] if time_base else []
    # A frame stands for the time it covers: one half a frame early is still the nearest.
    half_frame = 0.5 / float(stream.average_rate) if stream.average_rate else 0.0
    pending = deque(wanted)
    decoded_until = -math.inf
    sought_to = 0.0  # decoding starts at the first keyframe anyway

    def keyframe_ahead() -> float | None:
        keyframe = max((k for k in keyframes if k <= pending[0]), default=None)
        return keyframe if keyframe is not None and keyframe > max(decoded_until, sought_to) else None

    last: Image | None = None
    while pending:
        keyframe = keyframe_ahead()
        if keyframe is not None:
            container.seek(round(keyframe / time_base), stream=stream, backward=True, any_frame=False)
            sought_to = keyframe
        for frame in container.decode(stream):
            decoded_until = frame.time if frame.time is not None else decoded_until + 1e-6
            if decoded_until + half_frame < pending[0]:
                continue
            width, height = size or fitted(frame.width, frame.height, THUMBNAIL_MAX_SIDE)
            last = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA").to_image()
            while pending and decoded_until + half_frame >= pending[0]:
                yield pending.popleft(), last
            if not pending:
                return
            if keyframe_ahead() is not None:
                break
        else:
            # The stream ended before the last wanted times (a header that overstates the duration).
            if last is not None:
                for remaining in pending:
                    yield remaining, last
            return


def _thumbnail(frame: Image, aspect: tuple[int, int]) -> Picture:
    from PIL import Image as PILImage

    size = fitted(*aspect, THUMBNAIL_MAX_SIDE)
    picture = frame.convert("RGB")
    if picture.size != size:  # frames come at this size already (_frames_at)
        picture = picture.resize(size, PILImage.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="WEBP", quality=WEBP_QUALITY, method=4)
    return Picture("image/webp", "webp", out.getvalue(), *size)


def _spritesheet(frames: list[Image], aspect: tuple[int, int], duration_s: float) -> Picture:
    from PIL import Image as PILImage

    tile_width, tile_height = fitted(*aspect, TILE_MAX_SIDE)
    columns = min(SPRITESHEET_COLUMNS, len(frames))
    rows = math.ceil(len(frames) / columns)
    sheet = PILImage.new("RGB", (columns * tile_width, rows * tile_height))
    for index, frame in enumerate(frames):
        tile = frame.convert("RGB").resize((tile_width, tile_height), PILImage.Resampling.BILINEAR)
        row, column = divmod(index, columns)
        sheet.paste(tile, (column * tile_width, row * tile_height))
    out = io.BytesIO()
    sheet.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return Picture(
        "image/jpeg",
        "jpg",
        out.getvalue(),
        sheet.width,
        sheet.height,
        columns=columns,
        rows=rows,
        tile_width=tile_width,
        tile_height=tile_height,
        interval_s=round(duration_s / len(frames), 3),
    )


def _codec_not_decodable(reader: S3RangeReader) -> PreviewFailed:
    return PreviewFailed(
        "codec_not_decodable",
        f"the video's codec ({_sample_entry(reader)}) cannot be decoded here, so no thumbnail or spritesheet was "
        "made; the MP4 itself is stored and downloadable",
    )


def _reraise_read_error(reader: S3RangeReader) -> None:
    if reader.error is not None:
        raise reader.error


def _sample_entry(reader: S3RangeReader) -> str:
    """The video track's sample entry type (`avc1`, `hvc1`, `av01`...) read from the moov, for the message."""
    try:
        moov = _read_moov(reader)
        return mp4.video_sample_entry(moov) or "unknown"
    except Exception:  # only used to word the message; the refusal stands whatever this finds
        return "unknown"


def _read_moov(reader: S3RangeReader) -> bytes:
    position = 0
    while True:
        reader.seek(position)
        header = reader.read(16)
        if len(header) < 8:
            return b""
        size, kind = int.from_bytes(header[:4], "big"), header[4:8]
        header_length = 8
        if size == 1:
            size, header_length = int.from_bytes(header[8:16], "big"), 16
        if kind == b"moov":
            reader.seek(position + header_length)
            return reader.read(min(size - header_length, mp4.MAX_MOOV_BYTES))
        if size < header_length:
            return b""
        position += size
