"""The console at /console, in headless Chromium (Debian's package) against `vidrelay local`: a user logs in with
an API key, creates a video, watches it complete and plays it, reads and replays its webhook deliveries, manages
webhook endpoints and reads the usage chart. Each test saves a screenshot of what it saw."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import LocalStackProcess, wait_for_status
from tests.e2e.test_docs_browser import CHROMIUM, CHROMIUM_ARGS

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


@pytest.fixture(scope="module")
def tenant(local_stack: LocalStackProcess) -> Tenant:
    done = subprocess.run(
        [str(VIDRELAY), "keys", "create", "--tenant", f"console-{secrets.token_hex(4)}"],
        cwd=local_stack.log_path.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return Tenant(done.stdout.splitlines()[-1].strip(), local_stack)


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
    page.on("console", lambda m: seen.problems.append(m.text) if m.type == "error" and "401" not in m.text else None)
    page.on("pageerror", lambda e: seen.problems.append(str(e)))
    try:
        yield seen
    finally:
        context.close()


def _watch(seen: Browser, url: str) -> None:
    seen.urls.append(url)
    if urlsplit(url).netloc not in seen.allowed_hosts:
        seen.elsewhere.append(url)


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


def test_the_console_reads_on_a_phone(phone: Browser, tenant: Tenant, tmp_path: Path) -> None:
    _video(tenant, prompt="seen on a phone")
    phone.open()
    phone.log_in(tenant.key)
    phone.page.locator("#videos tbody tr").first.wait_for()
    # The table scrolls inside its own box; the page itself never scrolls sideways.
    assert phone.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.shot(tmp_path / "console-phone.png")
    phone.check_clean(tenant.key)
