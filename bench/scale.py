"""The dashboard at national size, through the real process (`python -m bot run`) and the fake
Telegram Bot API, on a database `bench.seed` filled: for each page staff use (the lead list, its
filters, search and deep pages, a lead, the questions, the learning queue, the statistics of the
whole country and of a province, their CSV, the CSV and XLSX export of every lead, broadcasts,
knowledge, audit, deadlines) the response time (the whole body read), the size, the process's peak
memory (RSS) while it loads, how soon its first bytes arrive (a streamed export's first rows), and
how long a producer waits for the bot's answer meanwhile. Also the process's memory at start-up.
Targets: every page under 1 s, memory under 300 MB, replies unaffected.

    .venv/bin/python -m bench.seed --database-url URL                 # once
    .venv/bin/python -m bench.scale --database-url URL [--repeat 2] [--only PATH]

The process runs as deployed, reminder sweep included (set-based: `bench.bulk` measures it alone);
the pages are timed once the start-up sweep is over.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import itertools
import os
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from bench.seed import ADMIN_PASSWORD, ADMIN_USERNAME, PROVINCE_PASSWORD, province_names, staff_username
from tests.fakes.telegram import FakeTelegram
from tests.support.botprocess import BotProcess, telegram_env

FIRST_CHAT = 9_300_000
QUESTION = "co ho tro mua may say khong"


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    """A line of /proc/<pid>/status in MB (VmRSS now, VmHWM the peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """CPU time the process used so far (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def settle(pid: int, timeout: float = 600.0) -> float:
    """Wait until the process is idle (under 10% of a core for a second: its start-up reminder
    sweep done); how long that took."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        before = cpu_seconds(pid)
        await asyncio.sleep(1.0)
        if cpu_seconds(pid) - before < 0.1:
            break
    return time.perf_counter() - started


def reset_peak(pid: int) -> bool:
    """Start VmHWM again from the current RSS (Linux: write 5 to clear_refs); False when refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@dataclass
class Sample:
    seconds: list[float] = field(default_factory=list)
    peak_mb: float = 0.0
    replies: list[float] = field(default_factory=list)
    status: int = 0
    size: int = 0
    first_byte: list[float] = field(default_factory=list)


class Producer:
    """One producer asking the bot, again and again, how long each answer takes."""

    def __init__(self, fake: FakeTelegram, chat: int):
        self.fake, self.chat = fake, chat

    async def ask(self) -> float:
        before = len(self.fake.messages(self.chat))
        started = time.perf_counter()
        self.fake.send_text(self.chat, QUESTION)
        await self.fake.wait_for_messages(self.chat, before + 1, timeout=60)
        return time.perf_counter() - started

    async def while_busy(self, busy: Callable[[], bool]) -> list[float]:
        waits = []
        while True:
            waits.append(await self.ask())
            if not busy():
                return waits
            await asyncio.sleep(0.05)


async def log_in(base: str, username: str, password: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=300)
    form = (await client.get("/")).text
    found = re.search(r'name="csrf_token" value="([^"]+)"', form)
    if found is None:
        raise RuntimeError("no CSRF token in the login page")
    response = await client.post(
        "/login", data={"username": username, "password": password, "csrf_token": found.group(1)}
    )
    if response.status_code >= 400 or 'name="password"' in (await client.get("/")).text:
        raise RuntimeError(f"could not log in as {username}")
    return client


async def fetch(client: httpx.AsyncClient, path: str) -> tuple[int, int, float]:
    """GET ``path``, reading the whole body as it streams; (status, bytes, seconds to the first
    body bytes)."""
    size, first = 0, 0.0
    started = time.perf_counter()
    async with client.stream("GET", path) as response:
        async for chunk in response.aiter_bytes():
            if not size:
                first = time.perf_counter() - started
            size += len(chunk)
        return response.status_code, size, first


async def measure(
    pid: int, load: Callable[[], Awaitable[tuple[int, int, float]]], producer: Producer
) -> Sample:
    sample = Sample()
    exact_peak = reset_peak(pid)
    sampled = [rss_mb(pid)]
    done = asyncio.Event()

    async def watch_memory() -> None:
        while not done.is_set():
            sampled.append(rss_mb(pid))
            await asyncio.sleep(0.01)

    watcher = asyncio.ensure_future(watch_memory())
    started = time.perf_counter()
    task = asyncio.ensure_future(load())
    replies = asyncio.ensure_future(producer.while_busy(lambda: not task.done()))
    sample.status, sample.size, first = await task
    sample.first_byte.append(first)
    sample.seconds.append(time.perf_counter() - started)
    done.set()
    await watcher
    sample.replies = await replies
    sample.peak_mb = max(rss_mb(pid, "VmHWM") if exact_peak else 0.0, *sampled)
    return sample


# Also timed for a province account (its province's leads and questions only).
FOR_PROVINCE = ("lead list", "search name", "questions", "stats, country", "export.csv, all leads")


def pages(lead_id: int, province: str) -> list[tuple[str, str]]:
    p = quote(province)
    return [
        ("lead list", "/"),
        ("lead list, page 500", "/?page=500"),
        ("filter status", "/?status=new"),
        ("filter province", f"/?province={p}"),
        ("filter programme", "/?programme=machinery-national"),
        ("filter dates", "/?date_from=2026-01-01&date_to=2026-03-31"),
        ("filter all + search", f"/?status=contacted&province={p}&q=nguyen"),
        ("search name", "/?q=nguyen%20thi"),
        ("search rare name", "/?q=khanh%20yen"),
        ("search phone", "/?q=0912%20345"),
        ("search reference", f"/?q=KC-2026-{lead_id:06d}"),
        ("search nothing found", "/?q=zzzqqq"),
        ("a lead", f"/leads/{lead_id}"),
        ("questions", "/questions"),
        ("unanswered", "/unanswered"),
        ("stats, country", "/stats"),
        ("stats, country, a year", "/stats?from=2025-12-01&to=2026-11-30"),
        ("stats, province", f"/stats?province={p}"),
        ("stats.csv", "/stats.csv"),
        ("export.csv, all leads", "/export.csv"),
        ("export.xlsx, all leads", "/export.xlsx"),
        ("broadcasts", "/broadcasts"),
        ("knowledge", "/knowledge"),
        ("audit", "/audit"),
        ("deadlines", "/deadlines"),
    ]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.0f}"


def report(name: str, sample: Sample) -> None:
    replies = sample.replies or [0.0]
    print(
        f"{name:<34} {sample.status:>3} {ms(min(sample.seconds))} {ms(max(sample.seconds))} ms"
        f" {ms(max(sample.first_byte))} ms {sample.size / 1024:9.0f} KB {sample.peak_mb:6.0f} MB"
        f"   reply max {ms(max(replies))} ms p50 {ms(statistics.median(replies))} ms (n={len(replies)})",
        flush=True,
    )


async def run(database_url: str, repeat: int, only: str | None) -> int:
    fake = FakeTelegram()
    # The same database may be measured again: this run's update ids (the inbox's keys) and chat
    # never repeat an earlier run's, so no update is taken for a repeat and dropped.
    run_id = int(time.time())
    fake._update_ids = itertools.count(run_id * 1000)
    await fake.start()
    started = time.perf_counter()
    # One reminder sweep at start (the pages are timed once it is over), none during the pages.
    bot = BotProcess(telegram_env(fake, database_url, SWEEP_INTERVAL_SECONDS="86400")).start()
    try:
        base = f"http://127.0.0.1:{await bot.wait_ready(timeout=300)}"
        assert bot.process is not None
        pid = bot.process.pid
        print(f"started in {time.perf_counter() - started:.1f} s, RSS {rss_mb(pid):.0f} MB", flush=True)
        took = await settle(pid)
        print(f"idle (start-up sweep done) {took:.1f} s later, RSS {rss_mb(pid):.0f} MB", flush=True)
        producer = Producer(fake, FIRST_CHAT + run_id % 1_000_000)
        await producer.ask()  # the producer exists and has seen the menu
        await asyncio.sleep(1)
        idle = [await producer.ask() for _ in range(5)]
        print(f"RSS at start-up, after a first reply: {rss_mb(pid):.0f} MB (peak {rss_mb(pid, 'VmHWM'):.0f})")
        print(f"reply while idle: p50 {ms(statistics.median(idle))} ms, max {ms(max(idle))} ms")
        admin = await log_in(base, ADMIN_USERNAME, ADMIN_PASSWORD)
        province = province_names()[0]
        local = await log_in(base, staff_username(province), PROVINCE_PASSWORD)
        listed = (await admin.get("/")).text
        found = re.search(r'href="/leads/(\d+)"', listed)
        lead_id = int(found.group(1)) if found else 1
        heads = f"{'best':>7} {'worst':>7}    {'1st byte':>7}    {'size':>9}    {'peak':>6}"
        print(f"{'page':<34} {'st':>3} {heads}")
        for name, path in pages(lead_id, province):
            if only and only not in path:
                continue
            for who, client in (("", admin), (" (province)", local)):
                if who and name not in FOR_PROVINCE:
                    continue
                sample = Sample()
                for _ in range(repeat):
                    one = await measure(pid, functools.partial(fetch, client, path), producer)
                    sample.seconds += one.seconds
                    sample.first_byte += one.first_byte
                    sample.replies += one.replies
                    sample.peak_mb = max(sample.peak_mb, one.peak_mb)
                    sample.status, sample.size = one.status, one.size
                report(name + who, sample)
        print(f"RSS at the end: {rss_mb(pid):.0f} MB, peak {rss_mb(pid, 'VmHWM'):.0f} MB")
        await admin.aclose()
        await local.aclose()
    finally:
        await bot.stop()
        await fake.stop()
    return 0


def main() -> int:
    gc.disable()  # the fake runs here and time-stamps requests: no collector pauses in this process
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a database bench.seed filled")
    parser.add_argument("--repeat", type=int, default=2, help="loads of each page (best and worst shown)")
    parser.add_argument("--only", help="only the pages whose path contains this")
    args = parser.parse_args()
    return asyncio.run(run(args.database_url, args.repeat, args.only))


if __name__ == "__main__":
    sys.exit(main())
