"""Nothing lost when the real process (`python -m bot run`) is killed with SIGKILL, as the OOM killer,
a power cut or a container restart would, and started again at once on the same database: in the
middle of a broadcast, in the middle of sending reminders, right after webhook updates were
acknowledged, and with two processes on one PostgreSQL database of which one dies.

Every producer gets each message. Only a message whose HTTP call was in flight at the kill can
arrive twice: at most the outbox's concurrency per kill, and those are reported as "unknown".
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from functools import partial

import httpx
import pytest
from sqlalchemy import insert
from sqlmodel import col, select

from storage.db import Database
from storage.models import Broadcast, Deadline, InboxUpdate, OutboxMessage, Reminder, utcnow
from storage.repositories import Repos
from tests.conftest import TEST_DATABASE_URL
from tests.fakes.telegram import FakeTelegram
from tests.support.botprocess import BotProcess, telegram_env, wait_until
from tests.support.checks import one
from tests.support.seed import queue_broadcast, seed_producers, subscribe

CONCURRENCY = 8  # the outbox's messages in flight per channel: the most a kill can leave ambiguous
FIRST_CHAT = 6_000_000
WEBHOOK_SECRET = "crash-test-secret"


def outbox_statuses(database: Database) -> Counter[str]:
    with database.session() as s:
        return Counter(s.exec(select(OutboxMessage.status)).all())


def ambiguous_rows(database: Database) -> int:
    with database.session() as s:
        return len(s.exec(select(OutboxMessage.id).where(col(OutboxMessage.ambiguous))).all())


async def test_a_broadcast_killed_half_way_reaches_everyone(
    fake_telegram: FakeTelegram, database: Database, database_url: str
) -> None:
    users = 300
    chats = range(FIRST_CHAT, FIRST_CHAT + users)
    fake_telegram.flood_limit_per_sec = 40  # answers 429 above 40 messages a second
    seed_producers(database, users, FIRST_CHAT)
    broadcast_id = queue_broadcast(database, "Hội chợ hàng thủ công tháng 9: đăng ký trước 15/8.")
    bot = BotProcess(telegram_env(fake_telegram, database_url, BROADCAST_RATE_PER_SEC="60")).start()
    try:
        await wait_until(
            lambda: len(fake_telegram.received(chats, "Hội chợ")) >= users // 3, 60, "a third", bot
        )
        bot.kill()
        halfway = len(fake_telegram.received(chats, "Hội chợ"))
        assert halfway < users, "the broadcast finished before the kill"
        bot.start()  # at once, as Restart=always does
        await wait_until(lambda: len(fake_telegram.received(chats, "Hội chợ")) == users, 90, "everyone", bot)
        await wait_until(lambda: outbox_statuses(database) == {"sent": users}, 30, "the report", bot)
        await asyncio.sleep(1.0)  # anything sent twice late would show up now
    finally:
        await bot.stop()
    counts = fake_telegram.received(chats, "Hội chợ")
    twice = sum(n - 1 for n in counts.values())
    assert len(counts) == users  # nobody missed
    assert twice <= CONCURRENCY  # only what was in flight at the kill
    assert fake_telegram.count_429() > 0  # the flood limit was hit, and honoured
    with database.session() as s:
        report = Repos(s).outbox.counts("broadcast", broadcast_id)
        assert report["waiting"] == 0 and report["sent"] + report["unknown"] == users
        assert report["unknown"] >= twice  # a message sent twice is never reported as simply "sent"
        assert one(s.get(Broadcast, broadcast_id)).status in ("sending", "done")


async def test_reminders_killed_three_times_reach_every_subscriber_once(
    fake_telegram: FakeTelegram, database: Database, database_url: str
) -> None:
    users = 240
    chats = range(FIRST_CHAT, FIRST_CHAT + users)
    ids = seed_producers(database, users, FIRST_CHAT)
    subscribe(database, ids)
    now = utcnow()
    with database.session() as s:
        deadline = Deadline(due_on=(now + timedelta(days=3)).date(), action="Nộp đề án khuyến công năm 2027")
        s.add(deadline)
        s.flush()
        deadline_id = deadline.id
    with database.engine.begin() as conn:
        conn.execute(
            insert(Reminder),
            [
                {
                    "user_id": i,
                    "deadline_id": deadline_id,
                    "offset_days": 3,
                    "due_at": now - timedelta(minutes=1),
                    "status": "pending",
                    "created_at": now,
                }
                for i in ids
            ],
        )
    env = telegram_env(fake_telegram, database_url, BROADCAST_RATE_PER_SEC="50", SWEEP_INTERVAL_SECONDS="1")
    bot = BotProcess(env).start()

    def reminded(share: int) -> bool:
        return len(fake_telegram.received(chats, "đề án")) >= users // share

    try:
        for fraction in (8, 3, 2):  # kill as the reminders start, then twice more along the way
            await wait_until(
                partial(reminded, fraction),
                60,
                "reminders",
                bot,
            )
            bot.kill()
            bot.start()
        await wait_until(
            lambda: len(fake_telegram.received(chats, "đề án")) == users, 90, "every reminder", bot
        )
        await wait_until(lambda: outbox_statuses(database) == {"sent": users}, 30, "the outbox", bot)
        await asyncio.sleep(1.0)
    finally:
        await bot.stop()
    counts = fake_telegram.received(chats, "đề án")
    assert len(counts) == users
    assert sum(n - 1 for n in counts.values()) <= 3 * CONCURRENCY
    with database.session() as s:
        due = s.exec(
            select(Reminder.status).where(Reminder.deadline_id == deadline_id, Reminder.offset_days == 3)
        ).all()
        assert Counter(due) == {"queued": users}


async def test_webhook_updates_acknowledged_before_a_kill_are_all_answered(
    fake_telegram: FakeTelegram, database: Database, database_url: str
) -> None:
    producers = 40
    env = telegram_env(
        fake_telegram,
        database_url,
        TELEGRAM_WEBHOOK_URL="https://bot.example.org/webhook/telegram",
        TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    bot = BotProcess(env).start()
    try:
        await bot.wait_ready()
        async with httpx.AsyncClient(base_url=bot.url, timeout=10) as client:
            for i in range(producers):
                update = fake_telegram.text_update(FIRST_CHAT + i, "co ho tro mua may say khong")
                response = await client.post(
                    "/webhook/telegram",
                    json=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
                )
                assert response.status_code == 200
        bot.kill()  # right after the 200s: Telegram will never send these again
        bot.start()
        chats = range(FIRST_CHAT, FIRST_CHAT + producers)
        await wait_until(
            lambda: all(fake_telegram.messages(chat) for chat in chats), 60, "an answer for everyone", bot
        )
        await wait_until(lambda: not outbox_statuses(database).keys() - {"sent"}, 30, "the outbox", bot)
        await asyncio.sleep(1.0)
    finally:
        await bot.stop()
    answers = Counter({chat: len(fake_telegram.messages(chat)) for chat in chats})
    assert all(n >= 1 for n in answers.values())
    with database.session() as s:
        inbox = Counter(s.exec(select(InboxUpdate.status)).all())
        replies = s.exec(select(OutboxMessage.user_id).where(OutboxMessage.kind == "reply")).all()
    assert inbox == {"done": producers}  # each update handled once
    extra = sum(answers.values()) - len(replies)
    assert 0 <= extra <= CONCURRENCY  # a reply can repeat only if it was in flight at the kill


@pytest.mark.skipif(
    not TEST_DATABASE_URL,
    reason="two processes on one database: PostgreSQL only (SQLite is the single-process default)",
)
async def test_two_processes_share_a_broadcast_and_one_is_killed(
    fake_telegram: FakeTelegram, database: Database, database_url: str
) -> None:
    users = 300
    chats = range(FIRST_CHAT, FIRST_CHAT + users)
    fake_telegram.flood_limit_per_sec = 40
    seed_producers(database, users, FIRST_CHAT)
    broadcast_id = queue_broadcast(database, "Lớp đào tạo nghề mây tre: đăng ký trước 30/6.")
    env = telegram_env(
        fake_telegram,
        database_url,
        BROADCAST_RATE_PER_SEC="40",
        TELEGRAM_WEBHOOK_URL="https://bot.example.org/webhook/telegram",
        TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    first, second = BotProcess(env).start(), BotProcess(env).start()
    try:
        await wait_until(
            lambda: len(fake_telegram.received(chats, "mây tre")) >= users // 3, 60, "a third", first
        )
        first.kill()  # its claimed messages are given back by the other process
        await wait_until(
            lambda: len(fake_telegram.received(chats, "mây tre")) == users, 90, "everyone", second
        )
        await wait_until(lambda: outbox_statuses(database) == {"sent": users}, 30, "the report", second)
        await asyncio.sleep(1.0)
    finally:
        await second.stop()
    counts = fake_telegram.received(chats, "mây tre")
    assert len(counts) == users
    assert sum(n - 1 for n in counts.values()) <= CONCURRENCY
    # One budget for the token, in the database: two senders together stay under the platform's limit.
    assert fake_telegram.count_429() <= 2
    with database.session() as s:
        report = Repos(s).outbox.counts("broadcast", broadcast_id)
    assert report["sent"] + report["unknown"] == users
