"""The paced outbox against the fake Telegram Bot API over HTTP: delivery, flood limits (429 with
retry_after), one message per second per chat, blocked users, refused messages, retries, and
recovery of rows a crashed process left behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.channels.telegram import TelegramTransport
from bot.outbox import OutboxSender
from bot.settings import Settings
from handlers.texts import Texts
from storage.db import Database
from storage.models import OutboxMessage, User, utcnow
from storage.repositories import Repos
from tests.fakes.telegram import FakeTelegram


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def transport(fake: FakeTelegram) -> AsyncIterator[TelegramTransport]:
    settings = Settings(_env_file=None, telegram_bot_token=fake.token, telegram_api_base_url=fake.base_url)
    client = TelegramTransport(settings, Texts())
    await client.start()
    yield client
    await client.stop()


def queue(
    database: Database, chats: list[int], text: str = "Thông báo <b>mới</b>", kind: str = "broadcast"
) -> None:
    with database.session() as s:
        repos = Repos(s)
        for i, chat in enumerate(chats):
            user = repos.users.get_or_create("telegram", str(chat), f"U{chat}")
            repos.outbox.add(kind, 1000 + i if kind != "broadcast" else 1, user, text, [], 20)


def statuses(database: Database) -> dict[str, int]:
    with database.session() as s:
        rows = s.exec(select(OutboxMessage)).all()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


async def drain(sender: OutboxSender, database: Database, timeout: float = 20.0) -> None:
    """Run the sender until nothing is pending or sending any more."""
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        while True:
            left = statuses(database)
            if not left.get("pending") and not left.get("sending"):
                return
            assert asyncio.get_running_loop().time() < deadline, left
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task


def sender(database: Database, transport: TelegramTransport, rate: float = 200.0, **options) -> OutboxSender:
    return OutboxSender(
        database, {"telegram": transport}, rates={"telegram": rate}, poll_interval=0.05, **options
    )


async def test_delivers_each_message_once(database, fake, transport) -> None:
    chats = list(range(100, 140))
    queue(database, chats)
    await drain(sender(database, transport), database)
    assert statuses(database) == {"sent": 40}
    for chat in chats:
        assert [m["text"] for m in fake.messages(chat)] == ["Thông báo mới"]


async def test_flood_limit_is_honoured_and_nothing_is_lost_or_repeated(database, fake, transport) -> None:
    fake.flood_limit_per_sec = 20
    chats = list(range(200, 260))
    queue(database, chats)
    await drain(sender(database, transport, rate=100), database, timeout=40)
    assert fake.count_429() > 0
    assert statuses(database) == {"sent": 60}
    assert all(len(fake.messages(chat)) == 1 for chat in chats)


async def test_at_most_one_message_per_second_per_chat(database, fake, transport) -> None:
    fake.per_chat_limit = True  # the fake answers 429 to a second message within a second to one chat
    queue(database, [300, 300, 300], kind="notify")
    await drain(sender(database, transport), database)
    assert fake.count_429() == 0
    assert len(fake.messages(300)) == 3


async def test_blocked_users_are_marked_and_skipped(database, fake, transport) -> None:
    fake.blocked_chats = {401}
    queue(database, [400, 401, 402])
    await drain(sender(database, transport), database)
    assert statuses(database) == {"sent": 2, "blocked": 1}
    with database.session() as s:
        assert s.exec(select(User).where(User.external_id == "401")).one().is_blocked


async def test_a_refused_message_fails_without_retries(database, fake, transport) -> None:
    queue(database, [500], text="<b>không đóng thẻ")
    await drain(sender(database, transport), database)
    with database.session() as s:
        row = s.exec(select(OutboxMessage)).one()
    assert (row.status, row.attempts) == ("failed", 1)
    assert "parse" in row.last_error.lower()


async def test_temporary_errors_are_retried_then_given_up(database, transport) -> None:
    broken = Settings(
        _env_file=None, telegram_bot_token="123456:TEST-TOKEN", telegram_api_base_url="http://127.0.0.1:9/bot"
    )  # nothing listens there
    dead = TelegramTransport(broken, Texts())
    queue(database, [600])
    outbox = sender(database, dead, max_attempts=2, per_chat_interval=0.0)
    await outbox.drain_once()
    with database.session() as s:
        row = s.exec(select(OutboxMessage)).one()
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.next_attempt_at > utcnow()
        row.next_attempt_at = utcnow()
        s.add(row)
    await outbox.drain_once()
    with database.session() as s:
        assert s.exec(select(OutboxMessage)).one().status == "failed"


async def test_rows_left_sending_by_a_crash_are_recovered(database, fake, transport) -> None:
    queue(database, [700, 701])
    with database.session() as s:
        for row in s.exec(select(OutboxMessage)).all():
            row.status, row.claimed_by, row.claimed_at = (
                "sending",
                "dead-worker",
                utcnow() - timedelta(minutes=5),
            )
            s.add(row)
    outbox = sender(database, transport, stale_after=60)
    await drain(outbox, database)
    assert statuses(database) == {"sent": 2}
    assert len(fake.messages(700)) == len(fake.messages(701)) == 1


async def test_a_clean_stop_gives_back_what_it_did_not_send(database, fake, transport) -> None:
    queue(database, list(range(800, 830)))
    outbox = sender(database, transport, rate=10)
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))
    await asyncio.sleep(0.5)
    stop.set()
    await task
    left = statuses(database)
    assert "sending" not in left and left.get("pending", 0) > 0
    await drain(sender(database, transport), database)
    assert statuses(database) == {"sent": 30}
    assert all(len(fake.messages(chat)) == 1 for chat in range(800, 830))
