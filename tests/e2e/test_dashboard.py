"""The staff dashboard in a real headless Chromium (Debian's, driven by Playwright): log in, filter,
search, change a status and see the producer told on Telegram, export CSV and XLSX, answer a
question; a logged-out browser and wrong or inactive accounts are refused."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from handlers.types import Incoming, Kind
from storage.models import Lead, StaffAccount
from tests.e2e.conftest import TelegramBot, telegram_settings
from tests.fakes.telegram import FakeTelegram
from tests.support.checks import one

if TYPE_CHECKING:  # types only: the browser fixture imports playwright when it starts one
    from playwright.async_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "mat-khau-du-dai-123"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")

PRODUCERS = [
    # chat id, name, province, programme, answers to the form
    (7001, "Nguyễn Thị Lan", "Nghệ An", "machinery-national", "Mua máy làm bún tự động 200 kg/giờ"),
    (7002, "Trần Văn Bình", "Sơn La", "vocational-training", "Mở lớp dạy nghề chè cho 30 lao động"),
    (7003, "Lê Thị Cúc", "Nghệ An", "trade-fair-domestic", "Đi hội chợ hàng thủ công ở Hà Nội tháng 9"),
]


def add_staff(database_url: str, username: str, telegram_id: int | None = None, *options: str) -> None:
    """Create an account exactly as a centre would: `python -m bot staff add`, password on stdin."""
    args = [sys.executable, "-m", "bot", "staff", "add", username, *options]
    if telegram_id:
        args += ["--telegram-id", str(telegram_id)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")} | {
        "DATABASE_URL": database_url
    }
    out = subprocess.run(
        args, input=PASSWORD + "\n", capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr


def submit_application(
    bot: TelegramBot, chat_id: int, name: str, province: str, programme: str, plan: str
) -> None:
    dialogue = bot.services.dialogue

    def say(text: str | None = None, choice: str | None = None) -> list:
        incoming = (
            Incoming("telegram", str(chat_id), Kind.CHOICE, user_name=name, choice=choice)
            if choice
            else Incoming.text_message("telegram", str(chat_id), text or "", name)
        )
        return dialogue.handle(incoming)

    def pick(replies: list, suffix: str) -> str:
        return next(b.data for r in replies for b in r.flat_buttons if b.data.endswith(suffix))

    say("/start")
    say(choice=f"a:{programme}")
    for text in (name, "0912345678", f"Cơ sở của {name}"):
        replies = say(text)
    replies = say(choice=pick(replies, ":household_business"))
    for text in (province, "xã Thanh Sơn", "Chế biến nông sản", plan, "300 triệu"):
        replies = say(text)
    replies = say(choice=pick(replies, ":yes"))
    say(choice=next(b.data for r in replies for b in r.flat_buttons if b.data.startswith("as:")))


async def wait_for_text(fake: FakeTelegram, chat_id: int, needle: str, timeout: float = 10.0) -> dict:
    """The first bot message in the chat containing ``needle`` (waiting for it to arrive)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [m for m in fake.messages(chat_id) if needle in m.get("text", "")]
        if found:
            return found[0]
        assert asyncio.get_running_loop().time() < deadline, fake.messages(chat_id)
        await asyncio.sleep(0.05)


@pytest.fixture
async def site(fake_telegram: FakeTelegram, database_url: str) -> AsyncIterator[tuple[str, TelegramBot]]:
    add_staff(database_url, "canbo.ha")
    bot = TelegramBot(telegram_settings(fake_telegram, database_url))
    await bot.start()
    for producer in PRODUCERS:
        submit_application(bot, *producer)
    yield f"http://127.0.0.1:{bot.runner.bound_port}", bot
    await bot.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        launched = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        await launched.close()


async def log_in(page: Page, base: str, username: str = "canbo.ha", password: str = PASSWORD) -> None:
    await page.goto(base + "/")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_load_state()


