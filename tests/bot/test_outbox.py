"""The paced outbox against the fake Telegram Bot API over HTTP: delivery, flood limits (429 with
retry_after, honoured by every sender), one message per second per chat, blocked users, refused
messages, retries, claims made only just before sending, leases given back when a sender dies,
live replies before broadcasts, one send budget shared by two senders, and a menu delivered to a
text channel answering the producer's next number."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import select

from bot.channels.telegram import TelegramTransport
from bot.outbox import OutboxSender, Pace
from bot.settings import Settings
from handlers.dialogue import Dialogue
from handlers.texts import Texts
from handlers.types import Incoming, Reply
from knowledge.catalog import Catalog
from services.notifications import PRIORITY_REPLY
from storage.db import Database
from storage.models import OutboxMessage, User, saved_id, utcnow
from storage.repositories import Repos
from tests.fakes.telegram import FakeTelegram
from tests.support.checks import one


@pytest.fixture
def fake(fake_telegram: FakeTelegram) -> FakeTelegram:
    return fake_telegram


@pytest.fixture
async def transport(fake: FakeTelegram) -> AsyncIterator[TelegramTransport]:
    settings = Settings(
        _env_file=None, telegram_bot_token=SecretStr(fake.token), telegram_api_base_url=fake.base_url
    )
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


def sender(
    database: Database, transport: TelegramTransport, rate: float = 200.0, **options: Any
) -> OutboxSender:
    return OutboxSender(
        database, {"telegram": transport}, rates={"telegram": rate}, poll_interval=0.05, **options
    )


async def test_delivers_each_message_once(
    database: Database, fake: FakeTelegram, transport: TelegramTransport
) -> None:
    chats = list(range(100, 140))
    queue(database, chats)
    await drain(sender(database, transport), database)
    assert statuses(database) == {"sent": 40}
    for chat in chats:
        assert [m["text"] for m in fake.messages(chat)] == ["Thông báo mới"]


async def test_flood_limit_is_honoured_and_nothing_is_lost_or_repeated(
    database: Database, fake: FakeTelegram, transport: TelegramTransport
) -> None:
    fake.flood_limit_per_sec = 20
    chats = list(range(200, 260))
    queue(database, chats)
    await drain(sender(database, transport, rate=100), database, timeout=40)
    assert fake.count_429() > 0
    assert statuses(database) == {"sent": 60}
    assert all(len(fake.messages(chat)) == 1 for chat in chats)


async def test_at_most_one_message_per_second_per_chat(
    database: Database, fake: FakeTelegram, transport: TelegramTransport
) -> None:
    fake.per_chat_limit = True  # the fake answers 429 to a second message within a second to one chat
    queue(database, [300, 300, 300], kind="notify")
    await drain(sender(database, transport), database)
    assert fake.count_429() == 0
    assert len(fake.messages(300)) == 3


async def test_blocked_users_are_marked_and_skipped(
    database: Database, fake: FakeTelegram, transport: TelegramTransport
) -> None:
    fake.blocked_chats = {401}
    queue(database, [400, 401, 402])
    await drain(sender(database, transport), database)
    assert statuses(database) == {"sent": 2, "blocked": 1}
    with database.session() as s:
        assert s.exec(select(User).where(User.external_id == "401")).one().is_blocked


async def test_a_refused_message_fails_without_retries(
    database: Database, fake: FakeTelegram, transport: TelegramTransport
) -> None:
    queue(database, [500], text="<b>không đóng thẻ")
    await drain(sender(database, transport), database)
    with database.session() as s:
        row = s.exec(select(OutboxMessage)).one()
    assert (row.status, row.attempts) == ("failed", 1)
    assert "parse" in one(row.last_error).lower()


async def run_until(sender: OutboxSender, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        while not predicate():
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task


def only_row(database: Database) -> OutboxMessage:
    with database.session() as s:
        return s.exec(select(OutboxMessage)).one()


async def test_temporary_errors_are_retried_then_given_up(
    database: Database, transport: TelegramTransport
) -> None:
    broken = Settings(
        _env_file=None,
        telegram_bot_token=SecretStr("123456:TEST-TOKEN"),
        telegram_api_base_url="http://127.0.0.1:9/bot",
    )  # nothing listens there
    dead = TelegramTransport(broken, Texts())
    queue(database, [600])
    outbox = sender(database, dead, max_attempts=2)
    await run_until(outbox, lambda: only_row(database).attempts == 1)
    row = only_row(database)
    assert row.status == "pending" and row.next_attempt_at > utcnow()  # backed off, not hammered
    with database.session() as s:
        row = s.exec(select(OutboxMessage)).one()
        row.next_attempt_at = utcnow()
        s.add(row)
    await run_until(outbox, lambda: only_row(database).status == "failed")


def claimed_by_a_dead_sender(database: Database, lease_left: float) -> None:
    with database.session() as s:
        for row in s.exec(select(OutboxMessage)).all():
            row.status, row.claimed_by = "sending", "dead-worker"
            row.claimed_at = utcnow() - timedelta(seconds=10)
            row.lease_until = utcnow() + timedelta(seconds=lease_left)
            s.add(row)


async def test_messages_of_a_dead_sender_go_out_at_once_and_are_reported_unknown(
    database: Database, fake: FakeTelegram, transport: TelegramTransport
) -> None:
    queue(database, [700, 701])
    claimed_by_a_dead_sender(database, lease_left=-1)  # its lease ran out: it died mid-call
    await drain(sender(database, transport), database, timeout=5)
    assert statuses(database) == {"sent": 2}
    assert len(fake.messages(700)) == len(fake.messages(701)) == 1
    with database.session() as s:
        report = Repos(s).outbox.counts("broadcast", 1)
    # The platform may have delivered them before the crash: "unknown", not "sent".
    assert (report["sent"], report["unknown"]) == (0, 2)


async def test_a_lease_still_running_is_given_back_when_it_ends(
    database: Database, fake: FakeTelegram, transport: TelegramTransport
) -> None:
    """Any sender takes over, at any time, as soon as the dead sender's lease ends (not only at start)."""
    queue(database, [710])
    claimed_by_a_dead_sender(database, lease_left=1.5)
    outbox = sender(database, transport, heartbeat_seconds=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))
    try:
        await asyncio.sleep(0.8)
        assert statuses(database) == {"sending": 1}  # it might still be alive: not touched yet
        await fake.wait_for_messages(710, 1, timeout=5)
    finally:
        stop.set()
        await task
    assert statuses(database) == {"sent": 1}


