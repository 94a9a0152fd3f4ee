"""A broadcast must not hold up the bot's answers: with Telegram's flood limit of about 30 messages
per second, live replies and the broadcast share one send budget in which replies go first, so they
interleave with a running broadcast instead of waiting behind it, and together they stay under the
limit. (How fast they are is measured by bench/broadcast.py, not asserted here.)"""

from __future__ import annotations

import asyncio

from bot.channels.telegram import TelegramTransport
from services.broadcasts import BroadcastService
from storage.repositories import Repos
from tests.e2e.conftest import TelegramBot, telegram_settings
from tests.e2e.test_telegram import exchange
from tests.fakes.telegram import FakeTelegram
from tests.support.checks import one
from tests.support.seed import queue_broadcast, seed_producers

RECIPIENTS = 250
FIRST_CHAT = 8_000_000


async def test_live_replies_stay_fast_during_a_broadcast(
    fake_telegram: FakeTelegram, database_url: str
) -> None:
    fake_telegram.flood_limit_per_sec = 30
    fake_telegram.retry_after_seconds = 3
    bot = TelegramBot(telegram_settings(fake_telegram, database_url, broadcast_rate_per_sec=25))
    await bot.start()
    try:
        runner = bot.runner
        transport = runner.transports["telegram"]
        assert isinstance(transport, TelegramTransport)
        assert transport.bot is one(runner.telegram).application.bot  # one client, one budget
        seed_producers(runner.services.db, RECIPIENTS, FIRST_CHAT)
        broadcast_id = queue_broadcast(
            runner.services.db, "Thông báo lịch hội chợ", kb=runner.services.catalog.kb
        )
        runner.outbox.wake()
        await asyncio.sleep(1.0)  # the broadcast is in full swing
        sent_when_answered = []
        for _ in range(5):
            await exchange(fake_telegram, 4242, lambda: fake_telegram.send_text(4242, "/menu"), settle=0.0)
            with runner.services.db.session() as s:
                report = BroadcastService.report(Repos(s), one(Repos(s).broadcasts.get(broadcast_id))).counts
            assert report["waiting"] > 0, "the reply waited until the broadcast was over"
            sent_when_answered.append(report["sent"])
            await asyncio.sleep(0.4)
        assert (
            sent_when_answered == sorted(sent_when_answered)
            and sent_when_answered[-1] > sent_when_answered[0]
        )
        assert fake_telegram.count_429() == 0  # replies and broadcast together stayed under the limit
    finally:
        await bot.stop()
