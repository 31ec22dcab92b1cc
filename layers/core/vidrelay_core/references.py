"""Reference images for image-to-video: fetched (when given by URL), verified and fitted to the model's rules.

Sora image-to-video (seed 004) takes exactly one JPEG, PNG or WebP whose pixel size equals the requested `size`;
anything else is a 400 upstream ("Inpaint image must match the requested width and height"). vidrelay fits the
image for the client instead (`fit`): `crop` (default) scales it to cover the frame and cuts the overflow
evenly, `pad` scales it to fit inside and fills the rest with black, `none` keeps the upstream's rule and
refuses a mismatch. An image that already has the right size is sent as it came; a fitted one is sent as PNG.

The bytes are never trusted by name or content type: Pillow decodes them with only the JPEG, PNG and WebP
decoders enabled, after a pixel-count check on the header, so a text file called `.png` or a decompression bomb
is a clear 400 rather than a crash or an out-of-memory kill. (Only the api imports this module, and only when
a request carries a reference: the other functions never load Pillow.)
"""

from __future__ import annotations

import io
import time
import warnings
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx
from PIL import Image, ImageOps, UnidentifiedImageError

from .contract import FITS, ReferenceInput
from .errors import InvalidRequest
from .http import user_url_client
from .ssrf import ANY_PORT, Resolver, UrlRejected, check_url, system_resolver

URL_PARAM = "input_reference.image_url"
FILE_PARAM = "input_reference"

# Seed 004: "Accepted formats: image/jpeg / image/png / image/webp".
CONTENT_TYPES: dict[str, str] = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
EXTENSIONS: dict[str, str] = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
VIDEO_MP4 = "video/mp4"

# A fetched image may be larger than an inline upload (API Gateway's ~6 MB body limit caps those).
MAX_FETCH_BYTES = 20 * 1024 * 1024
FETCH_TIMEOUT_S = 10.0
MAX_REDIRECTS = 3
# Checked on the header, before any pixel is decoded: 50 megapixels covers every camera short of the 48+ MP
# phone sensors' full-resolution mode, and decodes within the api function's memory.
MAX_PIXELS = 50_000_000
# The seed's wording for a size mismatch, kept so clients that match on it keep working.
SIZE_MISMATCH = "Inpaint image must match the requested width and height"

# Magic numbers of formats Pillow is not allowed to open here, only to name them in the error.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"8BPS", "PSD"),
)


@dataclass(frozen=True)
class PreparedImage:
    """The image as it will be sent upstream. `source_*` describe what the client gave."""

    data: bytes = field(repr=False)
    content_type: str
    extension: str
    width: int
    height: int
    source_format: str
    source_width: int
    source_height: int
    fitted: bool


@dataclass(frozen=True)
class FetchedImage:
    data: bytes = field(repr=False)
    content_type: str | None
    url: str


# -- fetching --------------------------------------------------------------------------------------------------


def fetch_image(
    url: str,
    *,
    allow_loopback: bool,
    client: httpx.Client | None = None,
    resolver: Resolver = system_resolver,
    max_bytes: int = MAX_FETCH_BYTES,
    timeout_s: float = FETCH_TIMEOUT_S,
    max_redirects: int = MAX_REDIRECTS,
    param: str = URL_PARAM,
) -> FetchedImage:
    """GETs a client-given image URL through the SSRF guard: every hop (up to `max_redirects` redirects) is
    checked and connected to the address that was checked; the body is streamed and abandoned past
    `max_bytes`; the whole fetch gets `timeout_s`."""
    client = client or user_url_client()
    deadline = time.monotonic() + timeout_s
    current = url
    for hop in range(max_redirects + 1):
        where = "the URL" if hop == 0 else f"redirect {hop} (to {_show(current)})"
        try:
            # Checked again right before the request: the name may resolve elsewhere than at validation.
            checked = check_url(current, ports=ANY_PORT, allow_loopback=allow_loopback, resolver=resolver)
        except UrlRejected as exc:
            raise _url_error(url, f"{where} {exc}", code="invalid_url", param=param) from None
        target, host_header, extensions = checked.pinned()
        headers = {**host_header, "Accept": "image/png, image/jpeg, image/webp, video/mp4", "User-Agent": "vidrelay/1"}
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _url_error(
                url, f"could not be fetched within {timeout_s:g} s", code="image_fetch_failed", param=param
            )
        try:
            request = client.build_request(
                "GET", target, headers=headers, timeout=httpx.Timeout(remaining), extensions=extensions
            )
            response = client.send(request, stream=True, follow_redirects=False)
        except httpx.TimeoutException:
            raise _url_error(
                url, f"could not be fetched within {timeout_s:g} s", code="image_fetch_failed", param=param
            ) from None
        except httpx.TransportError as exc:
            raise _url_error(
                url, f"could not be fetched ({type(exc).__name__})", code="image_fetch_failed", param=param
            ) from None
        try:
            if response.is_redirect:
                location = response.headers.get("location")
                if not location:
                    raise _url_error(url, f"answered HTTP {response.status_code} without a Location", param=param)
                current = urljoin(current, location)
                continue
            if response.status_code != 200:
                raise _url_error(url, f"answered HTTP {response.status_code}", code="image_fetch_failed", param=param)
            data = _read_capped(response, url, max_bytes=max_bytes, deadline=deadline, timeout_s=timeout_s, param=param)
            content_type = response.headers.get("content-type")
            return FetchedImage(data, content_type.split(";", 1)[0].strip().lower() if content_type else None, url)
        finally:
            response.close()
    raise _url_error(url, f"redirected more than {max_redirects} times", code="image_fetch_failed", param=param)