async def test_log_in_filter_change_status_notify_and_export(
    site: tuple[str, TelegramBot], browser: Browser, fake_telegram: FakeTelegram
) -> None:
    base, bot = site
    context = await browser.new_context(accept_downloads=True)
    page = await context.new_page()
    await log_in(page, base)
    assert await page.locator("#leads tbody tr").count() == 3

    await page.select_option("select[name=province]", "Nghệ An")
    await page.click("#filters button[type=submit]")
    await page.wait_for_load_state()
    assert await page.locator("#leads tbody tr").count() == 2

    await page.goto(base + "/")
    await page.fill("input[name=q]", "tran van")  # folded search: no diacritics typed
    await page.click("#filters button[type=submit]")
    await page.wait_for_load_state()
    rows = page.locator("#leads tbody tr")
    assert await rows.count() == 1
    assert "Trần Văn Bình" in await rows.first.inner_text()
    assert "0912345678" in await rows.first.inner_text()  # staff see phone numbers

    await rows.first.locator("a").click()
    await page.wait_for_load_state()
    assert "Kiểm tra điều kiện sơ bộ" in await page.content()
    assert await page.locator("#eligibility div").count() >= 3
    await page.select_option("#to-status", "contacted")
    await page.fill("#status-form input[name=note]", "Đã gọi, hẹn khảo sát xưởng thứ Hai")
    await page.click("#status-form button[type=submit]")
    await page.wait_for_load_state()
    assert await page.locator("#lead-status").inner_text() == "Đã liên hệ"
    audit = await page.locator("#audit").inner_text()
    assert "cán bộ canbo.ha" in audit and "Đã liên hệ" in audit
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard-lead.png"), full_page=True)

    before = len([m for m in fake_telegram.messages(7002) if "Đã liên hệ" in m.get("text", "")])
    told = await fake_telegram.wait_for_messages(
        7002, len(fake_telegram.messages(7002)) + (1 if not before else 0)
    )
    assert any("Đã liên hệ" in m["text"] and "hẹn khảo sát" in m["text"] for m in told)

    await page.goto(base + "/?province=Ngh%E1%BB%87+An")
    async with page.expect_download() as csv_download:
        await page.click("#export-csv")
    content = Path(await (await csv_download.value).path()).read_bytes().decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(content)))
    assert table[0][:3] == ["STT", "Mã hồ sơ", "Ngày gửi"]
    assert len(table) == 3 and {row[7] for row in table[1:]} == {"Nghệ An"}

    async with page.expect_download() as xlsx_download:
        await page.click("#export-xlsx")
    download = await xlsx_download.value
    assert download.suggested_filename.endswith(".xlsx")
    sheet = one(load_workbook(io.BytesIO(Path(await download.path()).read_bytes())).active)
    assert sheet["A1"].value == "DANH SÁCH HỒ SƠ ĐỀ NGHỊ HỖ TRỢ KHUYẾN CÔNG"
    assert [c.value for c in sheet[4]][:2] == ["STT", "Mã hồ sơ"]
    refs = {sheet.cell(row=r, column=2).value for r in range(5, sheet.max_row + 1)}
    with bot.services.db.session() as s:
        expected = {lead.ref_code for lead in s.exec(select(Lead).where(Lead.province == "Nghệ An")).all()}
    assert refs == expected
    await context.close()


async def test_answer_a_question_from_the_dashboard(
    site: tuple[str, TelegramBot], browser: Browser, fake_telegram: FakeTelegram
) -> None:
    base, bot = site
    bot.services.dialogue.handle(Incoming("telegram", "7001", Kind.CHOICE, user_name="Lan", choice="h"))
    bot.services.dialogue.handle(
        Incoming.text_message("telegram", "7001", "Khi nào có lớp tập huấn <b>?</b>", "Lan")
    )
    page = await (await browser.new_context()).new_page()
    await log_in(page, base)
    await page.goto(base + "/questions")
    card = page.locator("[id^=question-]").first
    assert "Khi nào có lớp tập huấn <b>?</b>" in await card.inner_text()  # shown as text, escaped
    await card.locator("textarea").fill("Dạ, tháng 3 năm sau ạ.")
    await card.locator("button").click()
    await page.wait_for_load_state()
    assert "Đã gửi câu trả lời" in await page.content()
    await wait_for_text(fake_telegram, 7001, "tháng 3 năm sau")


async def test_logged_out_browser_sees_nothing(site: tuple[str, TelegramBot], browser: Browser) -> None:
    base, _ = site
    page = await (await browser.new_context()).new_page()
    for path in ("/", "/leads/1", "/questions", "/export.csv", "/export.xlsx"):
        response = one(await page.goto(base + path))
        assert response.status == 200 and "Đăng nhập" in await page.content(), path
        assert "0912345678" not in await page.content()
        assert await page.locator("input[name=username]").count() == 1
        assert await page.locator("input[name=password]").count() == 1


async def test_wrong_password_inactive_account_and_rate_limit(
    site: tuple[str, TelegramBot], browser: Browser
) -> None:
    base, bot = site
    add_staff(bot.settings.database_url, "nghi.viec")
    with bot.services.db.session() as s:
        account = s.exec(select(StaffAccount).where(StaffAccount.username == "nghi.viec")).one()
        account.is_active = False
        s.add(account)
    page = await (await browser.new_context()).new_page()
    await log_in(page, base, "nghi.viec")
    assert "Sai tên đăng nhập hoặc mật khẩu" in await page.content()
    for _ in range(5):
        await log_in(page, base, "canbo.ha", "sai-mat-khau")
        assert "0912345678" not in await page.content()
    await log_in(page, base)  # even the right password waits now
    assert "quá nhiều lần" in await page.content()
    assert await page.locator("#leads").count() == 0


