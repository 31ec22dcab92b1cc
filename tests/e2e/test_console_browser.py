"""The console at /console, in headless Chromium (Debian's package) against `vidrelay local`: a user logs in with
an API key, creates a video, watches it complete and plays it, reads and replays its webhook deliveries, manages
webhook endpoints and reads the usage chart. Each test saves a screenshot of what it saw."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import LocalStackProcess, wait_for_status
from tests.e2e.test_docs_browser import CHROMIUM, CHROMIUM_ARGS
from vidrelay.receiver import Receiver

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make chromium)"),
]

VIDRELAY = Path(sys.executable).with_name("vidrelay")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 60_000


@dataclass
class Tenant:
    """A tenant of its own, so the list, deliveries and usage the console shows are only this module's."""

    key: str
    stack: LocalStackProcess

    def http(self) -> httpx.Client:
        return self.stack.http(self.key)


def _keys(stack: LocalStackProcess, *args: str) -> str:
    done = subprocess.run(
        [str(VIDRELAY), "keys", *args], cwd=stack.log_path.parent, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def tenant(local_stack: LocalStackProcess) -> Tenant:
    return Tenant(
        _keys(local_stack, "create", "--tenant", f"console-{secrets.token_hex(4)}").splitlines()[-1], local_stack
    )


@dataclass
class Browser:
    """One page of the console, watching what it loads and what goes wrong in it."""

    page: Any
    root: str
    allowed_hosts: set[str]
    elsewhere: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def open(self, hash_route: str = "") -> None:
        self.page.goto(f"{self.root}/console{hash_route}")

    def log_in(self, key: str) -> None:
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_label("API key").press("Enter")
        self.page.locator("#nav").wait_for(state="visible", timeout=TIMEOUT_MS)

    def shot(self, path: Path) -> None:
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 5_000

    def check_clean(self, key: str) -> None:
        assert self.elsewhere == [], f"the console loaded files from another host: {self.elsewhere}"
        assert self.problems == [], self.problems
        assert not [u for u in self.urls if key in u], "the API key went into a URL"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def console(chromium: Any, local_stack: LocalStackProcess) -> Iterator[Browser]:
    yield from _browser(chromium, local_stack, DESKTOP)


@pytest.fixture
def phone(chromium: Any, local_stack: LocalStackProcess) -> Iterator[Browser]:
    yield from _browser(chromium, local_stack, PHONE)


def _browser(chromium: Any, stack: LocalStackProcess, viewport: dict[str, int]) -> Iterator[Browser]:
    root = stack.api_url.removesuffix("/v1")
    # The API, and the S3 endpoint the presigned MP4 URLs point at: nothing else.
    hosts = {urlsplit(root).netloc, urlsplit(str(stack.info["aws_endpoint_url"])).netloc}
    context = chromium.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    seen = Browser(page, root, hosts)
    page.on("request", lambda r: _watch(seen, r.url))
    page.on("console", lambda m: _console_message(seen, m.type, m.text))
    page.on("pageerror", lambda e: seen.problems.append(str(e)))
    try:
        yield seen
    finally:
        context.close()


def _console_message(seen: Browser, kind: str, text: str) -> None:
    # Chromium logs every 4xx answer; the tests provoke those on purpose and check what the page shows instead.
    if kind == "error" and not text.startswith("Failed to load resource: the server responded with a status of 4"):
        seen.problems.append(text)


def _watch(seen: Browser, url: str) -> None:
    seen.urls.append(url)
    if urlsplit(url).netloc not in seen.allowed_hosts:
        seen.elsewhere.append(url)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def _video(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body = {"model": "sora-2", "prompt": "a lighthouse at dusk, waves below", "seconds": "4", "size": "1280x720"}
    with tenant.http() as api:
        return dict(api.post("/videos", json={**body, **fields}).raise_for_status().json())


# -- the page itself ------------------------------------------------------------------------------------------


def test_the_console_is_served_with_a_strict_policy(local_stack: LocalStackProcess) -> None:
    root = local_stack.api_url.removesuffix("/v1")
    page = httpx.get(f"{root}/console").raise_for_status()
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert "connect-src 'self';" in policy and "require-trusted-types-for 'script'" in policy
    media = urlsplit(str(local_stack.info["aws_endpoint_url"]))
    assert f"media-src {media.scheme}://{media.netloc};" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text and " on" not in page.text.replace("\n", " ").split("<body")[1].split(">")[0]
    for asset in ("app.js", "api.js", "console.css"):
        answer = httpx.get(f"{root}/console/{asset}").raise_for_status()
        assert answer.headers["content-type"].startswith(("text/javascript", "text/css")), asset
    missing = httpx.get(f"{root}/console/../template.yaml")
    assert missing.status_code == 404
    assert httpx.get(f"{root}/console/secrets.txt").json()["error"]["param"] == "asset"


# -- log in and list ------------------------------------------------------------------------------------------


def test_a_wrong_key_shows_the_apis_401_message_then_the_right_one_lists_the_videos(
    console: Browser, tenant: Tenant, tmp_path: Path
) -> None:
    first = _video(tenant, prompt="the first of two")
    second = _video(tenant, prompt="the second of two")
    wrong = "sk-vr-" + secrets.token_hex(16)
    message = httpx.get(f"{tenant.stack.api_url}/models", headers={"Authorization": f"Bearer {wrong}"}).json()
    console.open()

    console.page.get_by_label("API key").fill(wrong)
    console.page.get_by_role("button", name="Log in").click()
    alert = console.page.locator("#login-error")
    alert.wait_for(state="visible")
    assert alert.inner_text() == message["error"]["message"]
    console.shot(tmp_path / "console-login-refused.png")

    console.log_in(tenant.key)
    rows = console.page.locator("#videos tbody tr")
    rows.nth(1).wait_for()
    ids = [rows.nth(i).get_attribute("data-id") for i in range(rows.count())]
    assert ids[:2] == [second["id"], first["id"]]  # newest first
    with tenant.http() as api:
        wait_for_status(api, first["id"], {"completed"})
        wait_for_status(api, second["id"], {"completed"})
    # Rows in flight poll their video: both turn completed without a reload.
    console.page.locator(f'#videos tr[data-id="{first["id"]}"][data-status="completed"]').wait_for()
    console.page.locator(f'#videos tr[data-id="{second["id"]}"][data-status="completed"]').wait_for()
    assert "100%" in console.page.locator(f'#videos tr[data-id="{first["id"]}"]').inner_text()
    assert tenant.key in console.page.evaluate("Object.values(sessionStorage)")
    console.shot(tmp_path / "console-videos.png")
    console.check_clean(tenant.key)


def test_the_list_pages_with_the_cursor_and_filters_by_status(console: Browser, tenant: Tenant, tmp_path: Path) -> None:
    made = [_video(tenant, prompt=f"page test {n}") for n in range(3)]
    failing = _video(tenant, prompt="this one fails upstream [sim:fail]")
    with tenant.http() as api:
        for video in made:
            wait_for_status(api, video["id"], {"completed"})
        wait_for_status(api, failing["id"], {"failed"})
        listed = api.get("/videos", params={"limit": 100}).json()["data"]
    console.open()
    console.log_in(tenant.key)
    rows = console.page.locator("#videos tbody tr")
    rows.first.wait_for()
    assert rows.count() == min(20, len(listed))
    if len(listed) > 20:
        console.page.get_by_role("button", name="Load more").click()
        rows.nth(20).wait_for()
    console.page.get_by_label("Status").select_option("completed")
    console.page.locator("#videos tbody tr").first.wait_for()
    statuses = console.page.locator("#videos tbody tr").evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert statuses and set(statuses) == {"completed"}
    assert failing["id"] not in console.page.locator("#videos").inner_text()
    console.page.get_by_label("Status").select_option("failed")
    console.page.locator(f'#videos tr[data-id="{failing["id"]}"]').wait_for()
    statuses = console.page.locator("#videos tbody tr").evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert set(statuses) == {"failed"}
    console.shot(tmp_path / "console-filtered.png")
    console.check_clean(tenant.key)


def test_a_video_whose_object_names_a_thumbnail_shows_it(console: Browser, tenant: Tenant, tmp_path: Path) -> None:
    video = _video(tenant, prompt="a thumbnail of a harbour")
    with tenant.http() as api:
        done = wait_for_status(api, video["id"], {"completed"})
        if "variants" not in done:
            pytest.skip("this deployment's Video object names no variants (no thumbnails are derived)")
        deadline = time.monotonic() + 60
        while (done.get("variants") or {}).get("status") == "pending" and time.monotonic() < deadline:
            time.sleep(0.5)
            done = api.get(f"/videos/{video['id']}").raise_for_status().json()
    assert "thumbnail" in done["variants"]["available"], done["variants"]
    console.open()
    console.log_in(tenant.key)
    thumb = console.page.locator(f'#videos tr[data-id="{video["id"]}"] img.thumb')
    thumb.wait_for()
    console.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    console.shot(tmp_path / "console-thumbnails.png")
    console.check_clean(tenant.key)


def test_the_console_reads_on_a_phone(phone: Browser, tenant: Tenant, tmp_path: Path) -> None:
    _video(tenant, prompt="seen on a phone")
    phone.open()
    phone.log_in(tenant.key)
    phone.page.locator("#videos tbody tr").first.wait_for()
    # The table scrolls inside its own box; the page itself never scrolls sideways.
    assert phone.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.shot(tmp_path / "console-phone.png")
    for route in ("#/new", "#/endpoints", "#/usage"):
        phone.page.evaluate("r => { location.hash = r; }", route)
        phone.page.locator("main form, #usage-chart svg").first.wait_for()
        phone.shot(tmp_path / f"console-phone-{route[2:]}.png")
        wide = phone.page.evaluate(
            "[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > innerWidth + 1)"
            ".map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 5)"
        )
        assert wide == [], (route, wide)
    phone.check_clean(tenant.key)


def test_the_keyboard_reaches_every_page(console: Browser, tenant: Tenant, tmp_path: Path) -> None:
    console.open()
    console.log_in(tenant.key)
    for name, title in (("New video", "New video"), ("Webhook endpoints", "Webhook endpoints"), ("Usage", "Usage")):
        # From the page's heading (focused on arrival) back up into the navigation.
        for _ in range(8):
            console.page.keyboard.press("Shift+Tab")
            if console.page.evaluate("document.activeElement.textContent") == name:
                break
        else:
            raise AssertionError(f"Tab never reached {name!r}")
        console.page.keyboard.press("Enter")
        # The new page's heading takes the focus.
        console.page.wait_for_function("t => document.activeElement.textContent === t", arg=title)
    console.shot(tmp_path / "console-keyboard.png")
    console.page.get_by_role("button", name="Log out").press("Enter")
    console.page.get_by_label("API key").wait_for()
    assert console.page.evaluate("sessionStorage.length") == 0  # the key is gone with the session
    console.check_clean(tenant.key)


def test_a_key_revoked_mid_session_returns_to_the_login_with_the_apis_message(
    console: Browser, local_stack: LocalStackProcess, tmp_path: Path
) -> None:
    name = f"console-revoked-{secrets.token_hex(4)}"
    key = _keys(local_stack, "create", "--tenant", name).splitlines()[-1]
    console.open()
    console.log_in(key)
    console.page.locator("#videos").wait_for()
    key_id = next(line.split()[0] for line in _keys(local_stack, "list").splitlines() if f" {name} " in f" {line} ")
    _keys(local_stack, "revoke", key_id)
    message = httpx.get(f"{local_stack.api_url}/videos", headers={"Authorization": f"Bearer {key}"}).json()

    console.page.get_by_role("button", name="Refresh").click()
    alert = console.page.locator("#login-error")
    alert.wait_for(state="visible")
    assert alert.inner_text() == message["error"]["message"]
    assert console.page.locator("#nav").is_hidden()
    assert console.page.evaluate("sessionStorage.length") == 0
    console.shot(tmp_path / "console-revoked.png")
    console.check_clean(key)


# -- a job from the form to the player to its deliveries ------------------------------------------------------


def test_a_job_made_in_the_form_completes_plays_and_its_delivery_is_replayed(
    console: Browser, tenant: Tenant, hook: Receiver, tmp_path: Path
) -> None:
    page = console.page
    console.open("#/new")
    console.log_in(tenant.key)
    page.get_by_label("Model").select_option("sora-2")
    # The catalog's lengths and sizes for the model, with its default chosen.
    assert page.locator("#f-seconds option").all_inner_texts() == ["4", "8", "12"]
    page.get_by_label("Size").select_option("1280x720")
    page.get_by_label("Prompt", exact=True).fill("a red kite over a green hill, slow pan")
    page.get_by_label("Webhook URL").fill("ftp://example.com/hooks")
    page.get_by_label("Metadata").fill("order=42\ncustomer=acme")
    page.get_by_role("button", name="Create video").click()

    # The API's own message, beside the field it names; nothing was created.
    error = page.locator('[data-error-for="webhook_url"]')
    error.wait_for(state="visible")
    assert "webhook_url" in error.inner_text() and "ftp://example.com/hooks" in error.inner_text()
    assert page.get_by_label("Webhook URL").get_attribute("aria-invalid") == "true"
    with tenant.http() as api:
        before = api.get("/videos", params={"limit": 100}).json()["data"]
    assert not any(v["prompt"].startswith("a red kite") for v in before)
    console.shot(tmp_path / "console-create-error.png")

    page.get_by_label("Webhook URL").fill(hook.url)
    page.get_by_role("button", name="Create video").click()
    try:
        page.wait_for_url("**/console#/videos/video_*")
    finally:
        console.shot(tmp_path / "console-created.png")
    video_id = page.url.rsplit("/", 1)[1]

    # Watched until it completes, then played from its presigned URL.
    page.locator(".summary .badge-completed").wait_for()
    page.wait_for_function("() => document.querySelector('#player')?.readyState >= 2")
    assert page.locator("#progress-text").inner_text() == "100%"
    fields = page.locator("#video-fields")
    with tenant.http() as api:
        video = api.get(f"/videos/{video_id}").raise_for_status().json()
    assert video["metadata"] == {"order": "42", "customer": "acme"} and video["webhook"]["url"] == hook.url
    for name in video:
        assert fields.locator(f':scope > dd[data-field="{name}"]').count() == 1, name
    assert video["output"]["sha256"] in fields.inner_text()

    # Its deliveries, each attempt listed; a redelivery adds an attempt.
    delivered = page.locator('.delivery[data-status="succeeded"]', has=page.locator("h3", has_text="video.completed"))
    delivered.wait_for()
    completed = page.locator(f'.delivery[data-id="{delivered.get_attribute("data-id")}"]')
    attempts = completed.locator("tr.attempt")
    count = attempts.count()
    assert count >= 1
    console.shot(tmp_path / "console-video.png")
    completed.get_by_role("button", name="Redeliver").click()
    attempts.nth(count).wait_for()
    assert "redelivery" in attempts.nth(count).inner_text()
    seen = [r.event["type"] for r in _drain(hook)]
    assert seen.count("video.completed") == 2
    console.shot(tmp_path / "console-redelivered.png")
    console.check_clean(tenant.key)


def _drain(hook: Receiver) -> list[Any]:
    got = []
    while not hook.events.empty():
        got.append(hook.events.get_nowait())
    return got


def test_a_reference_image_goes_with_the_job(console: Browser, tenant: Tenant, tmp_path: Path) -> None:
    image = tmp_path / "frame.png"
    Image.new("RGB", (1280, 720), (200, 80, 40)).save(image)
    console.open("#/new")
    console.log_in(tenant.key)
    console.page.get_by_label("Model").select_option("sora-2")
    console.page.get_by_label("Size").select_option("1280x720")
    console.page.get_by_label("Prompt", exact=True).fill("the frame comes alive")
    console.page.get_by_label("Reference: input_reference").set_input_files(str(image))
    console.page.get_by_role("button", name="Create video").click()
    console.page.wait_for_url("**/console#/videos/video_*")
    video_id = console.page.url.rsplit("/", 1)[1]
    with tenant.http() as api:
        video = api.get(f"/videos/{video_id}").raise_for_status().json()
    assert [(r["field"], r["content_type"], r["width"]) for r in video["references"]] == [
        ("input_reference", "image/png", 1280)
    ]
    console.page.locator('#video-fields dd[data-field="references"]').get_by_text("input_reference").wait_for()
    console.shot(tmp_path / "console-reference.png")
    console.check_clean(tenant.key)


def test_a_models_options_come_from_the_catalog(console: Browser, tenant: Tenant, tmp_path: Path) -> None:
    image = tmp_path / "first-frame.png"
    Image.new("RGB", (1280, 720), (40, 90, 160)).save(image)
    veo = "veo-3.1-fast-generate-preview"
    with tenant.http() as api:
        spec = api.get(f"/models/{veo}").raise_for_status().json()
    page = console.page
    console.open("#/new")
    console.log_in(tenant.key)
    page.get_by_label("Model").select_option(veo)
    assert page.locator("#f-seconds option").all_inner_texts() == spec["seconds"]["allowed"]
    assert page.locator("#f-seconds").input_value() == spec["seconds"]["default"]
    assert page.locator("#f-size option").all_inner_texts() == spec["size"]["allowed"]
    assert page.locator("#f-resolution option").all_inner_texts()[1:] == spec["options"]["resolution"]
    page.get_by_label("Prompt", exact=True).fill("the first frame, in motion")
    page.locator("#f-resolution").select_option("1080p")
    page.locator("#f-seed").fill("not a number")
    page.get_by_label("Reference: input_reference").set_input_files(str(image))
    page.get_by_role("button", name="Create video").click()

    error = page.locator('[data-error-for="seed"]')
    error.wait_for(state="visible")
    assert "'not a number'" in error.inner_text() and "integer" in error.inner_text()
    # The size and the resolution must agree: the API says so beside the size.
    page.locator("#f-seed").fill("42")
    page.get_by_role("button", name="Create video").click()
    size_error = page.locator('[data-error-for="size"]')
    size_error.wait_for(state="visible")
    assert "'1080p'" in size_error.inner_text()
    assert page.locator('[data-error-for="seed"]').inner_text() == ""  # the earlier error is gone
    page.locator("#f-size").select_option("1920x1080")
    page.get_by_role("button", name="Create video").click()
    page.wait_for_url("**/console#/videos/video_*")
    with tenant.http() as api:
        video = api.get(f"/videos/{page.url.rsplit('/', 1)[1]}").raise_for_status().json()
    assert video["model"] == veo and video["seconds"] == spec["seconds"]["default"]
    assert {"resolution": "1080p", "seed": "42"}.items() <= video["options"].items()
    assert [r["field"] for r in video["references"]] == ["input_reference"]
    console.shot(tmp_path / "console-options.png")
    console.check_clean(tenant.key)


def test_a_video_is_deleted_only_once_confirmed(console: Browser, tenant: Tenant, tmp_path: Path) -> None:
    video = _video(tenant, prompt="to be deleted")
    with tenant.http() as api:
        wait_for_status(api, video["id"], {"completed"})
    console.open(f"#/videos/{video['id']}")
    console.log_in(tenant.key)
    button = console.page.get_by_role("button", name="Delete video")
    console.page.once("dialog", lambda d: d.dismiss())
    button.click()
    with tenant.http() as api:
        assert api.get(f"/videos/{video['id']}").status_code == 200  # dismissed: nothing happened
    console.page.once("dialog", lambda d: d.accept())
    button.click()
    console.page.wait_for_url("**/console#/videos")
    with tenant.http() as api:
        assert api.get(f"/videos/{video['id']}").status_code == 404
    console.page.locator("#videos tbody tr, main p.help:visible").first.wait_for()  # the list has loaded
    assert console.page.locator(f'#videos tr[data-id="{video["id"]}"]').count() == 0
    console.shot(tmp_path / "console-deleted.png")
    console.check_clean(tenant.key)


def test_a_video_in_flight_shows_its_retries_and_is_canceled(console: Browser, tenant: Tenant, tmp_path: Path) -> None:
    # Every poll of this job fails upstream: it stays in flight, retried with backoff, until it is canceled.
    video = _video(tenant, prompt="an upstream that keeps failing [sim:poll_500=100000]")
    console.open(f"#/videos/{video['id']}")
    console.log_in(tenant.key)
    retry = console.page.locator("#video-retry")
    retry.wait_for()
    assert "Retrying the poll" in retry.inner_text()
    console.page.locator('#video-fields > dd[data-field="retry"]').get_by_text("attempts").wait_for()
    console.shot(tmp_path / "console-retrying.png")
    console.page.once("dialog", lambda d: d.accept())
    console.page.get_by_role("button", name="Cancel video").click()
    console.page.wait_for_url("**/console#/videos")
    with tenant.http() as api:
        assert api.get(f"/videos/{video['id']}").status_code == 404
    console.check_clean(tenant.key)


# -- webhook endpoints ----------------------------------------------------------------------------------------


def test_an_endpoint_is_created_tested_rotated_and_deleted(
    console: Browser, tenant: Tenant, hook: Receiver, tmp_path: Path
) -> None:
    page = console.page
    page.on("dialog", lambda d: d.accept())
    console.open("#/endpoints")
    console.log_in(tenant.key)
    page.locator("#endpoint-form").wait_for()

    page.get_by_label("URL").fill("not a url")
    page.get_by_role("button", name="Add endpoint").click()
    page.locator("#endpoint-url-error").get_by_text("not a url").wait_for()

    page.get_by_label("URL").fill(hook.url)
    page.get_by_label("Description").fill("the console's test receiver")
    page.get_by_label("video.completed").check()
    page.get_by_role("button", name="Add endpoint").click()
    secret = page.locator("#secret-value")
    secret.wait_for()
    first_secret = secret.inner_text()
    assert first_secret.startswith("whsec_")
    card = page.locator(".endpoint", has_text=hook.url)
    card.wait_for()
    assert "video.completed" in card.inner_text()
    console.shot(tmp_path / "console-endpoint-created.png")
    page.get_by_role("button", name="I have saved it").click()
    assert page.locator("#secret-value").count() == 0  # the secret is not kept on the page

    card.get_by_role("button", name="Send test event").click()
    card.locator(".test-result").wait_for()
    assert "delivered: HTTP 200" in card.locator(".test-result").inner_text()
    assert hook.events.get(timeout=10).event["type"] == "webhook_endpoint.test"

    card.get_by_role("button", name="Rotate secret").click()
    page.locator("#secret-value").wait_for()
    assert page.locator("#secret-value").inner_text().startswith("whsec_")
    assert page.locator("#secret-value").inner_text() != first_secret
    page.locator(".endpoint", has_text="old secret signs until").wait_for()

    endpoint_id = card.get_attribute("data-id")
    card.get_by_role("button", name="Delete").click()
    page.locator(f'.endpoint[data-id="{endpoint_id}"]').wait_for(state="detached")
    with tenant.http() as api:
        assert api.get(f"/webhook_endpoints/{endpoint_id}").status_code == 404
    console.shot(tmp_path / "console-endpoints.png")
    console.check_clean(tenant.key)


# -- usage ----------------------------------------------------------------------------------------------------


def test_the_usage_chart_shows_spend_per_day_and_model(console: Browser, tenant: Tenant, tmp_path: Path) -> None:
    video = _video(tenant, prompt="counted in the usage")
    with tenant.http() as api:
        wait_for_status(api, video["id"], {"completed"})
        usage = api.get("/usage").raise_for_status().json()
    assert usage["jobs"] >= 1
    console.open("#/usage")
    console.log_in(tenant.key)
    page = console.page
    bars = page.locator("#usage-chart rect.bar")
    bars.first.wait_for()
    assert "sora-2" in bars.evaluate_all("bars => bars.map(b => b.dataset.model)")
    assert f"${usage['total_usd']:.2f}" in page.locator("#usage-totals").inner_text()
    drawn = bars.evaluate_all("bars => bars.reduce((sum, b) => sum + b.getBBox().height, 0)")
    assert drawn > 0
    console.shot(tmp_path / "console-usage.png")

    page.get_by_label("Show").select_option("jobs")
    page.get_by_label("Period").select_option("7")
    page.locator("#usage-chart svg title", has_text="Jobs per day").wait_for(state="attached")
    assert bars.count() >= 1

    # A period the API refuses: its message is shown, naming the field.
    page.get_by_label("Period").select_option("custom")
    page.locator("#usage-from").fill("2026-12-31")
    page.locator("#usage-from").dispatch_event("change")
    page.locator("#usage-to").fill("2026-01-01")
    page.locator("#usage-to").dispatch_event("change")
    page.get_by_role("alert").get_by_text("'from'").wait_for()
    console.check_clean(tenant.key)
