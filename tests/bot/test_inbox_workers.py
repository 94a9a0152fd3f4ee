"""The inbox with several processes on one database: each process has its own engine and its own
``InboxWorker``, updates of many chats arrive interleaved through all of them, and each chat's updates
are handled strictly in order, never two of one chat at once, none twice, none lost. Also: a chat's
update stored by one process while another process is still storing its earlier one waits for it, so
no worker ever sees the later one first."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlmodel import select

from bot.inbox import InboxWorker
from handlers.types import Receipt
from storage.db import Database
from storage.models import InboxUpdate, utcnow
from storage.repositories import Repos

PROCESSES = 3
CHATS = 24
UPDATES_PER_CHAT = 6


class RecordingChannel:
    """A channel that takes a little time per update and records what it handled, and when."""

    name = "telegram"

    def __init__(self, journal: Journal, process: int):
        self.journal = journal
        self.process = process

    async def handle(self, row: InboxUpdate, receipt: Receipt) -> None:
        self.journal.begin(row.chat_key, int(row.payload["seq"]))
        await asyncio.sleep(random.uniform(0.0, 0.02))
        self.journal.end(row.chat_key, int(row.payload["seq"]), self.process)

    def chat_of(self, row: InboxUpdate) -> str | None:
        return row.chat_key


class Journal:
    """What every process handled, in the order it happened."""

    def __init__(self) -> None:
        self.active: dict[str, int] = defaultdict(int)
        self.overlaps: list[str] = []
        self.handled: dict[str, list[int]] = defaultdict(list)
        self.by_process: dict[int, int] = defaultdict(int)

    def begin(self, chat: str, seq: int) -> None:
        self.active[chat] += 1
        if self.active[chat] > 1:
            self.overlaps.append(f"{chat}#{seq}")

    def end(self, chat: str, seq: int, process: int) -> None:
        self.active[chat] -= 1
        self.handled[chat].append(seq)
        self.by_process[process] += 1


@pytest.fixture
def engines(database: Database, database_url: str) -> Iterator[list[Database]]:
    """One engine per process: the test's database and ``PROCESSES - 1`` more on it."""
    others = [Database(database_url) for _ in range(PROCESSES - 1)]
    yield [database, *others]
    for db in others:
        db.dispose()


def give_up(channel: str, chat: str, receipt: Receipt, error: str) -> None:
    raise AssertionError(f"update of {chat} given up: {error}")


def workers(engines: list[Database], journal: Journal) -> list[InboxWorker]:
    return [
        InboxWorker(
            db, {"telegram": RecordingChannel(journal, i)}, give_up, poll_interval=0.05, concurrency=4
        )
        for i, db in enumerate(engines)
    ]


def statuses(database: Database) -> list[str]:
    with database.session() as s:
        return list(s.exec(select(InboxUpdate.status)).all())


async def test_many_processes_handle_each_chat_in_order_once(engines: list[Database]) -> None:
    journal = Journal()
    running = workers(engines, journal)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in running]

    async def producer(chat: int) -> None:
        """One producer's updates, one after another, each reaching the next process (round-robin)."""
        for seq in range(UPDATES_PER_CHAT):
            worker = running[(chat + seq) % PROCESSES]
            payload: dict[str, Any] = {"seq": seq}
            assert await worker.accept("telegram", f"{chat}-{seq}", f"chat-{chat}", payload)
            await asyncio.sleep(random.uniform(0.0, 0.01))

    try:
        await asyncio.gather(*(producer(chat) for chat in range(CHATS)))
        deadline = time.monotonic() + 60
        while set(statuses(engines[0])) != {"done"}:
            assert time.monotonic() < deadline, statuses(engines[0])
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    check(journal, engines[0])


async def test_updates_of_one_chat_arriving_at_two_processes_at_once_go_in_stored_order(
    engines: list[Database],
) -> None:
    """A platform may deliver a chat's next update before the last one is acknowledged: two
    processes store them at the same moment. They are handled one at a time, in the order stored."""
    journal = Journal()
    running = workers(engines, journal)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in running]

    async def producer(chat: int) -> None:
        for seq in range(0, UPDATES_PER_CHAT, 2):  # two at a time, to two processes
            await asyncio.gather(
                *(
                    running[(chat + n) % PROCESSES].accept(
                        "telegram", f"{chat}-{n}", f"chat-{chat}", {"seq": n}
                    )
                    for n in (seq, seq + 1)
                )
            )

    try:
        await asyncio.gather(*(producer(chat) for chat in range(CHATS)))
        deadline = time.monotonic() + 60
        while set(statuses(engines[0])) != {"done"}:
            assert time.monotonic() < deadline, statuses(engines[0])
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    check(journal, engines[0])


