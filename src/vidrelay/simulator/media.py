"""What an uploaded file really is, read from its header bytes (small, and no decode is needed to know it).

Upstreams sniff rather than trust the declared Content-Type (seed 003: "accepts image/jpeg / image/png /
image/webp"; seed 001: "supports images (jpg/png) and videos (mp4)"), and so does the simulator: a PNG sent as
``application/octet-stream`` is a PNG, a text file named ``.png`` is not.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["image", "video"]


@dataclass(frozen=True)
class Sniffed:
    kind: Kind
    format: str  # "png" | "jpeg" | "webp" | "mp4"
    width: int | None = None  # images only: video dimensions would need a full demux, which nothing here needs
    height: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "format": self.format, "width": self.width, "height": self.height}


def sniff(data: bytes) -> Sniffed | None:
    """The file's kind and format, or None when it is none of the formats any seed accepts."""
    info = image_info(data)
    if info is not None:
        return Sniffed("image", *info)
    if is_mp4(data):
        return Sniffed("video", "mp4")
    return None


def is_mp4(data: bytes) -> bool:
    """ISO-BMFF files open with a box whose type, at offset 4, is ``ftyp``."""
    return len(data) >= 12 and data[4:8] == b"ftyp"


def image_info(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) of a PNG, JPEG or WebP from its header bytes, or None if it is none of them."""
    for reader in (_png_info, _jpeg_info, _webp_info):
        info = reader(data)
        if info is not None:
            return info if info[1] > 0 and info[2] > 0 else None
    return None


def _png_info(data: bytes) -> tuple[str, int, int] | None:
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return "png", width, height


def _jpeg_info(data: bytes) -> tuple[str, int, int] | None:
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        while i < len(data) and data[i] == 0xFF:  # fill bytes may precede a marker
            i += 1
        if i >= len(data):
            return None
        marker = data[i]
        i += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # standalone markers carry no length
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header: corrupt
            return None
        if i + 2 > len(data):
            return None
        (length,) = struct.unpack(">H", data[i : i + 2])
        # SOF0..SOF15 hold the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 7 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 3 : i + 7])
            return "jpeg", width, height
        i += length
    return None


def _webp_info(data: bytes) -> tuple[str, int, int] | None:
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # lossy: key frame start code, then 14-bit sizes
        width, height = struct.unpack("<HH", data[26:30])
        return "webp", width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:  # lossless: signature byte, then 14-bit (size - 1) fields
        (bits,) = struct.unpack("<I", data[21:25])
        return "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit (canvas size - 1) fields
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return "webp", width, height
    return None


def describe(field: str, filename: str | None, content_type: str | None, data: bytes) -> dict[str, Any]:
    """How a received file is recorded for ``/_sim/tasks``: what the client said it is, and what it is."""
    found = sniff(data)
    return {
        "field": field,
        "filename": filename,
        "content_type": content_type,
        "kind": found.kind if found else None,
        "format": found.format if found else None,
        "width": found.width if found else None,
        "height": found.height if found else None,
        "bytes": len(data),
    }
