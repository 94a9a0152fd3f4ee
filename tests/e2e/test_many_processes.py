"""Two real ``python -m bot run`` processes in webhook mode on one PostgreSQL database, behind one URL
as a load balancer would put them: each producer's updates go round-robin to the two processes'
webhooks, two at a time (Telegram delivers a chat's next update before the last one is answered), so
both processes store one producer's updates at the same moment. Every producer gets every answer, in
order, none twice, never the "trục trặc" apology, and no update fails on the way (none retried).

What each producer must get is what the same messages, in the order the inbox stored them, get from
the same dialogue in a single process (replayed after the run, on a database of its own)."""

from __future__ import annotations

import asyncio
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import col, select
from telegram import Update

from bot.channels.telegram import telegram_messages, to_incoming
from bot.services import core_services
from bot.settings import Settings
from handlers.dialogue import Dialogue
from handlers.texts import Texts
from knowledge.catalog import Catalog
from storage.db import Database
from storage.models import InboxUpdate, OutboxMessage
from tests.conftest import TEST_DATABASE_URL
from tests.fakes.telegram import FakeTelegram
from tests.support.botprocess import BotProcess, telegram_env, wait_until

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL,
    reason="several processes on one database: PostgreSQL only (SQLite is the single-process default)",
)

PRODUCERS = 40
FIRST_CHAT = 7_100_000
SECRET = "many-processes-secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# What a producer says, two messages at a time: the first pair creates the user, the conversation and
# the profile; the others move the dialogue on, so an answer out of order would show.
SCRIPT = (
    "/start",
    "co ho tro mua may say khong",
    "hoi cho trien lam thi sao",
    "/kiemtra",
    "Huế",
    "/menu",
)


def stored_scripts(database: Database) -> dict[int, list[str]]:
    """Each producer's messages in the order the inbox stored them (its ids)."""
    scripts: dict[int, list[str]] = {}
    with database.session() as s:
        for row in s.exec(select(InboxUpdate).order_by(col(InboxUpdate.id))).all():
            scripts.setdefault(int(row.chat_key), []).append(row.payload["message"]["text"])
    return scripts


def expected_messages(
    fake: FakeTelegram, catalog: Catalog, scripts: dict[int, list[str]], tmp_path: Path
) -> dict[int, list[str]]:
    """The messages (HTML as sent) each producer gets from one process, in order."""
    texts = Texts()
    settings = Settings(_env_file=None, telegram_bot_token=SecretStr(fake.token))
    reference = Database(f"sqlite:///{tmp_path / 'reference.db'}")
    reference.migrate()
    dialogue = Dialogue(reference, catalog, texts, services=core_services(settings, texts))
    expected: dict[int, list[str]] = {}
    for chat, script in scripts.items():
        sent: list[str] = []
        for text in script:
            incoming = to_incoming(Update.de_json(fake.text_update(chat, text), None))
            assert incoming is not None
            for reply in dialogue.handle(incoming):
                sent.extend(chunk for chunk, _ in telegram_messages(reply, texts))
        expected[chat] = sent
    reference.dispose()
    return expected


async def deliver(client: httpx.AsyncClient, update: dict[str, Any]) -> None:
    """POST one update the way Telegram does: again after a dropped connection, until it gets a 200."""
    for _ in range(5):
        try:
            response = await client.post("/webhook/telegram", json=update, headers={SECRET_HEADER: SECRET})
        except httpx.TransportError:
            await asyncio.sleep(0.2)
            continue
        assert response.status_code == 200
        return
    raise AssertionError(f"update {update['update_id']} was never acknowledged")


def all_answered(database: Database) -> bool:
    """Every stored update handled, and every reply it queued sent."""
    with database.session() as s:
        inbox = set(s.exec(select(InboxUpdate.status)).all())
        outbox = set(s.exec(select(OutboxMessage.status)).all())
    return len(inbox) > 0 and inbox <= {"done", "failed"} and outbox <= {"sent", "failed", "blocked"}


def received(fake: FakeTelegram, chat: int) -> list[str]:
    return [m["raw_text"] for m in fake.messages(chat) if m["method"] == "sendMessage"]


async def test_two_processes_behind_one_url_answer_every_producer_in_order(
    fake_telegram: FakeTelegram, database: Database, database_url: str, catalog: Catalog, tmp_path: Path
) -> None:
    apology = Texts().render("error")
    env = telegram_env(
        fake_telegram,
        database_url,
        TELEGRAM_WEBHOOK_URL="https://bot.example.org/webhook/telegram",
        TELEGRAM_WEBHOOK_SECRET=SECRET,
        BROADCAST_RATE_PER_SEC="200",
    )
    bots = [BotProcess(env).start(), BotProcess(env).start()]
    chats = range(FIRST_CHAT, FIRST_CHAT + PRODUCERS)
    try:
        ports = [await bot.wait_ready() for bot in bots]
        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) for port in ports]

        async def producer(chat: int) -> None:
            for step in range(0, len(SCRIPT), 2):  # two at once, one to each process
                updates = [fake_telegram.text_update(chat, text) for text in SCRIPT[step : step + 2]]
                await asyncio.gather(*(deliver(clients[n], u) for n, u in enumerate(updates)))

        try:
            await asyncio.gather(*(producer(chat) for chat in chats))
        finally:
            for client in clients:
                await client.aclose()
        await wait_until(partial(all_answered, database), 120, "every update answered", *bots)
        await asyncio.sleep(1.5)  # anything sent twice, or late, would show up now
    finally:
        codes = [await bot.stop() for bot in bots]
    assert codes == [0, 0]
    scripts = stored_scripts(database)
    assert {chat: len(script) for chat, script in scripts.items()} == {chat: len(SCRIPT) for chat in chats}
    expected = expected_messages(fake_telegram, catalog, scripts, tmp_path)
    got = {chat: received(fake_telegram, chat) for chat in chats}
    assert [c for c in chats if any(apology in text for text in got[c])] == []  # no "trục trặc"
    assert {c: got[c] for c in chats if got[c] != expected[c]} == {}  # every answer, in order, once
    with database.session() as s:
        inbox = Counter(s.exec(select(InboxUpdate.status, InboxUpdate.attempts)).all())
        handled_by = Counter(s.exec(select(InboxUpdate.claimed_by)).all())
    assert inbox == {("done", 1): PRODUCERS * len(SCRIPT)}  # each handled at the first attempt
    assert len(handled_by) == 2  # both processes handled updates
