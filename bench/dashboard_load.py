"""The dashboard's effect on the bots, through the real process (`python -m bot run`) and the fake
Telegram Bot API: how fast a producer's question is answered and /healthz responds while staff do
nothing, while 40 staff log in at once (40 password hashes), and while an XLSX export of 20,000
leads is being built. Target: replies and /healthz within 0.5 s whatever the dashboard does.

    .venv/bin/python -m bench.dashboard_load [--leads 20000] [--logins 40] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from storage.db import Database
from storage.passwords import hash_password
from storage.repositories import Repos
from tests.fakes.telegram import FakeTelegram
from tests.support.botprocess import BotProcess, telegram_env
from tests.support.seed import seed_leads

PASSWORD = "mat-khau-du-dai-123"
FIRST_CHAT = 8_100_000


async def log_in(client: httpx.AsyncClient) -> httpx.AsyncClient:
    form = (await client.get("/")).text
    found = re.search(r'name="csrf_token" value="([^"]+)"', form)
    if found is None:
        raise RuntimeError("no CSRF token in the login page")
    token = found.group(1)
    await client.post("/login", data={"username": "canbo", "password": PASSWORD, "csrf_token": token})
    return client


async def probe(
    fake: FakeTelegram, base: str, chat: int, busy: Callable[[], bool]
) -> tuple[list[float], list[float]]:
    """While ``busy()``, ask a question and call /healthz every 0.2 s; their latencies."""
    replies, health = [], []
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        while busy():
            before = len(fake.messages(chat))
            started = time.perf_counter()
            fake.send_text(chat, "co ho tro mua may say khong")
            ping = time.perf_counter()
            await client.get("/healthz")
            health.append(time.perf_counter() - ping)
            await fake.wait_for_messages(chat, before + 1, timeout=30)
            replies.append(time.perf_counter() - started)
            await asyncio.sleep(0.2)
            chat += 1
    return replies, health


def summary(values: list[float]) -> str:
    if not values:
        return "n=0"
    p95 = statistics.quantiles(values, n=20)[-1] if len(values) >= 20 else max(values)
    p50, top = statistics.median(values), max(values)
    return f"n={len(values)} p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {top * 1000:.0f} ms"


async def measure(
    name: str, fake: FakeTelegram, base: str, chat: int, load: Callable[[], Awaitable[object]] | None
) -> None:
    if load is None:
        deadline = time.monotonic() + 4.0
        replies, health = await probe(fake, base, chat, lambda: time.monotonic() < deadline)
        print(f"{name:<28} reply {summary(replies)} | /healthz {summary(health)}")
        return
    task = asyncio.ensure_future(load())
    started = time.perf_counter()
    replies, health = await probe(fake, base, chat, lambda: not task.done())
    await task
    took = time.perf_counter() - started
    print(f"{name:<28} reply {summary(replies)} | /healthz {summary(health)} | load took {took:.1f} s")


async def run(leads: int, logins: int, database_url: str) -> int:
    db = Database(database_url)
    db.migrate()
    seed_leads(db, leads)
    with db.session() as s:
        Repos(s).staff.upsert("canbo", hash_password(PASSWORD), None)
    db.dispose()
    fake = FakeTelegram()
    await fake.start()
    bot = BotProcess(telegram_env(fake, database_url)).start()
    try:
        base = f"http://127.0.0.1:{await bot.wait_ready()}"
        print(f"leads: {leads}, logins: {logins}, database: {db.dialect}")
        await measure("idle dashboard", fake, base, FIRST_CHAT, None)

        # Clients made beforehand: making 40 (an SSL context each) would stall this process, where
        # the fake Bot API runs, and the stall would be counted against the bot.
        browsers = [httpx.AsyncClient(base_url=base, timeout=120) for _ in range(logins)]

        async def flood() -> None:
            await asyncio.gather(*(log_in(browser) for browser in browsers))

        await measure(f"{logins} logins at once", fake, base, FIRST_CHAT + 1000, flood)
        for browser in browsers:
            await browser.aclose()
        staff = await log_in(httpx.AsyncClient(base_url=base, timeout=120))

        async def export() -> None:
            response = await staff.get("/export.xlsx")
            assert response.status_code == 200 and len(response.content) > leads * 20

        await measure(f"XLSX export of {leads:,} leads", fake, base, FIRST_CHAT + 2000, export)
        await staff.aclose()
    finally:
        await bot.stop()
        await fake.stop()
    return 0


def main() -> int:
    gc.disable()  # the fake runs here and time-stamps requests: no collector pauses in this process
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--logins", type=int, default=40)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        return asyncio.run(run(args.leads, args.logins, url))


if __name__ == "__main__":
    sys.exit(main())