def _read_capped(
    response: httpx.Response, url: str, *, max_bytes: int, deadline: float, timeout_s: float, param: str = URL_PARAM
) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(url, f"{int(declared)} bytes (Content-Length)", max_bytes, param)
    chunks: list[bytes] = []
    received = 0
    try:
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received > max_bytes:
                raise _too_large(url, f"more than {max_bytes} bytes", max_bytes, param)
            if time.monotonic() > deadline:
                raise _url_error(
                    url, f"could not be fetched within {timeout_s:g} s", code="image_fetch_failed", param=param
                )
            chunks.append(chunk)
    except httpx.TimeoutException:
        raise _url_error(
            url, f"could not be fetched within {timeout_s:g} s", code="image_fetch_failed", param=param
        ) from None
    except httpx.HTTPError as exc:
        raise _url_error(
            url, f"could not be read ({type(exc).__name__})", code="image_fetch_failed", param=param
        ) from None
    return b"".join(chunks)


def _url_error(url: str, what: str, *, code: str = "invalid_value", param: str = URL_PARAM) -> InvalidRequest:
    field_name = param.split(".", 1)[0]
    return InvalidRequest(
        param,
        url,
        message=f"Invalid value for '{param}': {_show(url)} was given, but {what}. "
        f"Give an https URL of a file the model takes, or upload the file as '{field_name}'.",
        code=code,
    )


def _too_large(url: str, size: str, max_bytes: int, param: str = URL_PARAM) -> InvalidRequest:
    return InvalidRequest(
        param,
        url,
        message=f"Invalid value for '{param}': the file at {_show(url)} is {size}; at most {max_bytes} bytes "
        f"({max_bytes // (1024 * 1024)} MiB) are accepted.",
        code="image_too_large",
    )


def prepare_reference(
    reference: ReferenceInput,
    *,
    size: str,
    allow_loopback: bool,
    formats: tuple[str, ...] = tuple(CONTENT_TYPES.values()),
    must_match_size: bool = True,
    max_bytes: int = MAX_FETCH_BYTES,
    client: httpx.Client | None = None,
    resolver: Resolver = system_resolver,
) -> PreparedImage:
    """The input ready for the upstream, from an upload or from its URL: an image checked (and fitted or
    converted as the model needs), or an MP4 checked (Seedance video references)."""
    param = reference.field
    data = reference.data or b""
    declared = reference.content_type
    if reference.url is not None:
        param = f"{reference.field}.{'video_url' if reference.video_url else 'image_url'}"
        fetched = fetch_image(
            reference.url,
            allow_loopback=allow_loopback,
            client=client,
            resolver=resolver,
            max_bytes=max_bytes,
            param=param,
        )
        data, declared = fetched.data, fetched.content_type
    elif len(data) > max_bytes:
        raise InvalidRequest(
            param,
            f"{len(data)} bytes",
            message=f"The '{param}' file is {len(data)} bytes; at most {max_bytes} are accepted.",
            code="file_too_large",
        )
    if reference.kind == "video" or data[4:8] == b"ftyp":
        return prepare_video(data, param=param, formats=formats)
    return prepare_image(
        data,
        size=size,
        fit=reference.fit,
        param=param,
        declared_type=declared,
        formats=formats,
        must_match_size=must_match_size,
    )


