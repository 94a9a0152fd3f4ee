"""A broadcast to 1,000 users through the real process (`python -m bot run`) against the fake
Telegram Bot API with a flood limit that answers 429: the process is killed half-way and started
again, and every user gets the message exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import select

from storage.db import Database
from storage.models import Conversation, OutboxMessage, Profile, User
from tests.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
USERS = 1000
FIRST_CHAT = 3_000_000


def seed_users(database: Database) -> None:
    now = datetime.now(UTC)
    with database.engine.begin() as conn:
        conn.execute(
            insert(User),
            [
                {
                    "channel": "telegram",
                    "external_id": str(FIRST_CHAT + i),
                    "display_name": f"Hộ {i}",
                    "is_blocked": False,
                    "created_at": now,
                    "last_seen_at": now,
                }
                for i in range(USERS)
            ],
        )
        ids = [row[0] for row in conn.execute(select(User.id).order_by(User.id))]
        conn.execute(
            insert(Profile),
            [{"user_id": i, "province": "Nghệ An", "interests": [], "updated_at": now} for i in ids],
        )
        conn.execute(
            insert(Conversation),
            [{"user_id": i, "flow": "menu", "data": {}, "menu_version": 0, "updated_at": now} for i in ids],
        )


def env(fake: FakeTelegram, database_url: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_"))}
    return base | {
        "DATABASE_URL": database_url,
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "WEB_PORT": "0",
        "BROADCAST_RATE_PER_SEC": "150",
        "STAFF_TELEGRAM_IDS": "",
    }


def delivered(fake: FakeTelegram) -> dict[int, int]:
    counts = {}
    for i in range(USERS):
        received = [m for m in fake.messages(FIRST_CHAT + i) if "Hội chợ" in m.get("text", "")]
        if received:
            counts[FIRST_CHAT + i] = len(received)
    return counts


async def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.1)


def start_bot(fake: FakeTelegram, database_url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=ROOT,
        env=env(fake, database_url),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def test_broadcast_killed_half_way_arrives_exactly_once(
    fake_telegram: FakeTelegram, database: Database, database_url: str
) -> None:
    fake_telegram.flood_limit_per_sec = 100
    seed_users(database)
    queued = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "broadcast",
            "--text",
            "Hội chợ hàng thủ công tháng 9: đăng ký gian hàng trước 15/8.",
            "--yes",
        ],
        cwd=ROOT,
        env=env(fake_telegram, database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert queued.returncode == 0, queued.stderr
    assert queued.stdout.strip().isdigit()

    first = start_bot(fake_telegram, database_url)
    try:
        await wait_until(lambda: len(delivered(fake_telegram)) >= USERS // 2, 60, "half of the broadcast")
    finally:
        first.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(first.communicate, timeout=30)
    assert first.returncode == 0, output
    halfway = len(delivered(fake_telegram))
    assert halfway < USERS, "the broadcast finished before the process was stopped"
    with database.session() as s:
        waiting = s.exec(select(OutboxMessage).where(OutboxMessage.status.in_(["pending", "sending"]))).all()
        assert len(waiting) == USERS - halfway

    second = start_bot(fake_telegram, database_url)
    try:
        await wait_until(lambda: len(delivered(fake_telegram)) >= USERS, 90, "the rest of the broadcast")
        await asyncio.sleep(1.0)  # anything sent twice would show up now
    finally:
        second.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(second.communicate, timeout=30)
    assert second.returncode == 0, output

    counts = delivered(fake_telegram)
    assert len(counts) == USERS  # nobody skipped
    assert set(counts.values()) == {1}  # nobody twice
    assert fake_telegram.count_429() > 0  # the flood limit was hit and honoured
    with database.session() as s:
        statuses = {m.status for m in s.exec(select(OutboxMessage)).all()}
    assert statuses == {"sent"}
