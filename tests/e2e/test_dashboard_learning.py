"""The learning queue in a real headless Chromium (Debian's, driven by Playwright): questions the bot
was unsure of, asked by producers of the running process, appear grouped and counted on
``/unanswered``; staff turn the group into a phrasing of an entry; the page then says the question is
answered, and the bot answers it confidently from the live knowledge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from handlers.types import Incoming, Reply
from tests.e2e.conftest import TelegramBot, telegram_settings
from tests.e2e.test_dashboard import ARTIFACTS, CHROMIUM, add_staff, browser, log_in
from tests.fakes.telegram import FakeTelegram

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
__all__ = ["browser"]  # the Chromium fixture, shared with the other dashboard tests

UNSURE = "xin hỗ trợ làm tem truy xuất nguồn gốc"


@pytest.fixture
async def site(fake_telegram: FakeTelegram, database_url: str) -> AsyncIterator[tuple[str, TelegramBot]]:
    add_staff(database_url, "canbo.ha")
    bot = TelegramBot(telegram_settings(fake_telegram, database_url))
    await bot.start()
    yield f"http://127.0.0.1:{bot.runner.bound_port}", bot
    await bot.stop()


def ask(bot: TelegramBot, chat_id: str, text: str) -> list[Reply]:
    return bot.services.dialogue.handle(Incoming.text_message("telegram", chat_id, text, "Chị Mai"))


async def test_a_group_becomes_a_phrasing_and_is_answered_next_time(
    site: tuple[str, TelegramBot], browser: Browser
) -> None:
    base, bot = site
    ask(bot, "8001", UNSURE)
    ask(bot, "8002", "Xin hỗ trợ làm tem truy xuất nguồn gốc?")
    page = await (await browser.new_context()).new_page()
    await log_in(page, base)
    await page.click("header a[href='/unanswered']")
    await page.wait_for_load_state()
    group = page.locator(".group").first
    assert "2 lần" in await group.locator(".count").inner_text()
    assert "tem truy xuất nguồn gốc" in await group.locator(".examples").inner_text()

    await group.locator("summary", has_text="cách hỏi").click()
    await group.locator(".phrasing-form select[name=entry_id]").select_option("branding-trademark")
    await group.locator(".phrasing-form button[type=submit]").click()
    await page.wait_for_load_state()
    assert "Đã thêm cách hỏi" in await page.content()
    assert await page.locator(".group").count() == 0
    answered = await page.locator("#resolved-table .now-answered").first.inner_text()
    title = bot.services.catalog.kb.by_id["branding-trademark"].title
    assert answered == f"✅ Đã trả lời được: {title}"
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard-unanswered.png"), full_page=True)

    replies = ask(bot, "8003", UNSURE)
    assert "thương hiệu" in replies[0].text.lower()
    await page.reload()
    assert await page.locator(".group").count() == 0  # answered confidently: nothing new queued