class HeldTransport:
    """A transport whose calls hang until released: what is claimed while the platform is slow."""

    channel = "telegram"
    native_buttons = True

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def deliver(self, chat_id: str, reply: Reply, pace: Pace) -> None:
        self.calls += 1
        await self.release.wait()


async def test_only_messages_in_flight_are_claimed(database: Database) -> None:
    """A crash can only strand what was being sent: nothing is claimed ahead of its HTTP call."""
    queue(database, list(range(900, 940)))
    held = HeldTransport()
    outbox = OutboxSender(database, {"telegram": held}, rates={"telegram": 1000.0}, concurrency=8)
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))
    try:
        for _ in range(100):
            if held.calls >= 8:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert held.calls == 8
        assert statuses(database) == {"sending": 8, "pending": 32}
    finally:
        held.release.set()
        stop.set()
        await task


def queue_reply(database: Database, chat: int, parts: int, inbox_id: int = 1) -> None:
    with database.session() as s:
        repos = Repos(s)
        user = repos.users.get_or_create("telegram", str(chat), f"U{chat}")
        for i in range(parts):
            repos.outbox.add(
                "reply",
                inbox_id,
                user,
                f"Trả lời {i}",
                [],
                PRIORITY_REPLY,
                dedupe_key=f"reply:{inbox_id}:{i}",
            )


async def test_live_replies_go_before_a_waiting_broadcast_and_in_order(
    database: Database, fake: FakeTelegram, transport: TelegramTransport
) -> None:
    chats = list(range(1000, 1100))
    queue(database, chats)
    outbox = sender(database, transport, rate=20)
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))
    try:
        await asyncio.sleep(0.5)
        queue_reply(database, 1500, parts=3)
        outbox.wake()
        await fake.wait_for_messages(1500, 3, timeout=5)
        broadcast_sent = sum(1 for chat in chats if fake.messages(chat))
    finally:
        stop.set()
        await task
    assert broadcast_sent < 40  # the reply did not wait for the broadcast's 100 messages
    assert [m["text"] for m in fake.messages(1500)] == ["Trả lời 0", "Trả lời 1", "Trả lời 2"]


