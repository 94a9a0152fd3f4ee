"""Load: N real bot processes (`python -m bot run`, webhook mode) on one PostgreSQL database behind a
round-robin proxy, offered 10 to 200 updates/s from 1,000 producers while a broadcast runs, against
the fake Telegram Bot API answering 429 above its cap.

The producers (seeded, each with a profile and a conversation) send a mix of /start, questions
(tests/data/search_dev.tsv) and taps on buttons the bot really sent them. The bench plays Telegram's
side of the webhook: every update is POSTed to the proxy; a 503 (the backlog is over
``INBOX_MAX_BACKLOG``) or a failed call is delivered again after its Retry-After, so nothing is
dropped on the way in. A broadcast to every producer (plus ``--recipients`` more) is queued before
the first rate and keeps the send budget busy throughout.

Per rate it prints: replies/s (live replies delivered), reply latency p50/p95/p99 (update offered ->
its first reply at the fake), time until the webhook answered 200 (stored, p50/p95), time to
"typing" (p50/p95) and how many updates showed a sign of life
(typing or the reply) within 1 s, errors ("trục trặc" replies + HTTP errors), refused (503, delivered
again later), lost (not handled within the drain period), silent (handled, no reply delivered
within it), duplicated (a reply delivered twice), the broadcast's rate as a fraction of the cap,
429s, and the CPU this harness used (the fake API, the proxy and the producers share one process:
near 100% it, not the bots, is the limit).

    .venv/bin/python -m bench.load [--processes 1] [--rates 10,50,100,200] [--duration 20]
                                   [--drain 30] [--cap 30] [--recipients 10000] [--max-backlog N]
                                   [--database-url URL]

Without ``--database-url`` a throwaway PostgreSQL database is made (scripts/pgdb.py) and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import text

from storage.db import Database
from tests.fakes.telegram import SECRET_HEADER, FakeTelegram
from tests.support.botprocess import ROOT, BotProcess, telegram_env, wait_until
from tests.support.proxy import RoundRobinProxy
from tests.support.seed import queue_broadcast, seed_producers

PRODUCER_CHAT = 3_000_000
RECIPIENT_CHAT = 9_000_000
SECRET = "load-bench-secret_0123456789"
WEBHOOK = "https://bot.example.org/webhook/telegram"
NEEDLE = "Hội chợ hàng Việt"
ERROR_TEXT = "trục trặc"
DELIVERIES = 64  # webhook calls in flight at once (Telegram's max_connections is 40 by default)
QUESTIONS = [
    row[1]
    for row in csv.reader((ROOT / "tests/data/search_dev.tsv").open(encoding="utf-8"), delimiter="\t")
    if len(row) == 2 and not row[0].startswith("#")
]


@dataclass
class Offered:
    chat: int
    at: float  # when the producer sent it (first delivery attempt)
    refused: int = 0  # 503 answers before it was stored
    stored: float | None = None  # when the webhook answered 200


@dataclass
class Phase:
    rate: float
    started: float = 0.0
    ended: float = 0.0
    offered: dict[str, Offered] = field(default_factory=dict)  # update id -> what and when
    http_errors: int = 0
    refused: int = 0
    delivering: int = 0
    count_429_before: int = 0
    cpu_before: float = 0.0  # this process's CPU seconds (fake, proxy, producers) at the start


class Producers:
    """Plays 1,000 producers and Telegram's webhook deliveries to the proxy."""

    def __init__(self, fake: FakeTelegram, url: str, producers: int, seed: int = 7):
        self.fake = fake
        self.url = f"{url}/webhook/telegram"
        self.chats = [PRODUCER_CHAT + i for i in range(producers)]
        self.rng = random.Random(seed)
        self.slots = asyncio.Semaphore(DELIVERIES)
        self.client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=DELIVERIES))
        self.tasks: set[asyncio.Task[None]] = set()

    def next_update(self, chat: int) -> dict[str, object]:
        pick = self.rng.random()
        buttons = [data for _, data in self.fake.last_buttons(chat) if data]
        if pick < 0.4 and buttons:
            return self.fake.callback_update(chat, self.rng.choice(buttons))
        if pick < 0.55 or not buttons:
            return self.fake.text_update(chat, "/start")
        return self.fake.text_update(chat, self.rng.choice(QUESTIONS))

    async def offer(self, phase: Phase) -> None:
        """Offer updates at ``phase.rate`` per second (evenly spaced, on schedule) until it ends."""
        interval, start = 1.0 / phase.rate, time.time()
        n = 0
        while (now := time.time()) < phase.ended:
            due = start + n * interval
            if due > now:
                await asyncio.sleep(due - now)
                continue
            chat = self.rng.choice(self.chats)
            update = self.next_update(chat)
            phase.offered[str(update["update_id"])] = Offered(chat, time.time())
            task = asyncio.create_task(self.deliver(phase, update))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            n += 1

    async def deliver(self, phase: Phase, update: dict[str, object]) -> None:
        """POST until it is stored (200), waiting Retry-After after a 503, as Telegram retries."""
        phase.delivering += 1
        try:
            while True:
                async with self.slots:
                    try:
                        answer = await self.client.post(
                            self.url, json=update, headers={SECRET_HEADER: SECRET}
                        )
                        status, wait = answer.status_code, float(answer.headers.get("retry-after", 1))
                    except httpx.HTTPError:
                        status, wait = 0, 1.0
                if status == 200:
                    phase.offered[str(update["update_id"])].stored = time.time()
                    return
                if status == 503 and wait:
                    phase.refused += 1
                    phase.offered[str(update["update_id"])].refused += 1
                else:
                    phase.http_errors += 1
                await asyncio.sleep(wait)
        finally:
            phase.delivering -= 1

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.aclose()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def sent_replies(db: Database) -> dict[str, list[tuple[str, int]]]:
    """Per chat, the live replies sent or in flight, in the order they went (claimed: one chat at a
    time, in order): (update id, outbox id)."""
    query = text(
        "SELECT o.chat_id, i.update_key, o.id FROM outbox o JOIN inbox i ON i.id = o.source_id "
        "WHERE o.kind = 'reply' AND o.status IN ('sent', 'sending') "
        "ORDER BY o.chat_id, o.claimed_at, o.id"
    )
    replies: dict[str, list[tuple[str, int]]] = defaultdict(list)
    with db.engine.connect() as conn:
        for chat, update_key, row_id in conn.execute(query):
            replies[chat].append((update_key, row_id))
    return replies


