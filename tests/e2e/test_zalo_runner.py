"""The whole process on Zalo (and Telegram beside it): an application typed as numbers and words, a
reminder and a broadcast delivered through the outbox as numbered text menus (and answered by
number), Telegram and Zalo leads in one list, and the real /webhook/zalo route checking its secret."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from bot.app import Runner
from bot.dashboard.leads import LeadFilter, lead_query
from bot.settings import Settings
from handlers.broadcasts import broadcast_buttons
from services.broadcasts import Audience, BroadcastService
from services.staff_directory import StaffDirectory
from storage.models import Deadline, Lead, Reminder, Subscription, saved_id, utcnow
from storage.repositories import Repos
from tests.e2e.conftest import conversation
from tests.fakes.telegram import FakeTelegram
from tests.fakes.zalo import FakeZalo, post_webhook
from tests.support.checks import one

ZALO_CHAT = "a1b2c3d4e5f60718"
TELEGRAM_CHAT = 4343


def settings(zalo: FakeZalo, telegram: FakeTelegram | None, database_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "zalo_bot_token": zalo.token,
        "zalo_api_base_url": zalo.base_url,
        "database_url": database_url,
        "web_port": 0,
        **extra,
    }
    if telegram is not None:
        values |= {"telegram_bot_token": telegram.token, "telegram_api_base_url": telegram.base_url}
    return Settings(_env_file=None, **values)


@pytest.fixture
async def runner(
    fake_zalo: FakeZalo, fake_telegram: FakeTelegram, database_url: str
) -> AsyncIterator[Runner]:
    process = Runner(settings(fake_zalo, fake_telegram, database_url))
    await process.start()
    yield process
    await process.stop()


async def say(fake: FakeZalo, text: str, chat: str = ZALO_CHAT, settle: float = 0.3) -> list[str]:
    before = len(fake.messages(chat))
    fake.send_text(chat, text, display_name="Chị Mai")
    await fake.wait_for_messages(chat, before + 1)
    while True:
        count = len(fake.messages(chat))
        await asyncio.sleep(settle)
        if len(fake.messages(chat)) == count:
            return fake.messages(chat)[before:]


def step(runner: Runner) -> tuple[str, str | None]:
    state = conversation(runner.services, "zalo", ZALO_CHAT)
    return state.flow, state.step


def number_of(message: str, label_start: str) -> str:
    """The number a numbered menu gives the option whose label starts with ``label_start``."""
    for line in message.splitlines():
        number, _, label = line.partition(". ")
        if number.isdigit() and re.sub(r"^\W+", "", label).startswith(label_start):
            return number
    raise AssertionError(f"no option {label_start!r} in:\n{message}")


async def wait_for(fake: FakeZalo, chat: str, needle: str, timeout: float = 10.0) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [m for m in fake.messages(chat) if needle in m]
        if found:
            return found[-1]
        assert asyncio.get_running_loop().time() < deadline, fake.messages(chat)
        await asyncio.sleep(0.05)


async def test_application_typed_on_zalo(
    fake_zalo: FakeZalo, fake_telegram: FakeTelegram, runner: Runner
) -> None:
    menu = (await say(fake_zalo, "/start"))[-1]
    replies = await say(fake_zalo, number_of(menu, "Đăng ký hỗ trợ"))
    replies = await say(fake_zalo, number_of(replies[-1], "Máy móc"))
    replies = await say(fake_zalo, number_of(replies[-1], "Hỗ trợ mua máy móc"))
    assert step(runner) == ("apply", "full_name")
    for text in (
        "Phạm Thị Mai",
        "0912 345 678",
        "Cơ sở chè Mai Anh",
        "hkd",
        "tuyen quang",
        "xã Mỹ Bằng",
        "Chế biến chè xanh",
        "Mua máy sao chè tự động",
        "300 triệu",
    ):
        replies = await say(fake_zalo, text)
    replies = await say(fake_zalo, number_of(replies[-1], "Tôi đồng ý"))
    assert step(runner) == ("apply", "summary")
    replies = await say(fake_zalo, number_of(replies[-1], "Gửi hồ sơ"))
    assert "KC-" in "\n".join(replies)
    # A Telegram producer applies too; staff see both in one list.
    with runner.services.db.session() as s:
        repos = Repos(s)
        lead = s.exec(select(Lead)).one()
        assert (lead.channel, lead.phone, lead.province) == ("zalo", "0912345678", "Tuyên Quang")
        assert one(repos.users.get(lead.user_id)).external_id == ZALO_CHAT
        telegram_user = repos.users.get_or_create("telegram", str(TELEGRAM_CHAT), "Anh Tư")
        repos.leads.add(
            Lead(
                submission_key="t-1",
                user_id=saved_id(telegram_user),
                channel="telegram",
                full_name="Anh Tư",
                phone="0987654321",
                consent_at=utcnow(),
            ),
            year=2026,
        )
    with runner.services.db.session() as s:
        listed = Repos(s).leads.search(lead_query(LeadFilter(), runner.settings.tz), limit=100)
        assert {lead.channel for lead in listed} == {"zalo", "telegram"}


async def test_a_reminder_reaches_zalo_and_is_answered_by_number(fake_zalo: FakeZalo, runner: Runner) -> None:
    menu = (await say(fake_zalo, "/start"))[-1]
    replies = await say(fake_zalo, number_of(menu, "Nhắc hạn"))
    replies = await say(fake_zalo, "nghe an")
    replies = await say(fake_zalo, number_of(replies[-1], "Nhắc tất cả"))
    with runner.services.db.session() as s:
        repos = Repos(s)
        user = one(repos.users.find("zalo", ZALO_CHAT))
        assert [sub.user_id for sub in s.exec(select(Subscription).where(Subscription.is_active))] == [
            saved_id(user)
        ]
        today = utcnow().astimezone(runner.settings.tz).date()
        deadline = Deadline(
            due_on=today + timedelta(days=3),
            action="Nộp đơn đăng ký hội chợ khuyến công tỉnh Nghệ An",
            place="Trung tâm Khuyến công tỉnh Nghệ An",
            province="Nghệ An",
            created_by="staff",
        )
        s.add(deadline)
        s.flush()
        # Planned earlier and due a minute ago: the next sweep sends it.
        s.add(
            Reminder(
                user_id=saved_id(user),
                deadline_id=saved_id(deadline),
                offset_days=3,
                due_at=utcnow() - timedelta(minutes=1),
            )
        )
    # The next sweep (the runner swept at start, so its timer's lease waits an interval: the sweep
    # is run directly here; tests/bot/test_scheduler.py covers the lease).
    await asyncio.to_thread(runner.scheduler.sweep_once)
    runner.outbox.wake()
    reminder = await wait_for(fake_zalo, ZALO_CHAT, deadline.action)
    stop = runner.services.texts.label("reminders", "stop")
    assert "<b>" not in reminder and stop in reminder  # its button, as a numbered option
    await say(fake_zalo, number_of(reminder, "Tắt nhắc hạn"))
    with runner.services.db.session() as s:
        assert not s.exec(select(Subscription).where(Subscription.is_active)).all()


async def test_a_broadcast_reaches_both_channels_and_its_button_works_on_zalo(
    fake_zalo: FakeZalo, fake_telegram: FakeTelegram, runner: Runner
) -> None:
    await say(fake_zalo, "/start")
    fake_telegram.send_text(TELEGRAM_CHAT, "/start")
    await fake_telegram.wait_for_messages(TELEGRAM_CHAT, 1)
    with runner.services.db.session() as s:
        repos = Repos(s)
        service = BroadcastService(StaffDirectory())
        buttons = broadcast_buttons(runner.services.texts, "apply", "")
        draft = service.create(
            repos, "Chào {{ ten }}, năm nay nhận hồ sơ đến 20/5.", Audience(), buttons, "test"
        )
        counts = service.counts(service.recipients(repos, runner.services.catalog.kb, Audience()))
        assert counts == {"telegram": 1, "zalo": 1}
        service.confirm(repos, runner.services.catalog.kb, draft)
    runner.outbox.wake()
    on_zalo = await wait_for(fake_zalo, ZALO_CHAT, "nhận hồ sơ đến 20/5")
    assert on_zalo.startswith("Chào Chị Mai")
    deadline = asyncio.get_running_loop().time() + 10
    while not [m for m in fake_telegram.messages(TELEGRAM_CHAT) if "20/5" in m.get("text", "")]:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    await say(fake_zalo, number_of(on_zalo, "Đăng ký ngay"))
    assert step(runner) == ("apply", "programme")  # the application flow opened


async def test_webhook_route_checks_the_secret(fake_zalo: FakeZalo, database_url: str) -> None:
    process = Runner(
        settings(
            fake_zalo,
            None,
            database_url,
            zalo_webhook_url="https://bot.example.org/webhook/zalo",
            zalo_webhook_secret="s3cret-token_123",
        )
    )
    await process.start()
    try:
        url = f"http://127.0.0.1:{process.bound_port}/webhook/zalo"
        update = fake_zalo.make_update(ZALO_CHAT, text="/start")
        for secret in ("wrong-secret-123", None):
            response = await post_webhook(url, update, secret)
            assert response.status_code == 403
        await asyncio.sleep(0.3)
        assert fake_zalo.messages(ZALO_CHAT) == []
        with process.services.db.session() as s:
            assert Repos(s).users.find("zalo", ZALO_CHAT) is None
        response = await post_webhook(url, update, "s3cret-token_123")
        assert response.status_code == 200
        await fake_zalo.wait_for_messages(ZALO_CHAT, 1)
        async with httpx.AsyncClient() as client:
            garbage = await client.post(
                url, content=b"{not json", headers={"X-Bot-Api-Secret-Token": "s3cret-token_123"}
            )
            assert garbage.status_code == 400
    finally:
        await process.stop()
