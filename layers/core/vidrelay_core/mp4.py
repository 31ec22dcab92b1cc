"""Streaming MP4 header reader: checks the bytes are an MP4 and reads duration and resolution as they pass.

Only top-level box headers are looked at while bytes flow; `mdat` (the bulk of the file) and every other
top-level box are skipped by counting, so memory stays flat whatever the file size. `ftyp` and `moov` are the
only boxes buffered. `moov` may come before `mdat` (faststart) or after it (encoders' default), so
nothing is known for sure until `finish()`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import NotAnMp4, TruncatedDownload

MiB = 1024 * 1024
# moov holds the sample tables, about 10 bytes per frame per track: 64 MiB covers many hours of video.
# Anything bigger is far more likely garbage than a real header, and we must not buffer it in a Lambda.
MAX_MOOV_BYTES = 64 * MiB
# ftyp is a brand list: a few dozen bytes in practice.
MAX_FTYP_BYTES = 4096

_TO_END_OF_FILE = -1
_BUFFERED = (b"ftyp", b"moov")
_UNKNOWN_DURATION_V0 = 0xFFFFFFFF
_UNKNOWN_DURATION_V1 = 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True)
class Mp4Info:
    duration_s: float
    width: int
    height: int
    major_brand: str


@dataclass(frozen=True)
class _Box:
    kind: bytes
    start: int  # payload start, relative to the buffer the box was read from
    end: int  # payload end (exclusive)


class Mp4Scanner:
    """Feed it the file in chunks of any size and boundaries; `finish()` returns what the header says."""

    def __init__(self, *, max_moov_bytes: int = MAX_MOOV_BYTES) -> None:
        self._max_moov_bytes = max_moov_bytes
        self._offset = 0  # file bytes consumed so far
        self._header = bytearray()  # the current box header while it is incomplete
        self._kind: bytes | None = None  # type of the box whose payload is streaming past; None between boxes
        self._remaining = 0  # payload bytes left in that box, or _TO_END_OF_FILE
        self._payload: bytearray | None = None  # the payload being kept (ftyp, first moov), else None
        self._payload_limit = 0
        self._major_brand: str | None = None
        self._moov: bytes | None = None

    @property
    def bytes_seen(self) -> int:
        return self._offset

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        view = memoryview(chunk).cast("B")
        pos, size = 0, len(view)
        while pos < size:
            taken = self._read_header(view, pos) if self._kind is None else self._read_payload(view, pos)
            pos += taken
            self._offset += taken

    def finish(self) -> Mp4Info:
        if self._kind is None and self._header:
            raise TruncatedDownload(f"the file ends inside a box header, after {self._offset} bytes")
        if self._kind is not None and self._remaining != _TO_END_OF_FILE:
            raise TruncatedDownload(
                f"the file ends inside its {_name(self._kind)} box, {self._remaining} bytes short "
                f"(after {self._offset} bytes)"
            )
        if self._kind is not None:  # a box of size 0 runs to the end of the file: it ends here, cleanly
            self._end_box()
        if self._major_brand is None:
            raise NotAnMp4("the body is empty" if self._offset == 0 else "no ftyp box")
        if self._moov is None:
            raise NotAnMp4("the MP4 has no moov box (no header: duration and resolution unknown)")
        return _parse_moov(memoryview(self._moov), self._major_brand)

    # -- top level ------------------------------------------------------------------------------------------

    def _read_header(self, view: memoryview, pos: int) -> int:
        """Takes header bytes from `view[pos:]`; returns how many it took."""
        needed = 16 if len(self._header) >= 8 and _u32(self._header, 0) == 1 else 8
        take = min(needed - len(self._header), len(view) - pos)
        self._header += view[pos : pos + take]
        at = self._offset + take - len(self._header)  # file offset of this box
        if len(self._header) == 8:
            self._check_header(at)
            if _u32(self._header, 0) == 1:  # a 64-bit largesize follows the type
                return take
        # A 64-bit header may arrive split across chunks: the box starts only once all 16 bytes are here.
        if len(self._header) >= 8 and len(self._header) == (16 if _u32(self._header, 0) == 1 else 8):
            self._start_box(at)
        return take

    def _check_header(self, at: int) -> None:
        # Runs as soon as size and type are known, so a non-MP4 fails on its first 8 bytes.
        size = _u32(self._header, 0)
        kind = bytes(self._header[4:8])
        if at == 0 and kind != b"ftyp":
            raise NotAnMp4(f"the body does not start with an ftyp box (first bytes {bytes(self._header)!r})")
        if not _is_box_type(kind):
            raise NotAnMp4(f"corrupt MP4: no box type at byte {at} (found {kind!r})")
        if size not in (0, 1) and size < 8:
            raise NotAnMp4(f"corrupt MP4: the {_name(kind)} box at byte {at} has size {size}")

    def _start_box(self, at: int) -> None:
        size = _u32(self._header, 0)
        kind = bytes(self._header[4:8])
        header_len = len(self._header)
        if size == 1:
            size = struct.unpack_from(">Q", self._header, 8)[0]
            if size < 16:
                raise NotAnMp4(f"corrupt MP4: the {_name(kind)} box at byte {at} has largesize {size}")
        self._header.clear()
        self._kind = kind
        self._remaining = _TO_END_OF_FILE if size == 0 else size - header_len
        self._payload = None
        if kind == b"ftyp" and at == 0:
            self._keep_payload(MAX_FTYP_BYTES)
        elif kind == b"moov" and self._moov is None:
            self._keep_payload(self._max_moov_bytes)
        if self._remaining == 0:
            self._end_box()

    def _keep_payload(self, limit: int) -> None:
        self._payload = bytearray()
        self._payload_limit = limit
        self._check_payload_size(self._remaining)

    def _read_payload(self, view: memoryview, pos: int) -> int:
        available = len(view) - pos
        take = available if self._remaining == _TO_END_OF_FILE else min(self._remaining, available)
        if self._payload is not None:
            self._check_payload_size(len(self._payload) + take)
            self._payload += view[pos : pos + take]
        if self._remaining != _TO_END_OF_FILE:
            self._remaining -= take
            if self._remaining == 0:
                self._end_box()
        return take

    def _check_payload_size(self, size: int) -> None:
        if size > self._payload_limit:
            assert self._kind is not None
            raise NotAnMp4(
                f"the {_name(self._kind)} box is {size} bytes, more than the {self._payload_limit} a header may take"
            )

    def _end_box(self) -> None:
        payload, kind = self._payload, self._kind
        self._kind, self._payload, self._remaining = None, None, 0
        if payload is None:
            return
        if kind == b"ftyp":
            if len(payload) < 4:
                raise NotAnMp4("corrupt MP4: the ftyp box has no major brand")
            self._major_brand = payload[:4].decode("latin-1")
        else:
            self._moov = bytes(payload)


# -- moov ---------------------------------------------------------------------------------------------------


def _parse_moov(moov: memoryview, major_brand: str) -> Mp4Info:
    timescale, duration = 0, 0
    video: tuple[int, int, float] | None = None
    for box in _children(moov, 0, len(moov)):
        if box.kind == b"mvhd":
            timescale, duration = _read_mvhd(moov, box)
        elif box.kind == b"trak" and video is None:
            video = _read_video_trak(moov, box)
    if video is None:
        raise NotAnMp4("the MP4 has no video track")
    width, height, track_duration_s = video
    # Fragmented files leave the mvhd duration empty; the track's own mdhd is the next best source.
    duration_s = duration / timescale if timescale and duration else track_duration_s
    return Mp4Info(duration_s=duration_s, width=width, height=height, major_brand=major_brand)


def video_sample_entry(moov: bytes) -> str | None:
    """The sample entry type of the first video track (`avc1`, `hvc1`, `av01`...): the codec, as the file names
    it. `moov` is the box's payload."""
    view = memoryview(moov)
    for trak in _children(view, 0, len(view)):
        if trak.kind != b"trak":
            continue
        media = _child(view, trak, b"mdia")
        handler = _child(view, media, b"hdlr") if media else None
        if media is None or handler is None or bytes(view[handler.start + 8 : handler.start + 12]) != b"vide":
            continue
        table = _child(view, media, b"minf")
        table = _child(view, table, b"stbl") if table else None
        entries = _child(view, table, b"stsd") if table else None
        # stsd: version/flags and an entry count, then the entries, each a box whose type is the codec.
        if entries is None or entries.end - entries.start < 16:
            return None
        return _name(bytes(view[entries.start + 12 : entries.start + 16]))
    return None