def handled(db: Database) -> set[str]:
    """The update ids the inbox has handled (done or failed)."""
    query = text("SELECT update_key FROM inbox WHERE status IN ('done', 'failed')")
    with db.engine.connect() as conn:
        return {row[0] for row in conn.execute(query)}


def waiting(db: Database) -> tuple[int, int]:
    """Updates not handled yet and live replies not sent yet, across every process."""
    with db.engine.connect() as conn:
        inbox = conn.execute(
            text("SELECT count(*) FROM inbox WHERE status IN ('pending','working')")
        ).scalar()
        replies = conn.execute(
            text("SELECT count(*) FROM outbox WHERE kind = 'reply' AND status IN ('pending','sending')")
        ).scalar()
    return int(inbox or 0), int(replies or 0)


def report(
    phase: Phase, fake: FakeTelegram, db: Database, producers: list[int], cap: float
) -> dict[str, str]:
    """The figures of one rate, read from the fake (what arrived, when) and the database (which
    update each reply answers: the k-th reply sent to a chat is the k-th live message it got)."""
    replies, done = sent_replies(db), handled(db)
    first_reply: dict[str, float] = {}
    delivered_replies: list[float] = []
    duplicated = errors = 0
    live_chats = set(producers)
    broadcast_in_window = 0
    for chat in producers:
        messages = fake.messages(chat)
        live = [m for m in messages if NEEDLE not in m.get("text", "")]
        broadcast_in_window += sum(
            1 for m in messages if NEEDLE in m.get("text", "") and phase.started <= m["at"] <= phase.ended
        )
        rows = replies.get(str(chat), [])
        duplicated += max(len(live) - len(rows), 0)
        for (update_key, _), message in zip(rows, live, strict=False):
            first_reply.setdefault(update_key, message["at"])
            if update_key in phase.offered:
                delivered_replies.append(message["at"])
                errors += ERROR_TEXT in message.get("text", "")
    broadcast_in_window += sum(
        1 for at, chat in fake.sent_log if chat not in live_chats and phase.started <= at <= phase.ended
    )
    typing: dict[int, list[float]] = defaultdict(list)
    for at, chat, _ in fake.chat_actions:
        typing[chat].append(at)
    latencies, to_typing, to_store, alive = [], [], [], 0
    for update_key, offered in phase.offered.items():
        if offered.stored is not None:
            to_store.append(offered.stored - offered.at)
        reply = first_reply.get(update_key)
        if reply is not None:
            latencies.append(reply - offered.at)
        shown = next((t for t in typing[offered.chat] if t >= offered.at), None)
        if shown is not None and (reply is None or shown <= reply):
            to_typing.append(shown - offered.at)
        sign = min(t for t in (shown, reply, float("inf")) if t is not None)
        alive += sign - offered.at <= 1.0
    duration = phase.ended - phase.started
    in_window = sum(1 for at in delivered_replies if phase.started <= at <= phase.ended)

    def ms(values: list[float], fraction: float) -> str:
        return f"{percentile(values, fraction) * 1000:.0f}"

    return {
        "rate/s": f"{phase.rate:g}",
        "offered": str(len(phase.offered)),
        "replies/s": f"{in_window / duration:.1f}",
        "p50 ms": ms(latencies, 0.5),
        "p95 ms": ms(latencies, 0.95),
        "p99 ms": ms(latencies, 0.99),
        "stored p50/p95 ms": f"{ms(to_store, 0.5)}/{ms(to_store, 0.95)}",
        "typing p50/p95 ms": f"{ms(to_typing, 0.5)}/{ms(to_typing, 0.95)}",
        "sign ≤1s": f"{alive / max(len(phase.offered), 1):.0%}",
        "errors": f"{errors}+{phase.http_errors}",
        "refused": str(phase.refused),
        "lost": str(sum(1 for key in phase.offered if key not in done)),
        "silent": str(sum(1 for key in phase.offered if key in done and key not in first_reply)),
        "dup": str(duplicated),
        "bcast/cap": f"{broadcast_in_window / duration / cap:.2f}",
        "429": str(fake.count_429() - phase.count_429_before),
        "bench cpu": f"{(time.process_time() - phase.cpu_before) / (time.time() - phase.started):.0%}",
    }


