"""Limits that must hold for a whole deployment, not per process: each test runs two independent
instances on one database (two engines, as two processes have) and checks they share the limit. The
login limit across two dashboards; the send budget of one bot token and the pacing of one chat
across two outbox senders; and a sender's claims surviving a moment when all its process's worker
threads are busy (another process must not send its messages again)."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from bot.channels.telegram import TelegramTransport
from bot.outbox import OutboxSender, Pace
from bot.services import Services, build_services
from bot.settings import Settings, load_settings
from bot.web import create_web_app
from handlers.texts import Texts
from handlers.types import Reply
from storage.db import Database
from storage.models import OutboxMessage, utcnow
from tests.bot.conftest import PASSWORD
from tests.fakes.telegram import FakeTelegram

BUDGET_KEY = "tg:shared"


@pytest.fixture
def second_db(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


# --- the login limit ---


@pytest.fixture
def second_services(services: Services, database_url: str, tmp_path: Path) -> Iterator[Services]:
    """Another process's services on the same database (and the same data folder: one secret)."""
    other = build_services(load_settings(_env_file=None, database_url=database_url, data_dir=tmp_path))
    yield other
    other.close()


@pytest.fixture
async def two_dashboards(
    services: Services, second_services: Services
) -> AsyncIterator[list[httpx.AsyncClient]]:
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=create_web_app(s)), base_url="http://testserver")
        for s in (services, second_services)
    ]
    yield clients
    for client in clients:
        await client.aclose()


async def login(client: httpx.AsyncClient, password: str) -> int:
    form = (await client.get("/")).text
    found = re.search(r'name="csrf_token" value="([^"]+)"', form)
    data = {"username": "canbo1", "password": password, "csrf_token": found.group(1) if found else ""}
    return (await client.post("/login", data=data)).status_code


async def test_the_login_limit_holds_across_two_dashboards(two_dashboards: list[httpx.AsyncClient]) -> None:
    first, second = two_dashboards
    for i in range(5):  # five wrong passwords, spread over both processes
        assert await login(two_dashboards[i % 2], "sai-mat-khau") == 401
    assert await login(first, PASSWORD) == 429  # locked on both, even with the right password
    assert await login(second, PASSWORD) == 429


# --- the send budget and the pacing of a chat ---


def telegram_settings(fake: FakeTelegram) -> Settings:
    return Settings(
        _env_file=None, telegram_bot_token=SecretStr(fake.token), telegram_api_base_url=fake.base_url
    )


def queue(database: Database, chats: list[int], per_chat: int = 1) -> None:
    """Proactive messages (reminders: each its own source) to ``chats``, ``per_chat`` each."""
    with database.unit() as repos:
        for chat in chats:
            user = repos.users.get_or_create("telegram", str(chat), f"U{chat}")
            for n in range(per_chat):
                repos.outbox.add("reminder", 10_000 * n + chat, user, f"Nhắc hạn {n}", [], 20)


def statuses(database: Database) -> list[str]:
    with database.session() as s:
        return list(s.exec(select(OutboxMessage.status)).all())


async def run_senders(senders: list[OutboxSender], database: Database, timeout: float = 30.0) -> None:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(s.run(stop)) for s in senders]
    try:
        deadline = time.monotonic() + timeout
        while set(statuses(database)) != {"sent"}:
            assert time.monotonic() < deadline, statuses(database)
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*tasks)


@pytest.fixture
async def two_transports(fake_telegram: FakeTelegram) -> AsyncIterator[list[TelegramTransport]]:
    transports = [TelegramTransport(telegram_settings(fake_telegram), Texts()) for _ in range(2)]
    for t in transports:
        await t.start()
    yield transports
    for t in transports:
        await t.stop()


async def test_the_send_budget_holds_across_two_processes(
    database: Database,
    second_db: Database,
    fake_telegram: FakeTelegram,
    two_transports: list[TelegramTransport],
) -> None:
    fake_telegram.flood_limit_per_sec = 30
    queue(database, list(range(5000, 5120)))
    senders = [
        OutboxSender(db, {"telegram": t}, rates={"telegram": 30.0}, budget_keys={"telegram": BUDGET_KEY})
        for db, t in zip((database, second_db), two_transports, strict=True)
    ]
    await run_senders(senders, database)
    assert all(s.stats.sent > 20 for s in senders)  # both really sent
    assert fake_telegram.count_429() == 0  # together under the platform's limit
    times = sorted(t for t, _ in fake_telegram.sent_log)
    busiest = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    assert busiest <= 30


async def test_one_chat_is_paced_across_two_processes(
    database: Database,
    second_db: Database,
    fake_telegram: FakeTelegram,
    two_transports: list[TelegramTransport],
) -> None:
    gap = 0.3
    chat = 5500
    queue(database, [chat], per_chat=6)
    queue(database, list(range(5600, 5640)))  # and other chats, so both senders are busy
    senders = [
        OutboxSender(
            db,
            {"telegram": t},
            rates={"telegram": 200.0},
            budget_keys={"telegram": BUDGET_KEY},
            per_chat_interval=gap,
            poll_interval=0.05,
        )
        for db, t in zip((database, second_db), two_transports, strict=True)
    ]
    await run_senders(senders, database)
    assert all(s.stats.sent > 0 for s in senders)
    to_chat = sorted(t for t, c in fake_telegram.sent_log if c == chat)
    assert len(to_chat) == 6
    gaps = [b - a for a, b in itertools.pairwise(to_chat)]
    assert min(gaps) >= gap - 0.05, gaps  # never closer than the pacing, whichever process sent


# --- claims while the process is busy ---


class SlowTransport:
    """Delivers after a while (a slow platform call), counting what it delivered."""

    channel = "telegram"
    native_buttons = True

    def __init__(self) -> None:
        self.delivered = 0

    async def deliver(self, chat_id: str, reply: Reply, pace: Pace) -> None:
        await asyncio.sleep(1.5)
        self.delivered += 1


async def test_a_process_whose_threads_are_all_busy_keeps_its_sending_leases(
    database: Database, second_db: Database
) -> None:
    queue(database, [5700])
    busy_threads = ThreadPoolExecutor(2)
    loop = asyncio.get_running_loop()
    loop.set_default_executor(busy_threads)
    transport = SlowTransport()
    sender = OutboxSender(
        database, {"telegram": transport}, rates={"telegram": 50.0}, lease_seconds=0.6, heartbeat_seconds=0.1
    )
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    given_back = 0
    try:
        deadline = time.monotonic() + 10
        while "sending" not in statuses(database):
            assert time.monotonic() < deadline, statuses(database)
            await asyncio.sleep(0.02)
        blockers = [loop.run_in_executor(None, time.sleep, 1.2) for _ in range(2)]  # dialogue work
        until = time.monotonic() + 1.2
        while time.monotonic() < until:  # another process's sender looks for dead senders' messages
            with second_db.unit() as repos:
                given_back += repos.outbox.recover_expired(utcnow(), keep=[])
            await asyncio.sleep(0.05)
        await asyncio.gather(*blockers)
        while set(statuses(database)) != {"sent"}:
            assert time.monotonic() < deadline + 10, statuses(database)
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
        busy_threads.shutdown(wait=False)
    assert given_back == 0
    assert transport.delivered == 1
    with database.session() as s:
        assert [row.ambiguous for row in s.exec(select(OutboxMessage)).all()] == [False]
