"""Swagger UI at /docs, in headless Chromium (Debian's package): it renders the create body and an Authorize
button, loading every file from the API itself."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import LocalStackProcess

pytestmark = [pytest.mark.e2e]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_docs_show_the_create_body_and_an_authorize_button(local_stack: LocalStackProcess, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    root = local_stack.api_url.removesuffix("/v1")
    origin = urlsplit(root).netloc
    elsewhere: list[str] = []
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.on("request", lambda r: elsewhere.append(r.url) if urlsplit(r.url).netloc != origin else None)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{root}/docs")

            page.get_by_role("button", name="Authorize").wait_for(timeout=30_000)
            page.locator("#operations-Videos-createVideo").click()
            body = page.locator("#operations-Videos-createVideo .opblock-section-request-body")
            body.wait_for(timeout=10_000)
            page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)

            assert "multipart/form-data" in body.inner_text() or body.locator("select").count() > 0
            assert "prompt" in page.locator("#operations-Videos-createVideo").inner_text()
            page.get_by_role("button", name="Authorize").first.click()
            dialog = page.locator(".dialog-ux")
            dialog.wait_for(timeout=10_000)
            assert "bearerAuth" in dialog.inner_text()
        finally:
            browser.close()
    assert (tmp_path / "docs.png").stat().st_size > 10_000
    assert elsewhere == [], f"the docs page loaded files from another host: {elsewhere}"
    assert problems == [], problems
