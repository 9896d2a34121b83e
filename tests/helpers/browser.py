"""The console in a real browser: Debian's Chromium driven by Playwright, with a CDP virtual authenticator.

Nothing is downloaded: Playwright launches the system's binary. Each person gets a
browser context of their own, with an authenticator of their own (a passkey lives
on one device), so registering and signing are the real WebAuthn calls of the page.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from redress.client import RedressClient, connect
from redress.console import ConsoleServer, Settings
from tests.helpers.processes import free_port
from tests.helpers.rules import ROOT

CHROMIUM = shutil.which("chromium")
SHOTS = Path(os.environ.get("REDRESS_SCREENSHOTS", ROOT / "build" / "screenshots"))


def allow_origin(rules: Path, origin: str) -> None:
    """The console's origin in the directory's relying party (the port is picked per test)."""
    path = rules / "approval.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace('origins: ["http://localhost:8090"]', f'origins: ["{origin}"]')
    path.write_text(text, encoding="utf-8")


@asynccontextmanager
async def console(redress: RedressClient, rules: Path, **settings: Any) -> AsyncIterator[str]:
    """The console for this worker's task queue, on a free port named in the directory; yields its URL."""
    port = free_port()
    allow_origin(rules, f"http://localhost:{port}")
    address = redress.client.service_client.config.target_host

    async def open_client() -> RedressClient:
        return RedressClient(await connect(address), task_queue=redress.task_queue)

    settings.setdefault("enroll", not settings.get("trusted_header"))  # enrolment: development, without a proxy
    with ConsoleServer(open_client, Settings(rules=rules, **settings), port=port):
        yield f"http://localhost:{port}"


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    assert CHROMIUM, "needs Debian's chromium (.ci/run installs it)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


async def person_page(browser: Browser, url: str, language: str = "en-US") -> Page:
    """A fresh browser context (their own cookies) with a passkey authenticator built in."""
    context = await browser.new_context(locale=language, viewport={"width": 1360, "height": 1000})
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    await page.goto(f"{url}/signin")
    return page


async def register_and_sign_in(browser: Browser, url: str, person: str) -> Page:
    page = await person_page(browser, url)
    row = page.locator(f'tr[data-person="{person}"]')
    await row.locator("button[data-register]").click()
    await row.locator("button[data-signin]").wait_for()
    await row.locator("button[data-signin]").click()
    await page.wait_for_url("**/inbox")
    return page


async def problem(page: Page) -> str:
    """The message the page shows after a passkey action (a refusal, or what was done)."""
    box = page.locator("#problem")
    await box.filter(has_not_text="passkey...").wait_for()
    return await box.inner_text()


async def screenshot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