async def test_two_senders_share_one_budget(database: Database, fake: FakeTelegram) -> None:
    """Two processes' senders for one bot token: together they stay under the platform's limit."""
    fake.flood_limit_per_sec = 30
    queue(database, list(range(2000, 2150)))
    settings = Settings(
        _env_file=None, telegram_bot_token=SecretStr(fake.token), telegram_api_base_url=fake.base_url
    )
    transports = [TelegramTransport(settings, Texts()) for _ in range(2)]
    senders = [
        OutboxSender(
            database, {"telegram": t}, rates={"telegram": 30.0}, budget_keys={"telegram": "tg:shared"}
        )
        for t in transports
    ]
    stop = asyncio.Event()
    for t in transports:
        await t.start()
    tasks = [asyncio.create_task(s.run(stop)) for s in senders]
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while statuses(database) != {"sent": 150}:
            assert asyncio.get_running_loop().time() < deadline, statuses(database)
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for t in transports:
            await t.stop()
    assert all(s.stats.sent > 20 for s in senders)  # both really sent
    assert fake.count_429() == 0


async def test_a_flood_limit_pauses_every_sender_for_its_retry_after(
    database: Database, fake: FakeTelegram
) -> None:
    fake.flood_limit_per_sec = 10
    fake.retry_after_seconds = 2
    queue(database, list(range(3000, 3060)))
    settings = Settings(
        _env_file=None, telegram_bot_token=SecretStr(fake.token), telegram_api_base_url=fake.base_url
    )
    transports = [TelegramTransport(settings, Texts()) for _ in range(2)]
    senders = [  # each too fast on its own: the platform will refuse
        OutboxSender(
            database, {"telegram": t}, rates={"telegram": 40.0}, budget_keys={"telegram": "tg:shared"}
        )
        for t in transports
    ]
    stop = asyncio.Event()
    for t in transports:
        await t.start()
    tasks = [asyncio.create_task(s.run(stop)) for s in senders]
    try:
        await asyncio.sleep(4.0)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for t in transports:
            await t.stop()
    assert fake.refused_429_at
    first = fake.refused_429_at[0]
    during_pause = [t for t, _ in fake.sent_log if first + 0.3 < t < first + 1.9]
    assert during_pause == []  # nobody sent while the platform asked to wait (in-flight calls aside)
    assert statuses(database).get("sent", 0) > 10  # and sending resumed after it


class TextTransport:
    """A text channel (buttons become a numbered menu), delivering at once."""

    channel = "zalo"
    native_buttons = False

    def __init__(self) -> None:
        self.sent: list[tuple[str, Reply]] = []

    async def deliver(self, chat_id: str, reply: Reply, pace: Pace) -> None:
        self.sent.append((chat_id, reply))


async def test_a_menu_the_outbox_delivered_answers_the_next_number(
    database: Database, catalog: Catalog
) -> None:
    """The outbox writes only its own rows; the dialogue reads the last menu sent from them."""
    dialogue = Dialogue(database, catalog)
    dialogue.handle(Incoming.text_message("zalo", "z9", "/start"))  # the main menu: 1 is "Tra cứu"
    buttons = [{"row": 0, "label": "Đăng ký ngay", "data": "a"}]
    with database.session() as s:
        repos = Repos(s)
        user = one(repos.users.find("zalo", "z9"))
        repos.outbox.add("broadcast", 1, user, "Hỗ trợ máy móc", buttons, 20)
        conversation_before = repos.conversations.get(saved_id(user)).model_dump()
    text = TextTransport()
    await drain(OutboxSender(database, {"zalo": text}, rates={"zalo": 100.0}), database)
    assert [reply.flat_buttons[0].data for _, reply in text.sent] == ["a"]
    with database.session() as s:
        repos = Repos(s)
        assert (
            repos.conversations.get(saved_id(one(repos.users.find("zalo", "z9")))).model_dump()
            == conversation_before
        )
    dialogue.handle(Incoming.text_message("zalo", "z9", "1"))
    with database.session() as s:
        repos = Repos(s)
        assert repos.conversations.get(saved_id(one(repos.users.find("zalo", "z9")))).flow == "apply"
