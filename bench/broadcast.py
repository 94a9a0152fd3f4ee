"""Broadcast throughput: 10,000 recipients through the paced outbox against the fake Telegram Bot API
capped at N messages per second (it answers 429 with retry_after above that).

Prints the achieved rate as a fraction of the cap (target ≥ 0.95), how many 429s came back, and
duplicates and losses (both must be 0).

    .venv/bin/python -m bench.broadcast [--recipients 10000] [--cap 100] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import select

from bot.channels.telegram import TelegramTransport
from bot.outbox import OutboxSender
from bot.settings import Settings
from handlers.texts import Texts
from storage.db import Database
from storage.models import OutboxMessage, User
from tests.fakes.telegram import FakeTelegram

FIRST_CHAT = 5_000_000


def seed(db: Database, recipients: int) -> None:
    now = datetime.now(UTC)
    with db.engine.begin() as conn:
        conn.execute(
            insert(User),
            [
                {
                    "channel": "telegram",
                    "external_id": str(FIRST_CHAT + i),
                    "display_name": f"U{i}",
                    "is_blocked": False,
                    "created_at": now,
                    "last_seen_at": now,
                }
                for i in range(recipients)
            ],
        )
        ids = [row[0] for row in conn.execute(select(User.id).order_by(User.id))]
        conn.execute(
            insert(OutboxMessage),
            [
                {
                    "kind": "broadcast",
                    "source_id": 1,
                    "user_id": uid,
                    "channel": "telegram",
                    "chat_id": str(FIRST_CHAT + i),
                    "text": "Thông báo hội chợ khuyến công",
                    "buttons": [],
                    "status": "pending",
                    "priority": 20,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for i, uid in enumerate(ids)
            ],
        )


async def run(recipients: int, cap: float, database_url: str) -> int:
    db = Database(database_url)
    db.migrate()
    seed(db, recipients)
    fake = FakeTelegram()
    fake.flood_limit_per_sec = cap
    await fake.start()
    settings = Settings(_env_file=None, telegram_bot_token=fake.token, telegram_api_base_url=fake.base_url)
    transport = TelegramTransport(settings, Texts())
    await transport.start()
    sender = OutboxSender(
        db, {"telegram": transport}, rates={"telegram": cap}, poll_interval=0.05, batch_size=50
    )
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(sender.run(stop))
    try:
        while True:
            await asyncio.sleep(0.5)
            with db.session() as s:
                left = s.exec(
                    select(OutboxMessage.id).where(OutboxMessage.status.in_(["pending", "sending"]))
                ).first()
            if left is None:
                break
    finally:
        elapsed = time.perf_counter() - started
        stop.set()
        await task
        await transport.stop()
    counts = [len(fake.messages(FIRST_CHAT + i)) for i in range(recipients)]
    await fake.stop()
    db.dispose()
    achieved = recipients / elapsed
    print(f"recipients: {recipients}, cap: {cap:g} msg/s, database: {db.dialect}")
    print(f"elapsed: {elapsed:.1f} s, achieved: {achieved:.1f} msg/s = {achieved / cap:.3f} of the cap")
    print(f"429 received: {fake.count_429()}")
    print(f"duplicates: {sum(c - 1 for c in counts if c > 1)}, losses: {sum(1 for c in counts if c == 0)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--cap", type=float, default=100.0, help="messages per second the fake API allows")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        return asyncio.run(run(args.recipients, args.cap, url))


if __name__ == "__main__":
    sys.exit(main())
