"""What the simulator's videos show: the prompt as a caption and, for image-to-video, the reference images.

A person opening an output must be able to tell it from another one and see that an image-to-video job used its
image, so every frame carries the prompt, wrapped on a translucent band at the bottom, over either a reference
image (fitted whole into the frame, over a blurred and darkened fill of itself) or, with none, a striped gradient
whose hue comes from the prompt. Several references (Seedance) are shown in turn. A slow pan across each picture
and a progress line along the bottom edge make it visibly a video.

Cheap by construction: each picture and the caption are drawn and converted to YUV once; a frame is a window
into the picture's planes with the caption blended into its band, all numpy slicing and small integer sums.
Colours are converted as BT.709 and the stream is tagged so, which is what players assume for HD video anyway.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from vidrelay.simulator.faults import strip_directives

PAN = 0.06  # share of the frame's width and height the picture travels over its segment
FILL_SCALE = 8  # the blurred fill is drawn at 1/8 of the frame: a blur at full size would cost ~100x more
FILL_DIM = 0.55  # the fill is darkened, so the fitted image stands out from its own blurred edges
CAPTION_SHARE = 0.4  # the caption band may take at most this share of the frame's height
FONT_SHARE = 1 / 20  # font size as a share of the frame's shorter side: 36 px at 720p, 108 px at 4K
MIN_FONT_PX = 10
BAND_ALPHA = 150  # the caption band's opacity out of 255: the picture stays visible through it
TEXT_RGB = (255, 255, 255)
ELLIPSIS = "…"
BT709 = 1  # the code of BT.709 for primaries, transfer and matrix alike (ITU-T H.273)


@dataclass(frozen=True)
class Scene:
    """What a video shows besides its size and length: the prompt as the upstream received it (its ``[sim:...]``
    directives are dropped here, as they are no part of the picture) and the reference images in the order they
    are shown."""

    prompt: str = ""
    references: tuple[bytes, ...] = ()

    @cached_property
    def caption(self) -> str:
        return strip_directives(self.prompt)

    @cached_property
    def reference_digests(self) -> tuple[str, ...]:
        return tuple(hashlib.sha256(data).hexdigest() for data in self.references)

    def inspect_json(self) -> dict[str, object]:
        return {
            "caption": self.caption,
            "references": [
                {"sha256": digest, "bytes": len(data)}
                for digest, data in zip(self.reference_digests, self.references, strict=True)
            ],
        }


@dataclass(frozen=True)
class Planes:
    """A picture in yuv420p: full-size luma, half-size chroma."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray


@dataclass(frozen=True)
class Caption:
    """The caption band, ready to blend: where it sits and, per plane, its colour times alpha and 256 - alpha."""

    top: int
    left: int
    color: Planes  # colour * alpha (uint16, alpha out of 256)
    keep: Planes  # 256 - alpha (uint16): how much of the picture underneath shows