async def test_forms_without_the_csrf_token_are_refused(
    site: tuple[str, TelegramBot], browser: Browser
) -> None:
    base, bot = site
    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, base)
    response = await page.request.post(base + "/leads/1/status", form={"to_status": "contacted"})
    assert response.status == 403
    with bot.services.db.session() as s:
        assert one(s.get(Lead, 1)).status == "new"


async def test_compose_preview_and_send_a_broadcast(
    site: tuple[str, TelegramBot], browser: Browser, fake_telegram: FakeTelegram
) -> None:
    base, _ = site
    page = await (await browser.new_context()).new_page()
    await log_in(page, base)
    await page.goto(base + "/broadcasts")
    await page.fill(
        "#broadcast-form textarea[name=template]", "Chào {{ ten }}, hội chợ tháng 9 sắp mở đăng ký."
    )
    await page.select_option("#broadcast-form select[name=province]", "Nghệ An")
    await page.select_option("#broadcast-form select[name=button]", "apply")
    await page.click("#broadcast-form button[type=submit]")
    await page.wait_for_load_state()
    assert await page.locator("#recipient-total").inner_text() == "2"
    assert await page.locator("#count-telegram").inner_text() == "2"
    assert "hội chợ tháng 9" in await page.locator("#sample").inner_text()
    await page.click("#confirm-form button")
    await page.wait_for_load_state()
    for chat in (7001, 7003):
        message = await wait_for_text(fake_telegram, chat, "hội chợ tháng 9")
        assert message["text"].startswith("Chào ")
        assert message["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "a"
    assert not [m for m in fake_telegram.messages(7002) if "hội chợ tháng 9" in m.get("text", "")]
    for _ in range(50):
        await page.reload()
        if await page.locator("#report-sent").inner_text() == "2":
            break
        await asyncio.sleep(0.2)
    assert await page.locator("#report-sent").inner_text() == "2"
    assert await page.locator("#report-waiting").inner_text() == "0"


async def test_add_a_deadline_on_the_dashboard(site: tuple[str, TelegramBot], browser: Browser) -> None:
    base, _ = site
    page = await (await browser.new_context()).new_page()
    await log_in(page, base)
    await page.goto(base + "/deadlines")
    await page.fill("#deadline-form input[name=due_on]", "2027-03-15")
    await page.select_option("#deadline-form select[name=province]", "Nghệ An")
    await page.fill("#deadline-form textarea[name=action]", "Nộp hồ sơ đề án khuyến công địa phương năm 2028")
    await page.click("#deadline-form button[type=submit]")
    await page.wait_for_load_state()
    table = await page.locator("#deadlines").inner_text()
    assert "15/03/2027" in table and "Nghệ An" in table and "cán bộ canbo.ha" in table


async def test_logging_out_ends_the_session_for_a_copied_cookie(
    site: tuple[str, TelegramBot], browser: Browser
) -> None:
    base, _ = site
    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, base)
    copied = await context.cookies()  # what someone could lift from this browser
    await page.click("header form button")
    await page.wait_for_load_state()
    thief = await browser.new_context()
    await thief.add_cookies(copied)  # type: ignore[arg-type]  # playwright: a Cookie is a SetCookieParam, its TypedDicts disagree
    stolen = await thief.new_page()
    await stolen.goto(base + "/")
    assert await stolen.locator("input[name=password]").count() == 1  # the login form, not the leads
    assert "0912345678" not in await stolen.content()


async def test_pages_keep_their_style_under_a_strict_content_security_policy(
    site: tuple[str, TelegramBot], browser: Browser
) -> None:
    base, _ = site
    page = await (await browser.new_context()).new_page()
    refused = []
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None,
    )
    response = one(await page.goto(base + "/"))
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    await log_in(page, base)
    header = await page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
    assert header == "rgb(15, 118, 110)"  # the stylesheet loaded (no inline styles needed)
    assert refused == []


async def test_a_bad_address_gets_a_vietnamese_page(site: tuple[str, TelegramBot], browser: Browser) -> None:
    base, _ = site
    page = await (await browser.new_context()).new_page()
    await log_in(page, base)
    for path in ("/leads/99999999999999999999", "/leads/abc", "/trang-khong-co"):
        response = one(await page.goto(base + path))
        assert response.status == 404
        assert "Không tìm thấy" in await page.content()
        assert "detail" not in await page.content()  # not FastAPI's English JSON


