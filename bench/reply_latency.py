"""Reply latency: from an incoming Telegram update to the replies being handed to the channel.

Builds a knowledge base padded to 300 programmes, a SQLite (or ``--database-url``) database with
10,000 stored users (profiles, conversation state, message history), then plays a mix of real
conversations (start, browse, cards, free questions, a whole eligibility check) as Telegram
``Update`` objects through the adapter's conversion and the dialogue in a worker thread, exactly
as the running bot does. Prints p50/p95/max per kind of step and overall.

    .venv/bin/python -m bench.reply_latency [--users 10000] [--rounds 40] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert
from telegram import Bot, Update

from bench.search_accuracy import padded
from bot.channels.telegram import to_incoming
from handlers.dialogue import Dialogue
from handlers.texts import Texts
from handlers.types import Reply
from knowledge.catalog import Catalog
from knowledge.eligibility import Evaluator
from knowledge.loader import load_knowledge
from knowledge.search import SearchIndex
from storage.db import Database
from storage.models import Conversation, MessageLog, Profile, User

PROVINCES = ["Nghệ An", "Thanh Hóa", "Phú Thọ", "Đắk Lắk", "Lâm Đồng", "Hà Nội", "Sơn La", "An Giang"]
QUESTIONS = [
    "mua may say nong san duoc ho tro bao nhieu",
    "hỗ trợ đi hội chợ nước ngoài mấy lần một năm",
    "dang ky nhan hieu cho htx duoc bao nhieu tien",
    "nop ho so khuyen cong o dau",
    "xuong toi ton dien qua co chuong trinh nao giup khong",
    "thoi tiet mai the nao",
]


def seed_users(db: Database, count: int) -> None:
    now = datetime.now(UTC)
    rng = random.Random(1)
    with db.engine.begin() as conn:
        conn.execute(
            insert(User),
            [
                {
                    "channel": "telegram",
                    "external_id": str(10_000_000 + i),
                    "display_name": f"Người dùng {i}",
                    "is_blocked": False,
                    "created_at": now,
                    "last_seen_at": now,
                }
                for i in range(count)
            ],
        )
        conn.execute(
            insert(Profile),
            [
                {
                    "user_id": i + 1,
                    "province": rng.choice(PROVINCES),
                    "legal_form": "household_business",
                    "interests": [],
                    "updated_at": now,
                }
                for i in range(count)
            ],
        )
        conn.execute(
            insert(Conversation),
            [
                {"user_id": i + 1, "flow": "menu", "data": {}, "menu_version": 3, "updated_at": now}
                for i in range(count)
            ],
        )
        conn.execute(
            insert(MessageLog),
            [
                {
                    "user_id": rng.randint(1, count),
                    "channel": "telegram",
                    "direction": "in",
                    "kind": "text",
                    "text": rng.choice(QUESTIONS),
                    "created_at": now,
                }
                for _ in range(count * 3)
            ],
        )


class Player:
    """Builds Telegram updates as the Bot API would send them."""

    def __init__(self) -> None:
        self.bot = Bot("123456:BENCH")
        self.update_id = 0
        self.message_id = 0

    def _next(self) -> tuple[int, int]:
        self.update_id += 1
        self.message_id += 1
        return self.update_id, self.message_id

    def text(self, chat_id: int, text: str) -> Update:
        update_id, message_id = self._next()
        user = {"id": chat_id, "is_bot": False, "first_name": "Bench"}
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": user,
            "text": text,
        }
        return Update.de_json({"update_id": update_id, "message": message}, self.bot)

    def press(self, chat_id: int, data: str) -> Update:
        update_id, message_id = self._next()
        user = {"id": chat_id, "is_bot": False, "first_name": "Bench"}
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": 1, "is_bot": True, "first_name": "Bot"},
            "text": "menu",
        }
        query = {"id": str(update_id), "from": user, "chat_instance": "ci", "data": data, "message": message}
        return Update.de_json({"update_id": update_id, "callback_query": query}, self.bot)


async def play(dialogue: Dialogue, rounds: int, users: int) -> dict[str, list[float]]:
    player = Player()
    samples: dict[str, list[float]] = defaultdict(list)
    rng = random.Random(2)

    async def step(kind: str, update: Update) -> list[Reply]:
        start = time.perf_counter()
        incoming = to_incoming(update)
        if incoming is None:
            raise ValueError(f"the bot does not answer this update: {update}")
        replies = await asyncio.to_thread(dialogue.handle, incoming)
        samples[kind].append((time.perf_counter() - start) * 1000)
        return replies

    def answer_data(replies: list[Reply], suffix: str) -> str:
        return next(b.data for r in replies for b in r.flat_buttons if b.data.endswith(suffix))

    for _ in range(rounds):
        chat = 10_000_000 + rng.randrange(users)
        await step("start", player.text(chat, "/start"))
        await step("browse", player.press(chat, "mb"))
        await step("category", player.press(chat, "c:machinery"))
        await step("card", player.press(chat, "p:machinery-national"))
        await step("question", player.text(chat, rng.choice(QUESTIONS)))
        replies = await step("eligibility", player.press(chat, "er"))
        for suffix in (":household_business", ":production"):
            replies = await step("eligibility", player.press(chat, answer_data(replies, suffix)))
        replies = await step("eligibility", player.text(chat, rng.choice(PROVINCES)))
        while any(b.data.startswith("s:") for r in replies for b in r.flat_buttons):
            data = [b.data for r in replies for b in r.flat_buttons if b.data.startswith("s:")]
            pick = next((d for d in data if d.endswith((":no", ":skip"))), data[0])
            replies = await step("eligibility", player.press(chat, pick))
    return samples


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()

    kb = padded(load_knowledge(), 300 + len([e for e in load_knowledge().entries if e.kind == "faq"]))
    catalog = Catalog(kb=kb, index=SearchIndex.build(kb), evaluator=Evaluator(kb))
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        db.migrate()
        seed_users(db, args.users)
        dialogue = Dialogue(db, catalog, Texts())
        samples = asyncio.run(play(dialogue, args.rounds, args.users))
        db.dispose()
    print(f"programmes: {len(kb.programmes)}, stored users: {args.users}, database: {db.dialect}")
    everything = [v for values in samples.values() for v in values]
    for kind, values in [*sorted(samples.items()), ("all", everything)]:
        print(
            f"{kind:12} n={len(values):5}  p50 {statistics.median(values):6.2f} ms  "
            f"p95 {percentile(values, 0.95):6.2f} ms  max {max(values):6.2f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
