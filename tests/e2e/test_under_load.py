"""Priorities under load, end to end against the fake Telegram Bot API over HTTP: "typing" as soon as
an update is stored, a bounded and visible backlog (webhooks answer 503 with Retry-After, polling
pauses, nothing is lost), live replies held in the inbox rather than piling up in the outbox, and
live replies going before a deep broadcast queue, across two processes on PostgreSQL. How fast all
this is, is measured by bench/load.py, never asserted here."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import col, delete, select, update

from storage.db import Database
from storage.models import InboxUpdate, OutboxMessage, utcnow
from storage.repositories import Repos
from tests.conftest import TEST_DATABASE_URL
from tests.e2e.conftest import TelegramBot, telegram_settings
from tests.e2e.test_zalo import ZaloBot, say, zalo_settings
from tests.fakes.telegram import FakeTelegram, post_webhook_update
from tests.fakes.zalo import FakeZalo
from tests.support.botprocess import BotProcess, telegram_env, wait_until
from tests.support.seed import queue_broadcast, seed_producers

SECRET = "s3cret-token_123"
WEBHOOK = "https://bot.example.org/webhook/telegram"
URL = "http://testserver/webhook/telegram"
CHAT = 4343
FIRST_CHAT = 6_100_000


def webhook_bot(fake: FakeTelegram, database_url: str, **extra: object) -> TelegramBot:
    return TelegramBot(
        telegram_settings(
            fake, database_url, telegram_webhook_url=WEBHOOK, telegram_webhook_secret=SECRET, **extra
        )
    )


def hold_backlog(database: Database, fake: FakeTelegram, count: int) -> None:
    """``count`` stored updates of other chats that are not due yet: they wait, and count as waiting."""
    later = utcnow() + timedelta(hours=1)
    with database.session() as s:
        for i in range(count):
            payload = fake.text_update(FIRST_CHAT + i, "xin chao")
            Repos(s).inbox.add("telegram", str(payload["update_id"]), str(FIRST_CHAT + i), payload)
        s.exec(
            update(InboxUpdate).values(next_attempt_at=later, received_at=utcnow() - timedelta(seconds=30))
        )


def release_backlog(database: Database) -> None:
    with database.session() as s:
        s.exec(delete(InboxUpdate).where(col(InboxUpdate.chat_key) != str(CHAT)))


async def test_typing_shows_at_once_before_the_reply_and_once_per_chat_in_a_burst(
    fake_telegram: FakeTelegram, database_url: str
) -> None:
    fake_telegram.flood_limit_per_sec = 1  # chat actions are not messages: never refused for it
    bot = webhook_bot(fake_telegram, database_url)
    await bot.start()
    try:
        transport = httpx.ASGITransport(app=bot.runner.web_app)
        first = await post_webhook_update(
            URL, fake_telegram.text_update(CHAT, "/start"), SECRET, transport=transport
        )
        assert first.status_code == 200
        for text in ("co ho tro mua may say khong", "/menu"):  # a burst: still one indicator
            await post_webhook_update(URL, fake_telegram.text_update(CHAT, text), SECRET, transport=transport)
        group = fake_telegram.text_update(-CHAT, "/start")
        group["message"]["chat"] = {"id": -CHAT, "type": "group", "title": "Nhóm"}
        await post_webhook_update(URL, group, SECRET, transport=transport)
        replies = await fake_telegram.wait_for_messages(CHAT, 3, timeout=20)
    finally:
        await bot.stop()
    typing = fake_telegram.chat_actions_in(CHAT)
    assert len(typing) == 1 and typing[0] < replies[0]["at"]
    assert {action for _, _, action in fake_telegram.chat_actions} == {"typing"}
    assert fake_telegram.chat_actions_in(-CHAT) == []  # the bot does not answer groups


async def test_zalo_shows_typing_before_the_reply(fake_zalo: FakeZalo, database_url: str) -> None:
    bot = ZaloBot(zalo_settings(fake_zalo, database_url))
    await bot.start()
    try:
        await say(fake_zalo, bot, "xin chao", chat="zl-typing")
    finally:
        await bot.stop()
    methods = [method for method, params in fake_zalo.calls if params.get("chat_id") == "zl-typing"]
    assert methods[0] == "sendChatAction" and "sendMessage" in methods
    assert fake_zalo.calls_to("sendChatAction")[0]["action"] == "typing"


async def test_over_the_backlog_bound_a_webhook_answers_503_and_the_update_is_answered_on_retry(
    fake_telegram: FakeTelegram, database: Database, database_url: str
) -> None:
    bot = webhook_bot(fake_telegram, database_url, inbox_max_backlog=3)
    await bot.start()
    try:
        hold_backlog(database, fake_telegram, 3)
        await bot.runner.inbox.refresh_backlog()
        transport = httpx.ASGITransport(app=bot.runner.web_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            health = (await client.get("/healthz")).json()
        assert health["status"] == "ok"
        assert health["inbox"]["waiting"] == 3 and health["inbox"]["accepting"] is False
        assert health["inbox"]["oldest_wait_seconds"] >= 29
        update_ = fake_telegram.text_update(CHAT, "/start")
        refused = await post_webhook_update(URL, update_, SECRET, transport=transport)
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
        with database.session() as s:
            assert Repos(s).inbox.backlog()[0] == 3  # not stored, not acknowledged: the platform retries
        release_backlog(database)
        await wait_until(lambda: bot.runner.inbox.admitting, 10, "the backlog to be read again")
        again = await post_webhook_update(URL, update_, SECRET, transport=transport)
        assert again.status_code == 200
        await fake_telegram.wait_for_messages(CHAT, 1, timeout=20)
        await wait_until(lambda: _backlog(database) == 0, 10, "the update to be handled")
    finally:
        await bot.stop()


def _backlog(database: Database) -> int:
    with database.session() as s:
        return Repos(s).inbox.backlog()[0]


async def test_over_the_backlog_bound_polling_stops_fetching_until_the_backlog_shrinks(
    fake_telegram: FakeTelegram, database: Database, database_url: str
) -> None:
    hold_backlog(database, fake_telegram, 3)
    bot = TelegramBot(telegram_settings(fake_telegram, database_url, inbox_max_backlog=3))
    await bot.start()
    try:
        fake_telegram.send_text(CHAT, "/start")
        await asyncio.sleep(1.5)
        assert len(fake_telegram.pending_updates) == 1  # left with Telegram, which keeps it
        assert fake_telegram.messages(CHAT) == []
        release_backlog(database)
        await fake_telegram.wait_for_messages(CHAT, 1, timeout=20)
    finally:
        await bot.stop()


async def test_when_the_send_budget_is_short_the_backlog_waits_in_the_inbox_not_the_outbox(
    fake_telegram: FakeTelegram, database: Database, database_url: str
) -> None:
    rate, producers = 6, 60
    bot = webhook_bot(fake_telegram, database_url, broadcast_rate_per_sec=rate)
    await bot.start()
    headroom, concurrency = 2 * rate, 8  # two seconds of sending; updates in hand at once
    chats = range(FIRST_CHAT, FIRST_CHAT + producers)
    replies_seen, inbox_seen = [], []
    try:
        transport = httpx.ASGITransport(app=bot.runner.web_app)
        for chat in chats:
            update_ = fake_telegram.text_update(chat, "/menu")
            assert (await post_webhook_update(URL, update_, SECRET, transport=transport)).status_code == 200
        while not all(fake_telegram.messages(chat) for chat in chats):
            with database.session() as s:
                repos = Repos(s)
                queued = select(func.count()).where(
                    OutboxMessage.kind == "reply", col(OutboxMessage.status).in_(("pending", "sending"))
                )
                replies_seen.append(s.exec(queued).one())
                inbox_seen.append(repos.inbox.waiting())
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
    finally:
        await bot.stop()
    # Replies queued ahead of the budget: about two seconds of sending, plus the updates in hand.
    assert max(replies_seen) <= headroom + 2 * concurrency < producers
    assert max(inbox_seen) >= producers // 2  # the rest waited in the inbox, counted and visible
    assert Counter(len(fake_telegram.messages(chat)) for chat in chats) == {1: producers}


@pytest.mark.parametrize("processes", [2 if TEST_DATABASE_URL else 1])
async def test_live_replies_go_before_a_deep_broadcast_queue_across_processes(
    fake_telegram: FakeTelegram, database: Database, database_url: str, processes: int
) -> None:
    """Two processes on PostgreSQL (one on SQLite, the single-process default) share one budget:
    every question sent to either of them is answered while thousands of broadcast messages wait."""
    recipients, cap = 3000, 40
    fake_telegram.flood_limit_per_sec = cap
    seed_producers(database, recipients, FIRST_CHAT)
    broadcast_id = queue_broadcast(database, "Hội chợ hàng thủ công: đăng ký gian hàng trước 30/6.")
    env = telegram_env(
        fake_telegram,
        database_url,
        BROADCAST_RATE_PER_SEC=str(cap),
        TELEGRAM_WEBHOOK_URL=WEBHOOK,
        TELEGRAM_WEBHOOK_SECRET=SECRET,
    )
    bots = [BotProcess(env).start() for _ in range(processes)]
    waiting_when_answered = []
    try:
        for bot in bots:
            await bot.wait_ready()
        await wait_until(
            lambda: len(fake_telegram.sent_log) > 100, 60, "the broadcast to be under way", *bots
        )
        for i in range(10):
            chat, bot = 4400 + i, bots[i % processes]
            response = await post_webhook_update(
                f"{bot.url}/webhook/telegram", fake_telegram.text_update(chat, "/menu"), SECRET
            )
            assert response.status_code == 200
            await fake_telegram.wait_for_messages(chat, 1, timeout=20)
            with database.session() as s:
                waiting_when_answered.append(Repos(s).outbox.counts("broadcast", broadcast_id)["waiting"])
    finally:
        for bot in bots:
            await bot.stop()
    assert min(waiting_when_answered) > recipients // 2  # no reply waited behind the broadcast
    assert fake_telegram.count_429() <= 2  # one budget for both processes, replies included