async def test_a_province_account_sees_only_its_province(
    site: tuple[str, TelegramBot], browser: Browser, database_url: str
) -> None:
    base, bot = site
    add_staff(database_url, "canbo.nghean", None, "--role", "province", "--province", "nghe an")
    with bot.services.db.session() as s:
        theirs = s.exec(select(Lead).where(Lead.province == "Sơn La")).one()
        mine = s.exec(select(Lead).where(Lead.province == "Nghệ An")).first()
    assert mine is not None
    page = await (await browser.new_context()).new_page()
    await log_in(page, base, "canbo.nghean")
    rows = page.locator("#leads tbody tr")
    assert await rows.count() == 2
    assert "Trần Văn Bình" not in await page.locator("#leads").inner_text()
    response = one(await page.goto(f"{base}/leads/{theirs.id}"))  # typed by hand: as if it did not exist
    assert response.status == 404
    content = await page.content()
    assert "Không tìm thấy" in content and "Trần Văn Bình" not in content
    assert one(await page.goto(f"{base}/leads/{mine.id}")).status == 200
    await page.goto(base + "/?q=tran+van")
    assert await page.locator("#leads tbody tr").count() == 0
    assert one(await page.goto(base + "/audit")).status == 404


async def test_every_page_fits_a_phone_screen(site: tuple[str, TelegramBot], browser: Browser) -> None:
    """At 390 px wide (a common phone) no page scrolls sideways: tables become cards, forms stack."""
    base, _ = site
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    await log_in(page, base)
    await page.goto(base + "/broadcasts")
    await page.fill("#broadcast-form textarea[name=template]", "Chào {{ ten }}, hội chợ tháng 9 sắp mở.")
    await page.click("#broadcast-form button[type=submit]")
    await page.wait_for_load_state()
    broadcast = page.url
    await page.goto(base + "/")
    lead = base + (await page.locator("#leads tbody a").first.get_attribute("href") or "")
    too_wide = {}
    for url in (base + "/", lead, base + "/questions", base + "/deadlines", base + "/broadcasts", broadcast):
        await page.goto(url)
        width = await page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            too_wide[url] = width
        ARTIFACTS.mkdir(exist_ok=True)
        name = url.removeprefix(base).strip("/").replace("/", "-") or "leads"
        await page.screenshot(path=str(ARTIFACTS / f"phone-{name}.png"), full_page=True)
    assert too_wide == {}


async def test_a_level_edited_on_the_dashboard_is_the_bots_next_answer_and_a_revert_restores_it(
    site: tuple[str, TelegramBot], browser: Browser, fake_telegram: FakeTelegram
) -> None:
    from tests.e2e.test_telegram import exchange

    base, _ = site
    chat, question = 7301, "co ho tro mua may moc thiet bi khong"
    new_level = "Dạ, có. Theo kế hoạch năm nay, tỉnh hỗ trợ tối đa 50% tiền máy mới, không quá 250 triệu."
    before = await exchange(fake_telegram, chat, lambda: fake_telegram.send_text(chat, question))
    assert "250 triệu" not in before[0]["text"] and "300 triệu" in before[0]["text"]
    page = await (await browser.new_context()).new_page()
    await log_in(page, base)
    await page.goto(base + "/knowledge/entries/machinery-national")
    await page.fill("textarea[name=short_answer]", new_level)
    await page.fill("input[name=reason]", "mức năm nay")
    await page.click("#entry-form button[type=submit]")
    await page.wait_for_load_state()
    assert await page.locator("#saved").count() == 1
    after = await exchange(fake_telegram, chat, lambda: fake_telegram.send_text(chat, question))
    assert "250 triệu" in after[0]["text"]  # the next answer, no restart

    await page.goto(base + "/knowledge/versions")
    assert "mức năm nay" in await page.locator("#versions").inner_text()
    await page.goto(base + "/knowledge/entries/machinery-national")
    await page.fill("textarea[name=short_answer]", new_level.replace("250 triệu", "200 triệu"))
    await page.fill("input[name=reason]", "sửa nhầm")
    await page.click("#entry-form button[type=submit]")
    await page.wait_for_load_state()
    await page.goto(base + "/knowledge/versions")
    first = page.locator("#versions tbody tr", has_text="mức năm nay")
    await first.locator("button").click()
    await page.wait_for_load_state()
    restored = await exchange(fake_telegram, chat, lambda: fake_telegram.send_text(chat, question))
    assert "250 triệu" in restored[0]["text"]