def render(scene: Scene, width: int, height: int, count: int) -> Iterator[np.ndarray]:
    """Yield ``count`` frames as stacked yuv420p planes (the layout ``av.VideoFrame.from_ndarray`` expects)."""
    pan_x, pan_y = _even(width * PAN / 2), _even(height * PAN / 2)
    canvas = (width + 2 * pan_x, height + 2 * pan_y)
    pictures = [_picture(image, width, height, canvas) for image in _decoded(scene.references, (width, height))]
    if not pictures:
        pictures = [_gradient(scene.caption, canvas)]
    caption = _caption(scene.caption, width, height)
    bar_height = max(2, _even(height / 180))
    buffer = np.empty((height * 3 // 2, width), dtype=np.uint8)
    y, u, v = _views(buffer, width, height)
    for index, (segment, share) in enumerate(_timeline(len(pictures), count)):
        if segment % 2:  # alternate segments pan the other way, so a cut between two pictures is easy to see
            share = 1 - share
        x0, y0 = _even(share * 2 * pan_x), _even(share * 2 * pan_y)
        picture = pictures[segment]
        y[:] = picture.y[y0 : y0 + height, x0 : x0 + width]
        u[:] = picture.u[y0 // 2 : (y0 + height) // 2, x0 // 2 : (x0 + width) // 2]
        v[:] = picture.v[y0 // 2 : (y0 + height) // 2, x0 // 2 : (x0 + width) // 2]
        if caption is not None:
            _blend(caption, y, u, v)
        filled = _even(width * (index + 1) / count)
        y[height - bar_height :, :filled] = 235  # white in BT.709's limited range
        u[(height - bar_height) // 2 :, : filled // 2] = 128
        v[(height - bar_height) // 2 :, : filled // 2] = 128
        yield buffer


def _timeline(pictures: int, count: int) -> Iterator[tuple[int, float]]:
    """(picture shown, how far through its segment) for each of ``count`` frames: equal segments, in order."""
    starts = [-(-number * count // pictures) for number in range(pictures + 1)]  # ceil: segment n starts there
    for number in range(pictures):
        length = starts[number + 1] - starts[number]
        for step in range(length):
            yield number, step / max(1, length - 1)


def _even(value: float) -> int:
    """Round down to an even number: yuv420p halves chroma, so offsets and sizes stay on whole chroma samples."""
    return int(value) // 2 * 2


def _views(buffer: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    quarter = (height // 2) * (width // 2)
    flat = buffer.reshape(-1)
    y = flat[: width * height].reshape(height, width)
    u = flat[width * height : width * height + quarter].reshape(height // 2, width // 2)
    v = flat[width * height + quarter :].reshape(height // 2, width // 2)
    return y, u, v


def to_planes(image: Image.Image) -> Planes:
    """An RGB image (even width and height) in BT.709 yuv420p, converted by FFmpeg's swscale."""
    width, height = image.size
    frame = av.VideoFrame.from_image(image).reformat(format="yuv420p", dst_colorspace="ITU709")
    y, u, v = _views(frame.to_ndarray(), width, height)
    return Planes(y.copy(), u.copy(), v.copy())


def _decoded(references: tuple[bytes, ...], size: tuple[int, int]) -> Iterator[Image.Image]:
    """The references as RGB images; one Pillow cannot read is left out (and said so) rather than failing the
    video, since the upstream already accepted it by its header."""
    for number, data in enumerate(references, start=1):
        try:
            image = _read_image(data, size)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            print(f"vidrelay simulator: reference image {number} is not drawn: {exc}", file=sys.stderr)
            continue
        yield image


def _read_image(data: bytes, size: tuple[int, int]) -> Image.Image:
    opened = Image.open(io.BytesIO(data))
    opened.draft("RGB", size)  # a large JPEG is decoded straight at a fraction of its size: much faster
    image: Image.Image = ImageOps.exif_transpose(opened)  # a phone's portrait JPEG is stored sideways
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", image.size, (32, 32, 32))  # transparent areas on a dark grey, not on black noise
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def _picture(image: Image.Image, width: int, height: int, canvas: tuple[int, int]) -> Planes:
    """The image fitted whole into the frame, centred on a canvas that leaves room to pan, over a blurred fill."""
    small = (max(2, canvas[0] // FILL_SCALE), max(2, canvas[1] // FILL_SCALE))
    fill = ImageOps.fit(image, small, method=Image.Resampling.BILINEAR)
    fill = fill.filter(ImageFilter.GaussianBlur(radius=max(1, min(small) // 12)))
    fill = Image.eval(fill, lambda level: int(level * FILL_DIM)).resize(canvas, Image.Resampling.BILINEAR)
    fitted = ImageOps.contain(image, (width, height), method=Image.Resampling.BICUBIC)
    fill.paste(fitted, ((canvas[0] - fitted.width) // 2, (canvas[1] - fitted.height) // 2))
    return to_planes(fill)


def _gradient(caption: str, canvas: tuple[int, int]) -> Planes:
    """A diagonal gradient with soft stripes (so the pan shows) in two colours taken from the prompt's hash."""
    digest = hashlib.sha256(caption.encode()).digest()
    hue = digest[0] / 255
    width, height = max(2, canvas[0] // 4), max(2, canvas[1] // 4)
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    along = (xs + ys) / 2
    stripes = 0.5 + 0.5 * np.sin((xs * width + ys * height) / max(width, height) * 24 * np.pi)
    start = np.array(colorsys.hsv_to_rgb(hue, 0.65, 0.85), dtype=np.float32)
    end = np.array(colorsys.hsv_to_rgb((hue + 0.35) % 1.0, 0.75, 0.45), dtype=np.float32)
    rgb = start + along[..., None] * (end - start)
    rgb *= (0.85 + 0.15 * stripes)[..., None]
    small = Image.fromarray(np.clip(rgb * 255, 0, 255).astype(np.uint8), "RGB")
    return to_planes(small.resize(canvas, Image.Resampling.BILINEAR))


def font_for(width: int, height: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled default (Aileron, drawn by FreeType at any size): nothing to download or install.
    return ImageFont.load_default(size=max(MIN_FONT_PX, round(min(width, height) * FONT_SHARE)))


def wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: int, max_lines: int) -> list[str]:
    """The text's lines as drawn: words wrapped to ``max_width`` pixels (a word too long for a line is broken),
    the prompt's own line breaks kept, and at most ``max_lines`` lines, the last one ending in an ellipsis when
    text was left out."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if font.getlength(candidate) <= max_width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while font.getlength(word) > max_width and len(word) > 1:
                cut = max(1, _fitting_prefix(word, font, max_width))
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        if line:
            lines.append(line)
    if len(lines) <= max_lines:
        return lines
    kept = lines[:max_lines]
    last = kept[-1]
    while last and font.getlength(last + ELLIPSIS) > max_width:
        last = last[:-1]
    kept[-1] = last.rstrip() + ELLIPSIS
    return kept


def _fitting_prefix(word: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: int) -> int:
    low, high = 1, len(word)
    while low < high:
        middle = (low + high + 1) // 2
        if font.getlength(word[:middle]) <= max_width:
            low = middle
        else:
            high = middle - 1
    return low


@dataclass(frozen=True)
class CaptionLayout:
    """Where the caption goes in a frame: its band (a rounded box) and the text lines inside it."""

    box: tuple[int, int, int, int]  # left, top, right, bottom, in frame pixels
    text_origin: tuple[int, int]
    lines: tuple[str, ...]
    line_height: int
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont


def caption_layout(caption: str, width: int, height: int) -> CaptionLayout | None:
    """The caption's place in a ``width`` x ``height`` frame, or None when there is no text to show."""
    if not caption.strip():
        return None
    font = font_for(width, height)
    ascent, descent = font.getmetrics() if isinstance(font, ImageFont.FreeTypeFont) else (10, 2)
    line_height = round((ascent + descent) * 1.15)
    margin = max(2, round(min(width, height) * 0.03))
    padding = max(2, line_height // 3)
    bottom_room = max(2, _even(height / 180)) + margin  # clear of the progress line
    max_lines = max(1, int((height * CAPTION_SHARE - 2 * padding) // line_height))
    lines = wrap(caption, font, max(1, width - 2 * (margin + padding)), max_lines)
    if not lines:
        return None
    box_height = len(lines) * line_height + 2 * padding
    top = max(0, height - bottom_room - box_height)
    box = (margin, top, width - margin, min(height, top + box_height))
    return CaptionLayout(box, (margin + padding, top + padding), tuple(lines), line_height, font)


def _caption(caption: str, width: int, height: int) -> Caption | None:
    layout = caption_layout(caption, width, height)
    if layout is None:
        return None
    left, top, right, bottom = layout.box
    left, top = _even(left), _even(top)
    right, bottom = min(width, left + _even(right - left + 1)), min(height, top + _even(bottom - top + 1))
    band = Image.new("RGBA", (right - left, bottom - top), (0, 0, 0, 0))
    draw = ImageDraw.Draw(band)
    radius = max(1, layout.line_height // 4)
    draw.rounded_rectangle((0, 0, band.width - 1, band.height - 1), radius=radius, fill=(0, 0, 0, BAND_ALPHA))
    x, y = layout.text_origin[0] - left, layout.text_origin[1] - top
    for line in layout.lines:
        draw.text((x, y), line, font=layout.font, fill=(*TEXT_RGB, 255))
        y += layout.line_height
    color = to_planes(band.convert("RGB"))
    alpha = np.asarray(band.getchannel("A"), dtype=np.uint16)
    alpha = alpha + (alpha >> 7)  # 0..255 → 0..256, so full opacity replaces the picture exactly
    chroma_alpha = (alpha[0::2, 0::2] + alpha[1::2, 0::2] + alpha[0::2, 1::2] + alpha[1::2, 1::2]) // 4
    return Caption(
        top=top,
        left=left,
        color=Planes(
            color.y.astype(np.uint16) * alpha,
            color.u.astype(np.uint16) * chroma_alpha,
            color.v.astype(np.uint16) * chroma_alpha,
        ),
        keep=Planes(256 - alpha, 256 - chroma_alpha, 256 - chroma_alpha),
    )


def _blend(caption: Caption, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
    # Blending in YUV equals blending in RGB (the conversion is affine), at a fraction of the cost.
    for plane, color, keep, scale in (
        (y, caption.color.y, caption.keep.y, 1),
        (u, caption.color.u, caption.keep.u, 2),
        (v, caption.color.v, caption.keep.v, 2),
    ):
        top, left = caption.top // scale, caption.left // scale
        region = plane[top : top + color.shape[0], left : left + color.shape[1]]
        region[:] = (region * keep + color) >> 8