def stored_order(database: Database) -> dict[str, list[int]]:
    """Each chat's updates (their ``seq``) in the order the inbox stored them."""
    order: dict[str, list[int]] = defaultdict(list)
    with database.session() as s:
        for row in s.exec(select(InboxUpdate).order_by(InboxUpdate.id)).all():  # type: ignore[arg-type]
            order[row.chat_key].append(int(row.payload["seq"]))
    return order


def check(journal: Journal, database: Database) -> None:
    assert journal.overlaps == []  # never two updates of one chat at once
    stored = stored_order(database)
    assert {c: seqs for c, seqs in journal.handled.items() if seqs != stored[c]} == {}  # in order
    assert all(sorted(seqs) == list(range(UPDATES_PER_CHAT)) for seqs in journal.handled.values())
    assert len(journal.handled) == CHATS  # none lost, none twice
    assert len(stored) == CHATS
    assert len([p for p, n in journal.by_process.items() if n > 0]) > 1  # several processes handled


def test_a_chats_later_update_waits_for_the_earlier_one_being_stored(engines: list[Database]) -> None:
    first, second, claimer = engines
    stored = threading.Event()

    def store_later() -> None:
        with second.session() as s:
            Repos(s).inbox.add("telegram", "u2", "chat-1", {"seq": 1})
        stored.set()

    def claim() -> list[str]:
        with claimer.session() as s:
            rows = Repos(s).inbox.claim("worker-c", utcnow(), 5.0, 10, set())
            return [row.update_key for row in rows]

    with first.session() as s:  # one process is storing the chat's first update...
        Repos(s).inbox.add("telegram", "u1", "chat-1", {"seq": 0})
        later = threading.Thread(target=store_later)
        later.start()  # ...as another stores its second
        time.sleep(0.4)
        claimed_meanwhile = claim()
    later.join(timeout=30)
    assert stored.is_set()
    assert claimed_meanwhile == []  # the second was not handed out before the first
    assert claim() == ["u1"]  # the first comes first...
    assert claim() == []  # ...and the second only once the first is done


class SlowChannel:
    """Handling takes a while in a worker thread, as the dialogue does under load."""

    name = "telegram"

    async def handle(self, row: InboxUpdate, receipt: Receipt) -> None:
        await asyncio.to_thread(time.sleep, 1.5)

    def chat_of(self, row: InboxUpdate) -> str | None:
        return row.chat_key


async def test_a_process_whose_threads_are_all_busy_keeps_its_leases(engines: list[Database]) -> None:
    """Every worker thread busy with dialogue work must not hold up the lease renewals: another
    process would take the updates over (lease ended) and handle them a second time at once."""
    busy_threads = ThreadPoolExecutor(2)
    asyncio.get_running_loop().set_default_executor(busy_threads)
    first, second = engines[0], engines[1]
    worker = InboxWorker(
        first,
        {"telegram": SlowChannel()},
        give_up,
        concurrency=4,
        lease_seconds=0.6,
        heartbeat_seconds=0.1,
        poll_interval=0.05,
    )
    for chat in range(4):
        worker.store("telegram", [(f"slow-{chat}", f"chat-{chat}", {})])
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    taken_over: list[str] = []
    try:
        deadline = time.monotonic() + 10
        while statuses(first).count("working") < 4:
            assert time.monotonic() < deadline, statuses(first)
            await asyncio.sleep(0.02)
        until = time.monotonic() + 2.5
        while time.monotonic() < until:  # the other process looks for work all along
            with second.session() as s:
                taken_over += [r.update_key for r in Repos(s).inbox.claim("other", utcnow(), 5.0, 10, set())]
            await asyncio.sleep(0.05)
        while set(statuses(first)) != {"done"}:
            assert time.monotonic() < deadline + 10, statuses(first)
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
        busy_threads.shutdown(wait=False)
    assert taken_over == []