def _child(buffer: memoryview, parent: _Box, kind: bytes) -> _Box | None:
    return next((box for box in _children(buffer, parent.start, parent.end) if box.kind == kind), None)


def _read_mvhd(moov: memoryview, box: _Box) -> tuple[int, int]:
    """(timescale, duration) of the whole presentation; duration 0 when unknown."""
    version = _version(moov, box)
    if version == 1:
        _need(box, 4 + 8 + 8 + 4 + 8)
        timescale, duration = struct.unpack_from(">IQ", moov, box.start + 4 + 16)
        unknown = _UNKNOWN_DURATION_V1
    else:
        _need(box, 4 + 4 + 4 + 4 + 4)
        timescale, duration = struct.unpack_from(">II", moov, box.start + 4 + 8)
        unknown = _UNKNOWN_DURATION_V0
    return int(timescale), 0 if duration == unknown else int(duration)


def _read_video_trak(moov: memoryview, trak: _Box) -> tuple[int, int, float] | None:
    """(width, height, duration_s) if this track is video, else None."""
    tkhd: _Box | None = None
    handler: bytes | None = None
    duration_s = 0.0
    for box in _children(moov, trak.start, trak.end):
        if box.kind == b"tkhd":
            tkhd = box
        elif box.kind == b"mdia":
            for inner in _children(moov, box.start, box.end):
                if inner.kind == b"hdlr":
                    _need(inner, 12)
                    handler = bytes(moov[inner.start + 8 : inner.start + 12])
                elif inner.kind == b"mdhd":
                    timescale, duration = _read_mvhd(moov, inner)  # mdhd starts with the same fields as mvhd
                    duration_s = duration / timescale if timescale else 0.0
    if handler != b"vide" or tkhd is None:
        return None
    width, height = _read_tkhd_size(moov, tkhd)
    return width, height, duration_s


