"""The scheduler's sweep across processes: two schedulers on one database (each with its own engine,
as two processes have) ticking at the same moment sweep once; after the interval either may sweep
again; a holder that died keeps the sweep only until its lease runs out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest

from bot.scheduler import MIN_SWEEP_LEASE, SWEEP_JOB, ReminderScheduler, SweepResult
from bot.services import Services
from bot.settings import Settings
from handlers.dialogue import Dialogue
from handlers.texts import Texts
from knowledge.catalog import Catalog
from storage.db import Database
from storage.models import utcnow
from storage.repositories import Repos

INTERVAL = 60.0


class Clock:
    """The time both processes read, moved by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class CountingScheduler(ReminderScheduler):
    """The real scheduler, counting the sweeps it really ran."""

    sweeps = 0

    def sweep_once(self) -> SweepResult:
        self.sweeps += 1
        return super().sweep_once()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def second_db(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


def scheduler(db: Database, catalog: Catalog, clock: Clock, interval: float = INTERVAL) -> CountingScheduler:
    texts = Texts()
    dialogue = Dialogue(db, catalog, texts)
    services = Services(Settings(_env_file=None), db, catalog, texts, dialogue, dialogue.services)
    return CountingScheduler(services, interval_seconds=interval, clock=clock)


@pytest.fixture
def pair(database: Database, second_db: Database, catalog: Catalog, clock: Clock) -> list[CountingScheduler]:
    return [scheduler(database, catalog, clock), scheduler(second_db, catalog, clock)]


def sweeps(schedulers: list[CountingScheduler]) -> int:
    return sum(s.sweeps for s in schedulers)


async def tick_together(schedulers: list[CountingScheduler]) -> list[SweepResult | None]:
    return list(await asyncio.gather(*(s.tick() for s in schedulers)))


async def test_two_processes_ticking_at_once_sweep_once(pair: list[CountingScheduler], clock: Clock) -> None:
    results = await tick_together(pair)
    assert sweeps(pair) == 1
    assert sum(r is not None for r in results) == 1
    clock.advance(INTERVAL / 2)  # the other process's tick, half an interval later: not due yet
    await tick_together(pair)
    assert sweeps(pair) == 1


async def test_after_the_interval_either_process_may_sweep(
    pair: list[CountingScheduler], clock: Clock
) -> None:
    first, second = pair
    assert await first.tick() is not None
    assert await second.tick() is None
    clock.advance(INTERVAL)
    assert await second.tick() is not None  # the other one now
    assert await first.tick() is None
    assert (first.sweeps, second.sweeps) == (1, 1)
    for _ in range(5):  # many ticks, every interval: one sweep each time
        clock.advance(INTERVAL)
        await tick_together(pair)
    assert sweeps(pair) == 7


async def test_a_tick_a_little_early_still_sweeps(pair: list[CountingScheduler], clock: Clock) -> None:
    await pair[0].tick()
    clock.advance(INTERVAL - 1)
    assert await pair[1].tick() is not None


async def test_a_holder_that_died_loses_the_sweep_when_its_lease_ends(
    database: Database, second_db: Database, catalog: Catalog, clock: Clock
) -> None:
    interval = 1.0  # the lease lasts two intervals: due again before the dead holder's lease ends
    pair = [scheduler(db, catalog, clock, interval) for db in (database, second_db)]
    lease = pair[0].lease_seconds
    assert lease == 2 * interval
    with database.unit() as repos:  # a process took the sweep and died before giving it back
        assert repos.job_leases.take(SWEEP_JOB, "dead-process", clock(), lease, interval)
    clock.advance(interval)  # due again, but the dead holder's lease still runs
    await tick_together(pair)
    assert sweeps(pair) == 0
    clock.advance(lease - interval + 0.1)
    await tick_together(pair)
    assert sweeps(pair) == 1
    with database.session() as s:
        row = Repos(s).job_leases.get(SWEEP_JOB)
        assert row is not None and row.holder in {p.holder for p in pair}
        assert row.lease_until <= clock()  # given back once the sweep was done


async def test_a_failed_sweep_gives_the_lease_back(
    pair: list[CountingScheduler], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = pair

    def broken() -> SweepResult:
        raise RuntimeError("database went away")

    monkeypatch.setattr(first, "sweep_once", broken)
    assert await first.tick() is None
    clock.advance(INTERVAL)
    assert await second.tick() is not None  # not held by the failed run


class SlowScheduler(ReminderScheduler):
    """A sweep longer than its lease (a big sweep at national size)."""

    def sweep_once(self) -> SweepResult:
        time.sleep(3.0)
        return SweepResult(0, 0, 0)


async def test_a_long_sweep_keeps_its_lease_while_every_thread_is_busy(
    database: Database, second_db: Database, catalog: Catalog
) -> None:
    busy_threads = ThreadPoolExecutor(2)
    loop = asyncio.get_running_loop()
    loop.set_default_executor(busy_threads)
    texts = Texts()
    dialogue = Dialogue(database, catalog, texts)
    services = Services(Settings(_env_file=None), database, catalog, texts, dialogue, dialogue.services)
    sweeper = SlowScheduler(services, interval_seconds=0.5)
    assert sweeper.lease_seconds == MIN_SWEEP_LEASE < 3.0
    sweep = asyncio.create_task(sweeper.tick())
    await asyncio.sleep(0.3)
    blocker = loop.run_in_executor(None, time.sleep, 2.7)  # the dialogue's work fills the other thread
    taken_by_other = False
    try:
        while not sweep.done():  # another process tries all along
            with second_db.unit() as repos:
                taken_by_other |= repos.job_leases.take(SWEEP_JOB, "other", utcnow(), 2.0, 0.0)
            await asyncio.sleep(0.1)
        assert await sweep is not None
    finally:
        await blocker
        busy_threads.shutdown(wait=False)
    assert not taken_by_other
