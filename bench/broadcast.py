"""A broadcast through the real process (`python -m bot run`) while producers keep asking questions,
against the fake Telegram Bot API capped at N messages per second (it answers 429 above that), with
``BROADCAST_RATE_PER_SEC`` set to that cap: one send budget for live replies and the broadcast.

Prints the broadcast's achieved rate and everything sent as a fraction of the cap (target ≥ 0.95),
how many 429s came back, live reply latency (p50/p95, from the update's arrival at the fake to the
first reply message), and losses and duplicates (both must be 0).

    .venv/bin/python -m bench.broadcast [--recipients 1500] [--cap 30] [--live-per-sec 3]
                                        [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

from storage.db import Database
from tests.fakes.telegram import FakeTelegram
from tests.support.botprocess import BotProcess, telegram_env
from tests.support.seed import queue_broadcast, seed_producers

FIRST_CHAT = 5_000_000
FIRST_LIVE_CHAT = 7_000_000
LIVE_PRODUCERS = 60
NEEDLE = "Hội chợ khuyến công"
QUESTIONS = ("/start", "co ho tro mua may say khong", "hoi cho trien lam", "/menu")


async def live_traffic(fake: FakeTelegram, per_sec: float, stop: asyncio.Event) -> list[tuple[int, float]]:
    """Producers write in turn at ``per_sec`` (each one every LIVE_PRODUCERS / per_sec seconds, long
    after its last answer); returns (chat, time sent) of each message."""
    asked: list[tuple[int, float]] = []
    i = 0
    while not stop.is_set():
        chat = FIRST_LIVE_CHAT + i % LIVE_PRODUCERS
        fake.send_text(chat, QUESTIONS[i % len(QUESTIONS)])
        asked.append((chat, time.time()))
        i += 1
        await asyncio.sleep(1.0 / per_sec)
    return asked


def reply_latencies(fake: FakeTelegram, asked: list[tuple[int, float]]) -> tuple[list[float], int]:
    latencies, unanswered = [], 0
    for chat, at in asked:
        answers = [m["at"] for m in fake.messages(chat) if m["at"] >= at]
        if answers:
            latencies.append(min(answers) - at)
        else:
            unanswered += 1
    return latencies, unanswered


async def run(recipients: int, cap: float, live_per_sec: float, database_url: str) -> int:
    db = Database(database_url)
    db.migrate()
    seed_producers(db, recipients, FIRST_CHAT)
    queue_broadcast(db, f"{NEEDLE} tháng 9: đăng ký gian hàng trước 15/8.", author="bench")
    fake = FakeTelegram()
    fake.flood_limit_per_sec = cap
    await fake.start()
    bot = BotProcess(telegram_env(fake, database_url, BROADCAST_RATE_PER_SEC=str(cap))).start()
    stop_live = asyncio.Event()
    chats = range(FIRST_CHAT, FIRST_CHAT + recipients)
    await bot.wait_ready()
    while not fake.sent_log:  # the broadcast is under way: now producers start asking
        await asyncio.sleep(0.05)
    live = asyncio.create_task(live_traffic(fake, live_per_sec, stop_live)) if live_per_sec > 0 else None
    try:
        # Counted from the fake's cheap send log: copying every chat's messages twice a second
        # would stall the fake (it runs in this process) and bunch up the requests it sees.
        while len({chat for _, chat in fake.sent_log if chat in chats}) < recipients:
            await asyncio.sleep(0.5)
            if bot.process is not None and bot.process.poll() is not None:
                raise SystemExit(f"the bot stopped:\n{bot.log()}")
        stop_live.set()
        asked = await live if live is not None else []
        await asyncio.sleep(2.0)  # late replies and anything sent twice show up now
    finally:
        stop_live.set()
        await bot.stop()
    broadcast_times = sorted(m["at"] for chat in chats for m in fake.messages(chat))
    first, last = broadcast_times[0], broadcast_times[-1]
    window = [t for t, _ in fake.sent_log if first <= t <= last]
    counts = fake.received(chats, NEEDLE)
    latencies, unanswered = reply_latencies(fake, asked)
    if "--verbose" in sys.argv:
        print(
            "latencies (s, by send time):",
            [(round(at - first, 1), round(lat, 2)) for (_, at), lat in zip(asked, latencies, strict=False)],
        )
        print("429 at", [round(t - first, 2) for t in fake.refused_429_at])
        for refused in fake.refused_429_at[:3]:
            near = [
                (round(t - refused, 3), c) for t, c in fake.sent_log if refused - 1.05 <= t <= refused + 0.05
            ]
            print(f"  sends in the second before it ({len(near)}):", near)
    await fake.stop()
    db.dispose()
    elapsed = last - first
    broadcast_rate = (recipients - 1) / elapsed
    total_rate = (len(window) - 1) / elapsed
    p50 = statistics.median(latencies) if latencies else float("nan")
    p95 = (
        statistics.quantiles(latencies, n=20)[-1]
        if len(latencies) >= 20
        else max(latencies, default=float("nan"))
    )
    duplicates = sum(c - 1 for c in counts.values())
    losses = recipients - len(counts)
    for line in (
        f"recipients: {recipients}, cap = BROADCAST_RATE_PER_SEC = {cap:g} msg/s, database: {db.dialect}",
        f"broadcast: {elapsed:.1f} s, {broadcast_rate:.1f} msg/s = {broadcast_rate / cap:.3f} of the cap",
        f"all sent (broadcast + replies): {total_rate:.1f} msg/s = {total_rate / cap:.3f} of the cap",
        f"429 received: {fake.count_429()}",
        f"live: {len(asked)} questions at {live_per_sec:g}/s, reply p50 {p50 * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, unanswered {unanswered}",
        f"broadcast duplicates: {duplicates}, losses: {losses}",
    ):
        print(line)
    return 0


def main() -> int:
    # The fake Bot API runs in this process and stamps each request when it handles it: a garbage
    # collection pass here (tens of ms with its message log) would bunch requests up as if the bot
    # had sent them together. Telegram's servers do not stall with us, so neither does the fake.
    gc.disable()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1500)
    parser.add_argument("--cap", type=float, default=30.0, help="messages per second the fake API allows")
    parser.add_argument("--live-per-sec", type=float, default=3.0, help="producers' questions per second")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--verbose", action="store_true", help="print every reply latency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        return asyncio.run(run(args.recipients, args.cap, args.live_per_sec, url))


if __name__ == "__main__":
    sys.exit(main())