def _read_tkhd_size(moov: memoryview, tkhd: _Box) -> tuple[int, int]:
    # version/flags, times and ids (20 or 32 bytes), then 8 reserved, layer, group, volume, 2 reserved and the
    # 36-byte matrix: width and height are the last two 16.16 fixed-point fields.
    fixed = 4 + (32 if _version(moov, tkhd) == 1 else 20) + 8 + 8 + 36
    _need(tkhd, fixed + 8)
    width, height = struct.unpack_from(">II", moov, tkhd.start + fixed)
    return round(width / 65536), round(height / 65536)


def _children(buffer: memoryview, start: int, end: int) -> Iterator[_Box]:
    pos = start
    while pos + 8 <= end:
        size = _u32(buffer, pos)
        kind = bytes(buffer[pos + 4 : pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > end:
                break
            size = struct.unpack_from(">Q", buffer, pos + 8)[0]
            header = 16
        elif size == 0:  # runs to the end of its parent
            size = end - pos
        if size < header or pos + size > end:
            raise NotAnMp4(f"corrupt MP4 header: the {_name(kind)} box overruns its parent")
        yield _Box(kind, pos + header, pos + size)
        pos += size


def _version(buffer: memoryview, box: _Box) -> int:
    _need(box, 4)
    return buffer[box.start]


def _need(box: _Box, size: int) -> None:
    if box.end - box.start < size:
        raise NotAnMp4(f"corrupt MP4 header: the {_name(box.kind)} box is too short")


def _u32(buffer: bytes | bytearray | memoryview, pos: int) -> int:
    value: int = struct.unpack_from(">I", buffer, pos)[0]
    return value


def _is_box_type(kind: bytes) -> bool:
    # Real top-level box types are four printable characters; anything else means we lost our place.
    return all(0x20 <= c <= 0x7E for c in kind)


def _name(kind: bytes) -> str:
    return kind.decode("latin-1")
