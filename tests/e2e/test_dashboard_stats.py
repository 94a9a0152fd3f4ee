"""The statistics page in a real headless Chromium (Debian's, driven by Playwright): after three
producers applied through the chat, the page draws every chart with the vendored Chart.js under the
strict Content Security Policy (our own scripts only, no inline script), with no console error, and
its tables hold the figures; a province account's page is its province's."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import TelegramBot
from tests.e2e.test_dashboard import ARTIFACTS, CHROMIUM, add_staff, browser, log_in, site
from tests.support.checks import one

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Page

__all__ = ["browser", "site"]  # the fixtures, used by name

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
CHARTS = ("questions", "topics", "funnel", "status", "programme", "province", "delivery")


async def _watched(browser: Browser) -> tuple[Page, list[str]]:
    page = await (await browser.new_context()).new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # A resource that failed is caught below by its response, with its address; the browser's own
        # /favicon.ico request (a 404: the dashboard has no icon) is the only one Playwright hides.
        if message.text.startswith("Failed to load resource"):
            return
        if message.type in ("error", "warning") or "Content Security Policy" in message.text:
            problems.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return page, problems


async def test_the_statistics_page_draws_its_charts_under_the_csp(
    site: tuple[str, TelegramBot], browser: Browser
) -> None:
    base, _ = site
    page, problems = await _watched(browser)
    await log_in(page, base)
    await page.click("header a[href='/stats']")
    await page.wait_for_load_state("load")
    response = one(await page.reload())
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    await page.wait_for_function("Object.keys(Chart.instances).length === 7")
    for name in CHARTS:
        canvas = page.locator(f"#chart-{name}")
        box = one(await canvas.bounding_box())
        assert box["width"] > 100 and box["height"] > 100, name
        drawn = await canvas.evaluate(
            "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"
            ".some(v => v !== 0)"
        )
        assert drawn, name
    text = await page.locator("main").inner_text()
    assert "Nghệ An\t2" in text and "Sơn La\t1" in text  # leads by province
    assert "Đã gửi hồ sơ\t3" in text  # the funnel
    assert problems == []
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard-stats.png"), full_page=True)


async def test_a_province_accounts_statistics_are_its_province(
    site: tuple[str, TelegramBot], browser: Browser, database_url: str
) -> None:
    base, _ = site
    add_staff(database_url, "canbo.sonla", None, "--role", "province", "--province", "Sơn La")
    page, problems = await _watched(browser)
    await log_in(page, base, "canbo.sonla")
    await page.goto(base + "/stats?province=Ngh%E1%BB%87%20An")
    await page.wait_for_function("Object.keys(Chart.instances).length === 7")
    text = await page.locator("main").inner_text()
    assert "Sơn La\t1" in text and "Nghệ An" not in text
    assert await page.locator("select[name=province]").count() == 0
    assert problems == []
