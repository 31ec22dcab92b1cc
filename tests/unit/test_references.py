"""Reference images for image-to-video (seed 004): parsed, fetched through the SSRF guard, verified and fitted.

Real Pillow images throughout; URL fetches go to an httpx MockTransport (no network), which also shows the
request reaching the address the guard checked.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import fields
from typing import Any

import httpx
import pytest
from PIL import Image
from vidrelay_core.bodies import UploadedFile
from vidrelay_core.contract import parse_create
from vidrelay_core.errors import InvalidRequest
from vidrelay_core.jobs import Job, StoredReference
from vidrelay_core.references import (
    SIZE_MISMATCH,
    URL_PARAM,
    ReferenceInput,
    fetch_image,
    prepare_image,
    prepare_reference,
)
from vidrelay_core.store.codec import Table
from vidrelay_core.store.jobs import JobStore
from vidrelay_core.upstream.base import Account
from vidrelay_core.upstream.videos import VideosAdapter

PUBLIC_ADDRESS = "93.184.216.34"


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def solid(size: tuple[int, int], color: Any = (200, 30, 30), mode: str = "RGB", fmt: str = "PNG", **kw: Any) -> bytes:
    return encode(Image.new(mode, size, color), fmt, **kw)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def banded(size: tuple[int, int], band: int, fmt: str = "PNG") -> bytes:
    """Green, with a red band of `band` rows at the top and a blue one at the bottom."""
    image = Image.new("RGB", size, (0, 255, 0))
    image.paste((255, 0, 0), (0, 0, size[0], band))
    image.paste((0, 0, 255), (0, size[1] - band, size[0], size[1]))
    return encode(image, fmt)


def near(pixel: Any, expected: tuple[int, int, int], tolerance: int = 8) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], expected, strict=True))


def rejected(data: bytes, **kwargs: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        prepare_image(data, **kwargs)
    return caught.value


# -- fitting ----------------------------------------------------------------------------------------------------


def test_crop_scales_to_cover_and_cuts_the_overflow_evenly() -> None:
    # 1600x1200 -> cover 1280x720 scales by 0.8 (1280x960) and cuts 120 rows top and bottom: exactly the
    # 150-row source bands, so only green is left.
    prepared = prepare_image(banded((1600, 1200), 150), size="1280x720", fit="crop")

    image = decoded(prepared.data)
    assert (prepared.content_type, prepared.extension, prepared.fitted) == ("image/png", "png", True)
    assert image.format == "PNG" and image.size == (1280, 720) and image.mode == "RGB"
    for point in ((0, 0), (1279, 0), (640, 360), (0, 719), (1279, 719)):
        assert near(image.getpixel(point), (0, 255, 0), tolerance=40), point
    assert (prepared.source_format, prepared.source_width, prepared.source_height) == ("PNG", 1600, 1200)


def test_crop_is_the_default_fit() -> None:
    assert decoded(prepare_image(solid((300, 200)), size="720x1280").data).size == (720, 1280)


def test_pad_scales_to_fit_and_fills_black() -> None:
    # A white square in a 1280x720 frame: scaled to 720x720, centred, 280 black columns on each side.
    prepared = prepare_image(solid((1000, 1000), (255, 255, 255)), size="1280x720", fit="pad")

    image = decoded(prepared.data)
    assert image.size == (1280, 720)
    assert near(image.getpixel((10, 360)), (0, 0, 0))
    assert near(image.getpixel((1270, 360)), (0, 0, 0))
    assert near(image.getpixel((640, 360)), (255, 255, 255))
    assert near(image.getpixel((285, 10)), (255, 255, 255))
    assert near(image.getpixel((274, 10)), (0, 0, 0))


def test_an_image_of_the_right_size_is_sent_as_it_came() -> None:
    original = solid((1280, 720), fmt="JPEG", quality=90)

    for fit in ("crop", "pad", "none"):
        prepared = prepare_image(original, size="1280x720", fit=fit)
        assert prepared.data == original
        assert (prepared.content_type, prepared.extension, prepared.fitted) == ("image/jpeg", "jpg", False)

    webp = solid((720, 1280), fmt="WEBP")
    assert prepare_image(webp, size="720x1280", fit="none").content_type == "image/webp"


def test_fit_none_refuses_a_mismatch_in_the_seeds_words() -> None:
    error = rejected(solid((1600, 1200), fmt="JPEG"), size="1280x720", fit="none")

    assert error.param == "input_reference"
    assert SIZE_MISMATCH in error.message
    assert "1600x1200" in error.message and "1280x720" in error.message
    assert error.to_body()["error"]["param"] == "input_reference"


def test_exif_orientation_is_applied_before_comparing_and_fitting() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 720x1280, shown rotated: 1280x720
    stored = solid((720, 1280), fmt="JPEG", exif=exif.tobytes())

    prepared = prepare_image(stored, size="1280x720", fit="none")

    assert (prepared.width, prepared.height, prepared.fitted) == (1280, 720, True)
    assert decoded(prepared.data).size == (1280, 720)
    assert (prepared.source_width, prepared.source_height) == (1280, 720)


def test_transparency_becomes_black_and_odd_modes_convert() -> None:
    clear = prepare_image(solid((100, 100), (255, 255, 255, 0), mode="RGBA"), size="720x1280", fit="pad")
    assert decoded(clear.data).mode == "RGB"
    assert near(decoded(clear.data).getpixel((360, 640)), (0, 0, 0))

    for mode, color in (("L", 128), ("P", 3), ("I;16", 300), ("LA", (128, 255))):
        prepared = prepare_image(solid((64, 48), color, mode=mode), size="1280x720")
        assert decoded(prepared.data).size == (1280, 720), mode
    cmyk = prepare_image(solid((64, 48), (0, 0, 0, 0), mode="CMYK", fmt="JPEG"), size="1280x720")
    assert decoded(cmyk.data).mode == "RGB"


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_and_still_covers_the_frame() -> None:
    prepared = prepare_image(banded((4096, 3072), 384, fmt="JPEG"), size="1280x720")

    image = decoded(prepared.data)
    assert image.size == (1280, 720)
    assert (prepared.source_format, prepared.source_width, prepared.source_height) == ("JPEG", 4096, 3072)
    for point in ((640, 2), (640, 360), (640, 717)):
        assert near(image.getpixel(point), (0, 255, 0), tolerance=40), point


# -- what is not an allowed image -------------------------------------------------------------------------------


def test_a_text_file_named_png_is_refused_by_content() -> None:
    error = rejected(b"just some text, honestly\n" * 10, size="1280x720", declared_type="image/png")

    assert error.param == "input_reference"
    assert error.code == "invalid_image_format"
    assert "Invalid file format" in error.message and "image/png" in error.message
    assert "image/jpeg, image/png, image/webp" in error.message


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (solid((10, 10), 1, mode="P", fmt="GIF"), "GIF"),
        (solid((10, 10), fmt="BMP"), "BMP"),
        (solid((10, 10), fmt="TIFF"), "TIFF"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "SVG"),
        (b"%PDF-1.7\n...", "PDF"),
        (b"", "empty"),
    ],
)
def test_other_formats_are_refused_and_named(data: bytes, named: str) -> None:
    error = rejected(data, size="1280x720")

    assert error.param == "input_reference"
    assert named in error.message


def test_a_truncated_image_is_refused_here_not_upstream() -> None:
    noisy = Image.effect_noise((400, 300), 64).convert("RGB")
    data = encode(noisy, "PNG")

    error = rejected(data[: len(data) // 2], size="1280x720")

    assert error.param == "input_reference"
    assert "corrupt or truncated" in error.message


@pytest.mark.parametrize("side", [10_000, 20_000])
def test_a_decompression_bomb_is_refused_before_decoding(side: int) -> None:
    # A few kilobytes of PNG that would decode to 100 or 400 megapixels.
    bomb = solid((side, side), 0, mode="1")
    assert len(bomb) < 100_000

    error = rejected(bomb, size="1280x720")

    assert error.param == "input_reference"
    assert error.code == "image_too_large"
    assert "megapixels" in error.message


def test_the_pixel_cap_names_the_size() -> None:
    error = rejected(solid((3000, 2000), fmt="JPEG"), size="1280x720", max_pixels=5_000_000)
    assert "3000x2000" in error.message


# -- fetching by URL --------------------------------------------------------------------------------------------


def resolver(host: str, port: int) -> list[str]:
    return {"images.example": [PUBLIC_ADDRESS], "inside.example": ["10.0.0.5"]}.get(host, [])


def mock_client(routes: dict[str, httpx.Response], seen: list[httpx.Request]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return routes.get(request.url.path, httpx.Response(404))

    return httpx.Client(transport=httpx.MockTransport(handler))


def fetch_rejected(url: str, routes: dict[str, httpx.Response], **kwargs: Any) -> InvalidRequest:
    seen: list[httpx.Request] = []
    with pytest.raises(InvalidRequest) as caught:
        fetch_image(url, allow_loopback=False, client=mock_client(routes, seen), resolver=resolver, **kwargs)
    assert caught.value.param == URL_PARAM
    return caught.value


def test_fetch_connects_to_the_checked_address_with_the_hostname_kept() -> None:
    png = solid((1280, 720))
    seen: list[httpx.Request] = []
    client = mock_client({"/a.png": httpx.Response(200, content=png, headers={"content-type": "image/png"})}, seen)

    fetched = fetch_image("https://images.example/a.png", allow_loopback=False, client=client, resolver=resolver)

    assert fetched.data == png and fetched.content_type == "image/png"
    (request,) = seen
    assert request.url.host == PUBLIC_ADDRESS
    assert request.headers["host"] == "images.example"
    assert request.extensions["sni_hostname"] == "images.example"


def test_the_metadata_address_is_refused_even_where_loopback_is_allowed() -> None:
    for allow_loopback in (False, True):
        with pytest.raises(InvalidRequest) as caught:
            parse_create(
                {"prompt": "x", "input_reference": {"image_url": "http://169.254.169.254/latest/meta-data"}},
                allow_loopback_urls=allow_loopback,
            )
        assert caught.value.param == URL_PARAM
        assert "169.254.169.254" in caught.value.message
    error = fetch_rejected("https://169.254.169.254/latest/meta-data", {})
    assert "private" in error.message


def test_every_redirect_hop_goes_through_the_guard() -> None:
    routes = {
        "/a.png": httpx.Response(302, headers={"location": "https://inside.example/secret.png"}),
        "/b.png": httpx.Response(301, headers={"location": "http://169.254.169.254/latest/meta-data"}),
    }
    assert "redirect 1" in fetch_rejected("https://images.example/a.png", routes).message
    assert "redirect 1" in fetch_rejected("https://images.example/b.png", routes).message


def test_redirects_are_followed_three_times_at_most() -> None:
    png = solid((1280, 720))
    routes = {f"/{n}": httpx.Response(302, headers={"location": f"/{n + 1}"}) for n in range(5)}
    routes["/3"] = httpx.Response(200, content=png)
    seen: list[httpx.Request] = []

    fetched = fetch_image(
        "https://images.example/0", allow_loopback=False, client=mock_client(routes, seen), resolver=resolver
    )
    assert fetched.data == png and len(seen) == 4

    routes["/3"] = httpx.Response(302, headers={"location": "/4"})
    assert "more than 3 times" in fetch_rejected("https://images.example/0", routes).message


def test_an_oversized_image_is_abandoned() -> None:
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * 5000
    declared = {"/a": httpx.Response(200, content=big)}
    assert fetch_rejected("https://images.example/a", declared, max_bytes=1000).code == "image_too_large"

    def chunks() -> Any:
        for _ in range(10):
            yield b"\0" * 500

    streamed = {"/a": httpx.Response(200, content=chunks())}  # no Content-Length: counted while reading
    error = fetch_rejected("https://images.example/a", streamed, max_bytes=1000)
    assert error.code == "image_too_large" and "more than 1000 bytes" in error.message


def test_an_error_answer_or_a_dead_host_is_a_clear_400() -> None:
    assert "HTTP 404" in fetch_rejected("https://images.example/missing.png", {}).message

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(InvalidRequest) as caught:
        fetch_image(
            "https://images.example/a.png",
            allow_loopback=False,
            client=httpx.Client(transport=httpx.MockTransport(refuse)),
            resolver=resolver,
        )
    assert caught.value.param == URL_PARAM and "ConnectError" in caught.value.message


def test_a_fetched_non_image_is_refused_naming_the_url() -> None:
    seen: list[httpx.Request] = []
    client = mock_client({"/a.png": httpx.Response(200, text="<html>login</html>")}, seen)

    with pytest.raises(InvalidRequest) as caught:
        prepare_reference(
            ReferenceInput(image_url="https://images.example/a.png"),
            size="1280x720",
            allow_loopback=False,
            client=client,
            resolver=resolver,
        )
    assert caught.value.param == URL_PARAM
    assert "Invalid file format" in caught.value.message


# -- the request fields ------------------------------------------------------------------------------------------


def upload(data: bytes, content_type: str = "image/png", filename: str | None = "r.png") -> UploadedFile:
    return UploadedFile(filename, content_type, data)


def test_a_multipart_file_becomes_the_reference() -> None:
    png = solid((640, 480))

    request = parse_create(
        {"prompt": "x", "size": "1280x720", "fit": "pad"}, files={"input_reference": upload(png)}, multipart=True
    )

    assert request.reference == ReferenceInput(fit="pad", data=png, content_type="image/png", filename="r.png")
    assert "data" not in repr(request.reference).replace("image_url", "")  # bytes never reach a log line


def test_json_takes_an_image_url_object() -> None:
    request = parse_create({"prompt": "x", "input_reference": {"image_url": f"https://{PUBLIC_ADDRESS}/a.png"}})

    assert request.reference == ReferenceInput(fit="crop", image_url=f"https://{PUBLIC_ADDRESS}/a.png")


@pytest.mark.parametrize(
    ("fields", "kwargs", "param", "fragment"),
    [
        ({"input_reference": "https://example.com/a.png"}, {}, "input_reference", "image_url"),
        ({"input_reference": {}}, {}, URL_PARAM, "Missing"),
        ({"input_reference": {"image_url": 7}}, {}, URL_PARAM, "7"),
        ({"input_reference": {"file_id": "file_1"}}, {}, "input_reference.file_id", "Files API"),
        ({"input_reference": {"image_url": "ftp://example.com/a.png"}}, {}, URL_PARAM, "scheme"),
        ({"input_reference": {"image_url": "http://127.0.0.1/a.png"}}, {}, URL_PARAM, "scheme"),
        ({"input_reference": "https://x/a.png"}, {"multipart": True}, "input_reference", "file part"),
        ({"input_reference": {"image_url": "https://example.com/a"}, "fit": "stretch"}, {}, "fit", '"crop"'),
        ({"input_reference": {"image_url": "https://example.com/a"}, "fit": 1}, {}, "fit", "1"),
        ({"fit": "pad"}, {}, "fit", "without an 'input_reference'"),
    ],
)
def test_bad_references_name_the_field(fields: dict[str, Any], kwargs: dict[str, Any], param: str, fragment: str):
    with pytest.raises(InvalidRequest) as caught:
        parse_create({"prompt": "x", **fields}, **kwargs)
    assert caught.value.param == param
    assert fragment in caught.value.message


def test_loopback_image_urls_only_where_the_local_stack_allows_them() -> None:
    request = parse_create(
        {"prompt": "x", "input_reference": {"image_url": "http://127.0.0.1:9/a.png"}}, allow_loopback_urls=True
    )
    assert request.reference is not None and request.reference.image_url == "http://127.0.0.1:9/a.png"


def test_fingerprint_covers_the_image_and_keeps_text_only_hashes() -> None:
    def with_image(data: bytes) -> str:
        return parse_create({"prompt": "x"}, files={"input_reference": upload(data)}, multipart=True).fingerprint()

    assert with_image(b"one") == with_image(b"one") != with_image(b"two")

    text_only = parse_create({"prompt": "x"})
    before = {f.name: getattr(text_only, f.name) for f in fields(text_only) if f.name not in ("references", "options")}
    assert text_only.fingerprint() == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()


# -- job record and upstream ------------------------------------------------------------------------------------


def job(**changes: Any) -> Job:
    return Job(
        id="video_1",
        tenant="t",
        model="sora-2",
        family="videos",
        provider="apiyi",
        prompt="waves",
        seconds="4",
        size="1280x720",
        created_at=1.0,
    ).with_changes(**changes)


STORED_PNG = StoredReference("input_reference", "inputs/t/video_1/1-input_reference.png", "image/png", "image", 9)


def test_the_job_record_keeps_the_key_never_the_bytes() -> None:
    store = JobStore(Table(object(), "table"))
    with_reference = job(references=(STORED_PNG,))

    item = store.job_item(with_reference)

    assert item["references"][0]["key"] == "inputs/t/video_1/1-input_reference.png"
    assert b"\x89PNG" not in json.dumps(item, default=str).encode()
    assert JobStore.job_from_item(item) == with_reference.with_changes(next_check_at=None)
    plain = store.job_item(job())
    assert JobStore.job_from_item(plain).references == ()


def test_the_adapter_sends_a_reference_as_a_multipart_file() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "video_up", "status": "queued", "progress": 0})

    adapter = VideosAdapter(
        Account("videos", "https://up.example", "sk-up"), httpx.Client(transport=httpx.MockTransport(handler))
    )
    png = solid((1280, 720))

    adapter.submit(job(references=(STORED_PNG,)), [(STORED_PNG, png)])
    adapter.submit(job())

    multipart, plain = seen
    assert multipart.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = multipart.read()
    for name, value in (("model", "sora-2"), ("prompt", "waves"), ("seconds", "4"), ("size", "1280x720")):
        assert f'name="{name}"\r\n\r\n{value}\r\n'.encode() in body
    assert b'name="input_reference"; filename="reference.png"\r\nContent-Type: image/png\r\n\r\n' + png in body
    assert plain.headers["content-type"] == "application/json"
    assert json.loads(plain.read()) == {"model": "sora-2", "prompt": "waves", "seconds": "4", "size": "1280x720"}
