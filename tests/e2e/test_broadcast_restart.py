"""A broadcast to 1,000 users through the real process (`python -m bot run`) against the fake
Telegram Bot API with a flood limit that answers 429: the process is stopped cleanly (SIGTERM)
half-way and started again, and every user gets the message exactly once. (What a SIGKILL leaves
behind is tested in test_crash_recovery.py.)"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter

from sqlmodel import col, select

from storage.db import Database
from storage.models import OutboxMessage
from tests.fakes.telegram import FakeTelegram
from tests.support.botprocess import ROOT, BotProcess, telegram_env, wait_until
from tests.support.seed import seed_producers

USERS = 1000
FIRST_CHAT = 3_000_000
NEEDLE = "Hội chợ"


def delivered(fake: FakeTelegram) -> Counter[int]:
    return fake.received(range(FIRST_CHAT, FIRST_CHAT + USERS), NEEDLE)


async def test_broadcast_stopped_half_way_arrives_exactly_once(
    fake_telegram: FakeTelegram, database: Database, database_url: str
) -> None:
    fake_telegram.flood_limit_per_sec = 40
    env = telegram_env(fake_telegram, database_url, BROADCAST_RATE_PER_SEC="60")  # above the limit: 429s
    seed_producers(database, USERS, FIRST_CHAT)
    queued = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "broadcast",
            "--text",
            f"{NEEDLE} thủ công tháng 9: đăng ký trước 15/8.",
            "--yes",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert queued.returncode == 0, queued.stderr
    assert queued.stdout.strip().isdigit()

    bot = BotProcess(env).start()
    await wait_until(lambda: len(delivered(fake_telegram)) >= USERS // 3, 60, "a third of the broadcast", bot)
    assert await bot.stop() == 0, bot.log()
    stopped_at = len(delivered(fake_telegram))
    assert stopped_at < USERS, "the broadcast finished before the process was stopped"
    with database.session() as s:
        waiting = s.exec(
            select(OutboxMessage).where(col(OutboxMessage.status).in_(["pending", "sending"]))
        ).all()
        assert len(waiting) == USERS - stopped_at  # a clean stop leaves nothing half-sent
        assert not any(m.status == "sending" for m in waiting)

    bot.start()
    try:
        await wait_until(lambda: len(delivered(fake_telegram)) >= USERS, 90, "the rest of the broadcast", bot)
        await asyncio.sleep(1.0)  # anything sent twice would show up now
    finally:
        assert await bot.stop() == 0, bot.log()

    counts = delivered(fake_telegram)
    assert len(counts) == USERS  # nobody skipped
    assert set(counts.values()) == {1}  # nobody twice
    assert fake_telegram.count_429() > 0  # the flood limit was hit and honoured
    with database.session() as s:
        statuses = {m.status for m in s.exec(select(OutboxMessage)).all()}
        assert not s.exec(select(OutboxMessage.id).where(col(OutboxMessage.ambiguous))).first()
    assert statuses == {"sent"}
