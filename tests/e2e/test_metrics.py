"""``/metrics`` of the real process (`python -m bot run`) after traffic through the fake Telegram Bot
API: it parses as Prometheus text, and the figures moved (updates handled, reply latency, messages
sent, the outbox's queue while the platform holds it back with 429s, the inbox backlog); with
METRICS_TOKEN only a request with the token reads it."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.fakes.telegram import FakeTelegram
from tests.support.botprocess import BotProcess, telegram_env, wait_until

FIRST_CHAT = 7_100_000
TOKEN = "metrics-token-Zq8r4Kx1Vb7Nw2Lp9Tg5Hc3Jd6"


def samples(text: str) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(found: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        s.value for s in found if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def scrape(bot: BotProcess, token: str | None = TOKEN) -> list[Sample]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=bot.url, timeout=10) as client:
        response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_metrics_move_with_traffic_and_parse(fake_telegram: FakeTelegram, database_url: str) -> None:
    producers = 5
    bot = BotProcess(telegram_env(fake_telegram, database_url, METRICS_TOKEN=TOKEN)).start()
    try:
        await bot.wait_ready()
        before = await scrape(bot)
        assert value(before, "khuyencong_database_metrics_up") == 1
        assert value(before, "khuyencong_updates_handled_total") == 0
        assert value(before, "khuyencong_inbox_waiting") == 0
        assert value(before, "khuyencong_send_budget_rate", channel="telegram") == 25
        chats = range(FIRST_CHAT, FIRST_CHAT + producers)
        for chat in chats:
            fake_telegram.send_text(chat, "/start")
            fake_telegram.send_text(chat, "có hỗ trợ mua máy sấy không")
        await wait_until(
            lambda: all(len(fake_telegram.messages(c)) >= 2 for c in chats), 60, "the answers", bot
        )

        def outbox_settled(found: list[Sample]) -> bool:
            return value(found, "khuyencong_messages_sent_total") >= 2 * producers and not value(
                found, "khuyencong_outbox_messages"
            )

        after = await scrape(bot)
        for _ in range(100):
            if (
                outbox_settled(after)
                and value(after, "khuyencong_reply_latency_seconds_count") >= 2 * producers
            ):
                break
            after = await scrape(bot)
        async with httpx.AsyncClient(base_url=bot.url, timeout=10) as client:
            refused = [
                await client.get("/metrics"),
                await client.get("/metrics", headers={"Authorization": "Bearer wrong-token"}),
            ]
    finally:
        await bot.stop()

    handled = value(after, "khuyencong_updates_handled_total", channel="telegram", outcome="done")
    assert handled == 2 * producers
    assert value(after, "khuyencong_reply_latency_seconds_count", channel="telegram") == 2 * producers
    assert (
        value(after, "khuyencong_reply_latency_seconds_bucket", channel="telegram", le="60.0")
        == 2 * producers
    )
    assert value(after, "khuyencong_reply_latency_seconds_sum", channel="telegram") > 0
    assert value(after, "khuyencong_messages_sent_total", channel="telegram", kind="reply") >= 2 * producers
    assert value(after, "khuyencong_outbox_messages") == 0  # nothing left to send
    assert value(after, "khuyencong_inbox_waiting") == 0
    assert value(after, "khuyencong_inbox_oldest_wait_seconds") == 0
    assert value(after, "khuyencong_rate_limited_total") == 0
    assert value(after, "khuyencong_send_budget_paused", channel="telegram") == 0
    assert value(after, "process_resident_memory_bytes") > 0
    assert [r.status_code for r in refused] == [401, 401]


async def test_429s_and_the_queue_they_hold_back_show(fake_telegram: FakeTelegram, database_url: str) -> None:
    """The platform's 429 answers are counted, and the replies they hold back show as the outbox's
    queue until they are sent; without METRICS_TOKEN the page needs no token."""
    fake_telegram.flood_limit_per_sec = 1  # answers 429 above one message a second
    bot = BotProcess(telegram_env(fake_telegram, database_url)).start()
    try:
        await bot.wait_ready()
        chats = range(FIRST_CHAT, FIRST_CHAT + 6)
        for chat in chats:
            fake_telegram.send_text(chat, "/start")
        queued = 0.0
        while not all(fake_telegram.messages(c) for c in chats):
            found = await scrape(bot, token=None)  # no METRICS_TOKEN: open to whoever reaches the port
            queued = max(queued, value(found, "khuyencong_outbox_messages", priority="reply"))
            await asyncio.sleep(0.05)
        settled = await scrape(bot, token=None)
        for _ in range(100):
            if not value(settled, "khuyencong_outbox_messages"):
                break
            settled = await scrape(bot, token=None)
    finally:
        await bot.stop()
    assert fake_telegram.count_429() > 0
    assert (
        0 < value(settled, "khuyencong_rate_limited_total", channel="telegram") <= fake_telegram.count_429()
    )
    assert queued > 0  # replies waited in the outbox while the platform said "wait"
    assert value(settled, "khuyencong_outbox_messages") == 0
    assert value(settled, "khuyencong_database_metrics_up") == 1