def print_table(rows: list[dict[str, str]]) -> None:
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    print("  ".join(c.rjust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(row[c].rjust(widths[c]) for c in columns))


async def run(args: argparse.Namespace, database_url: str) -> int:
    db = Database(database_url)
    db.migrate()
    producers = [PRODUCER_CHAT + i for i in range(args.producers)]
    seed_producers(db, args.producers, PRODUCER_CHAT)
    if args.recipients:
        seed_producers(db, args.recipients, RECIPIENT_CHAT)
    fake = FakeTelegram()
    fake.flood_limit_per_sec = args.cap
    await fake.start()
    values = {
        "BROADCAST_RATE_PER_SEC": str(args.cap),
        "TELEGRAM_WEBHOOK_URL": WEBHOOK,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "SWEEP_INTERVAL_SECONDS": "3600",
    }
    if args.max_backlog is not None:
        values["INBOX_MAX_BACKLOG"] = str(args.max_backlog)
    env = telegram_env(fake, database_url, **values)
    bots = [BotProcess(env).start() for _ in range(args.processes)]
    proxy: RoundRobinProxy | None = None
    rows: list[dict[str, str]] = []
    try:
        ports = [await bot.wait_ready() for bot in bots]
        proxy = RoundRobinProxy([f"http://127.0.0.1:{port}" for port in ports])
        await proxy.start()
        queue_broadcast(db, f"{NEEDLE} 2027: đăng ký gian hàng trước ngày 15/3 ạ.", author="bench")
        await wait_until(lambda: len(fake.sent_log) >= args.cap, 120, "the broadcast to start", *bots)
        sender = Producers(fake, proxy.url, args.producers)
        try:
            for rate in args.rates:
                phase = Phase(rate, time.time(), count_429_before=fake.count_429())
                phase.cpu_before = time.process_time()
                phase.ended = phase.started + args.duration
                await sender.offer(phase)
                deadline = time.time() + args.drain
                while time.time() < deadline:  # the drain: what was offered is answered, or lost
                    await asyncio.sleep(1.0)
                    if phase.delivering == 0 and waiting(db) == (0, 0):
                        break
                    if any(bot.process is not None and bot.process.poll() is not None for bot in bots):
                        raise SystemExit("a bot process stopped:\n" + "\n".join(b.log() for b in bots))
                await asyncio.sleep(1.0)
                rows.append(report(phase, fake, db, producers, args.cap))
                print_table(rows[-1:]) if len(rows) == 1 else print("  ".join(rows[-1].values()))
        finally:
            await sender.close()
    finally:
        if proxy is not None:
            await proxy.stop()
        for bot in bots:
            await bot.stop()
        await fake.stop()
        db.dispose()
    print(
        f"\nprocesses: {args.processes}, producers: {args.producers}, broadcast to "
        f"{args.producers + args.recipients}, cap = BROADCAST_RATE_PER_SEC = {args.cap:g}/s, "
        f"{args.duration:g} s per rate, database: {db.dialect}"
    )
    print_table(rows)
    return 0


def main() -> int:
    # As in bench/broadcast.py: the fake runs in this process and stamps requests when it handles
    # them; a garbage collection pass here would bunch them up as if the bots had sent them together.
    gc.disable()
    # SIGTERM stops the run as Ctrl+C does: the bot processes are stopped and the database dropped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--rates", default="10,50,100,200", help="updates per second, comma-separated")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of offering per rate")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for late answers")
    parser.add_argument("--producers", type=int, default=1000)
    parser.add_argument("--recipients", type=int, default=10_000, help="broadcast recipients besides them")
    parser.add_argument("--cap", type=float, default=30.0, help="messages per second the fake API allows")
    parser.add_argument("--max-backlog", type=int, help="INBOX_MAX_BACKLOG (default: the setting's)")
    parser.add_argument("--database-url", help="default: a throwaway PostgreSQL database")
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",") if r.strip()]
    if args.database_url:
        return asyncio.run(run(args, args.database_url))
    pgdb = [sys.executable, str(Path(ROOT) / "scripts" / "pgdb.py")]
    url = subprocess.run([*pgdb, "create"], check=True, capture_output=True, text=True).stdout.strip()
    try:
        return asyncio.run(run(args, url))
    finally:
        subprocess.run([*pgdb, "drop", url], check=False)


if __name__ == "__main__":
    sys.exit(main())