def prepare_video(data: bytes, *, param: str, formats: tuple[str, ...]) -> PreparedImage:
    """Checks that `data` is a whole MP4 (its boxes parse and it has a video track), for models that take
    video references (seed 001: "videos (mp4)")."""
    from .errors import TransferError
    from .mp4 import Mp4Scanner

    if VIDEO_MP4 not in formats:
        raise InvalidRequest(
            param,
            message=f"The '{param}' file is a video; this field takes images only ({', '.join(formats)}).",
            code="invalid_image_format",
        )
    scanner = Mp4Scanner()
    try:
        scanner.feed(data)
        info = scanner.finish()
    except TransferError as exc:  # NotAnMp4 or TruncatedDownload: the scanner's verdicts
        raise InvalidRequest(
            param,
            message=f"Invalid file format: the '{param}' file is not a playable MP4 ({exc}). Allowed: "
            f"{', '.join(formats)}.",
            code="invalid_video_format",
        ) from None
    return PreparedImage(data, VIDEO_MP4, "mp4", info.width, info.height, "MP4", info.width, info.height, False)


# -- preparing -------------------------------------------------------------------------------------------------


def parse_size(size: str) -> tuple[int, int]:
    width, _, height = size.partition("x")
    return int(width), int(height)


def prepare_image(
    data: bytes,
    *,
    size: str,
    fit: str = "crop",
    param: str = FILE_PARAM,
    declared_type: str | None = None,
    formats: tuple[str, ...] = tuple(CONTENT_TYPES.values()),
    must_match_size: bool = True,
    max_pixels: int = MAX_PIXELS,
) -> PreparedImage:
    """Verifies `data` is a JPEG, PNG or WebP image (whatever its name or declared type says) and returns it
    at exactly `size` as `fit` says. Every refusal is an InvalidRequest naming `param`."""
    if fit not in FITS:
        raise InvalidRequest("fit", fit, " | ".join(f'"{f}"' for f in FITS))
    target = parse_size(size)
    allowed_formats = [name for name, mime in CONTENT_TYPES.items() if mime in formats]
    # Every decoder we trust is enabled: a format the model does not take is converted losslessly below.
    image = _open(data, param, declared_type, list(CONTENT_TYPES), max_pixels)
    try:
        source_format = str(image.format)
        convert = source_format not in allowed_formats
        header_size = image.size
        if (
            must_match_size
            and image.format == "JPEG"
            and fit != "none"
            and _oriented(header_size, _orientation(image)) != target
        ):
            # Decoded at the smallest DCT scale that still covers the target: a camera-sized photo stays cheap.
            image.draft("RGB", _oriented(target, _orientation(image)))
        _decode(image, param)
        orientation = _orientation(image)
        source_size = _oriented(header_size, orientation)
        animated = bool(getattr(image, "is_animated", False))
        right_size = not must_match_size or (source_size == target and orientation == 1 and not animated)
        if right_size and not convert:
            # Already right: sent exactly as it came (Pillow decoded every pixel, so it is not corrupt).
            return PreparedImage(
                data,
                CONTENT_TYPES[source_format],
                EXTENSIONS[source_format],
                source_size[0],
                source_size[1],
                source_format,
                source_size[0],
                source_size[1],
                fitted=False,
            )
        if must_match_size and fit == "none" and source_size != target:
            raise InvalidRequest(
                param,
                f"{source_size[0]}x{source_size[1]}",
                message=f"{SIZE_MISMATCH}: the '{param}' image is {source_size[0]}x{source_size[1]} pixels and "
                f'the requested size is {size}. Send an image of exactly {size}, or use fit "crop" or '
                '"pad" to have it fitted.',
                code="invalid_value",
            )
        # Shown the way viewers show it (EXIF orientation applied), then fitted.
        frame = ImageOps.exif_transpose(image) if orientation != 1 else image
        frame = _as_rgb_or_rgba(frame, param)
        if must_match_size and frame.size != target:
            frame = _fitted(frame, target, fit)
        frame = _opaque(frame)
        out = io.BytesIO()
        # PNG is lossless; a model that takes no PNG (none of the seeds) would get a high-quality JPEG.
        out_format = "PNG" if "PNG" in allowed_formats or not allowed_formats else "JPEG"
        frame.save(out, format=out_format, **({"quality": 95} if out_format == "JPEG" else {}))
        return PreparedImage(
            out.getvalue(),
            CONTENT_TYPES[out_format],
            EXTENSIONS[out_format],
            frame.size[0],
            frame.size[1],
            source_format,
            source_size[0],
            source_size[1],
            fitted=True,
        )
    finally:
        image.close()


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block is ignored, as viewers do
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _oriented(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """The size as displayed: EXIF orientations 5 to 8 swap width and height."""
    return (size[1], size[0]) if orientation >= 5 else size


def _open(data: bytes, param: str, declared_type: str | None, allowed: list[str], max_pixels: int) -> Image.Image:
    allowed_text = ", ".join(CONTENT_TYPES[f] for f in allowed)
    if not data:
        raise InvalidRequest(param, message=f"The '{param}' image is empty. Allowed: {allowed_text}.")
    try:
        with warnings.catch_warnings():
            # The explicit cap below is stricter than Pillow's warning threshold and names the size.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=allowed)
    except Image.DecompressionBombError:
        raise _too_many_pixels(param, None, max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        found = _sniff(data)
        claimed = f" (sent as {declared_type})" if declared_type else ""
        raise InvalidRequest(
            param,
            message=f"Invalid file format: the '{param}' file{claimed} is {found}, not an image vidrelay can use. "
            f"Allowed: {allowed_text}.",
            code="invalid_image_format",
        ) from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise _too_many_pixels(param, (width, height), max_pixels)
    return image


def _decode(image: Image.Image, param: str) -> None:
    """Decodes every pixel: a truncated or corrupt file fails here, not upstream."""
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidRequest(
            param,
            message=f"Invalid file format: the '{param}' {image.format} image is corrupt or truncated "
            f"({_reason(exc)}).",
            code="invalid_image_format",
        ) from None


def _as_rgb_or_rgba(image: Image.Image, param: str) -> Image.Image:
    """RGB or RGBA, whatever the source mode (palette, greyscale, 16-bit, CMYK)."""
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    try:
        return image.convert("RGBA" if has_alpha else "RGB")
    except (OSError, ValueError) as exc:
        raise InvalidRequest(
            param,
            message=f"Invalid file format: the '{param}' image uses pixel mode {image.mode}, which cannot be "
            f"converted ({_reason(exc)}).",
            code="invalid_image_format",
        ) from None


def _fitted(image: Image.Image, target: tuple[int, int], fit: str) -> Image.Image:
    width, height = image.size
    target_w, target_h = target
    if fit == "pad":
        scale = min(target_w / width, target_h / height)
        inner = (max(1, min(target_w, round(width * scale))), max(1, min(target_h, round(height * scale))))
        resized = image.resize(inner, Image.Resampling.LANCZOS, reducing_gap=3.0)
        canvas = Image.new(image.mode, target, (0, 0, 0, 255) if image.mode == "RGBA" else (0, 0, 0))
        canvas.paste(resized, ((target_w - inner[0]) // 2, (target_h - inner[1]) // 2))
        frame = canvas
    else:
        # Cover: the largest centred box of the target's aspect ratio, scaled to the target.
        scale = max(target_w / width, target_h / height)
        box_w, box_h = target_w / scale, target_h / scale
        left, top = (width - box_w) / 2, (height - box_h) / 2
        frame = image.resize(
            target, Image.Resampling.LANCZOS, box=(left, top, left + box_w, top + box_h), reducing_gap=3.0
        )
    return frame


def _opaque(frame: Image.Image) -> Image.Image:
    if frame.mode != "RGBA":
        return frame
    # A video frame has no alpha: transparent areas become black, like the padding.
    return Image.alpha_composite(Image.new("RGBA", frame.size, (0, 0, 0, 255)), frame).convert("RGB")


def _too_many_pixels(param: str, size: tuple[int, int] | None, max_pixels: int) -> InvalidRequest:
    given = f"is {size[0]}x{size[1]} pixels" if size else "has far too many pixels (a decompression bomb?)"
    return InvalidRequest(
        param,
        message=f"The '{param}' image {given}; at most {max_pixels // 1_000_000} megapixels are accepted. "
        "Scale it down before sending it.",
        code="image_too_large",
    )


def _sniff(data: bytes) -> str:
    if data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "a damaged image (its header cannot be read)"
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return f"a {name} file"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "a HEIF/AVIF file"
    head = data[:512].lstrip()
    if head.startswith((b"<svg", b"<?xml")):
        return "an SVG/XML document"
    if head[:1] in (b"{", b"[") or head.lower().startswith((b"<!doctype", b"<html")):
        return "a text document"
    try:
        data[:512].decode("utf-8")
    except UnicodeDecodeError:
        return "unrecognised binary data"
    return "text"


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _show(value: str) -> str:
    return repr(value) if len(value) <= 200 else repr(value[:197] + "...")


def describe(image: PreparedImage) -> dict[str, Any]:
    """What a log line may say about a prepared image (never its bytes)."""
    return {
        "content_type": image.content_type,
        "bytes": len(image.data),
        "source": f"{image.source_format} {image.source_width}x{image.source_height}",
        "fitted": image.fitted,
    }
