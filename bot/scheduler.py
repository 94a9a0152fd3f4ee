"""The periodic sweep on a timer (APScheduler): sync the deadline calendar, plan reminders for
subscribers, queue the due ones in the outbox, mark delivered broadcasts done, and purge what is past
its keeping time. The sweep holds no state of its own: every
reminder is a database row, so a restart, or a second process, neither loses nor repeats one.

Every process of a deployment ticks, but the sweep runs once per interval across all of them: a tick
first takes the sweep's lease (a ``job_leases`` row, ``JobLeaseRepo.take``) and skips when another
process holds it or ran the sweep less than an interval ago. The holder renews the lease while the
sweep runs; one that dies loses it when the lease runs out (two intervals, at most ``SWEEP_LEASE``
seconds)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.services import Services
from services.reminders import sync_deadlines
from storage.models import utcnow

log = logging.getLogger(__name__)
# Handled updates are kept this long, so a platform's late redelivery is still recognised.
INBOX_KEPT = timedelta(days=7)
SWEEP_JOB = "reminder-sweep"
# The lease (seconds) lasts two intervals, within these bounds; renewed every third of it meanwhile.
SWEEP_LEASE = 30.0
MIN_SWEEP_LEASE = 2.0
# A tick may come a little early (timer jitter, another process's phase): it still counts as due.
EARLY_TOLERANCE = 0.1


@dataclass(frozen=True)
class SweepResult:
    deadlines: int
    planned: int
    queued: int


class ReminderScheduler:
    def __init__(
        self,
        services: Services,
        on_queued: Callable[[], None] = lambda: None,
        interval_seconds: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.services = services
        self.on_queued = on_queued
        self.interval_seconds = interval_seconds
        self.clock = clock
        self.scheduler: AsyncIOScheduler | None = None
        self._sweeping = asyncio.Lock()
        self.lease_seconds = min(SWEEP_LEASE, max(2 * interval_seconds, MIN_SWEEP_LEASE))
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[-64:]

    def sweep_once(self) -> SweepResult:
        now = self.clock()
        core = self.services.core
        reminders = core.reminders
        with self.services.db.unit() as repos:
            kb = self.services.catalog.kb
            deadlines = sync_deadlines(repos, kb.deadlines, now.astimezone(reminders.settings.tz).date())
            planned = reminders.plan(repos, kb, now)
            queued = reminders.queue_due(repos, now)
            core.broadcasts.finish_delivered(repos, now)
            repos.inbox.purge_handled(now - INBOX_KEPT)
            core.personal_data.purge_expired(repos, now)
            repos.login_failures.purge(now - timedelta(days=1))
            repos.staff.purge_expired_sessions(now)
        return SweepResult(deadlines, planned, queued)

    # --- once across processes ---

    def _take_lease(self) -> bool:
        every = self.interval_seconds * (1 - EARLY_TOLERANCE)
        with self.services.db.unit() as repos:
            return repos.job_leases.take(SWEEP_JOB, self.holder, self.clock(), self.lease_seconds, every)

    def _renew_lease(self) -> bool:
        with self.services.db.unit() as repos:
            until = self.clock() + timedelta(seconds=self.lease_seconds)
            return repos.job_leases.renew(SWEEP_JOB, self.holder, until)

    def _release_lease(self) -> None:
        with self.services.db.unit() as repos:
            repos.job_leases.release(SWEEP_JOB, self.holder, self.clock())

    async def _keep_lease(self, thread: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                if not await loop.run_in_executor(thread, self._renew_lease):
                    log.warning("reminder sweep: the lease was lost to another process while sweeping")
                    return
            except Exception:
                log.exception("reminder sweep: renewing the lease failed; trying again")

    async def _leased_sweep(self) -> SweepResult:
        # Renewed on a thread of its own: not behind the dialogue's work when every worker thread is busy.
        lease_thread = ThreadPoolExecutor(1, thread_name_prefix="sweep-lease")
        keeper = asyncio.create_task(self._keep_lease(lease_thread))
        try:
            return await asyncio.to_thread(self.sweep_once)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            lease_thread.shutdown(wait=False)
            with contextlib.suppress(Exception):  # if not released, the lease simply runs out
                await asyncio.to_thread(self._release_lease)

    async def tick(self) -> SweepResult | None:
        """Sweep if this process gets the sweep's lease; None when skipped (or failed)."""
        try:
            async with self._sweeping:
                if not await asyncio.to_thread(self._take_lease):
                    log.debug("reminder sweep: another process holds it or ran it lately; skipped")
                    return None
                # Shielded: shutting the scheduler down cancels running jobs, but a sweep is one short
                # transaction in a worker thread and is better left to finish than cut.
                result = await asyncio.shield(self._leased_sweep())
        except asyncio.CancelledError:
            log.info("reminder sweep outlived the scheduler; the next start sweeps again")
            return None
        except Exception:
            log.exception("reminder sweep failed; it runs again at the next tick")
            return None
        if result.queued:
            log.info("queued %d reminder(s)", result.queued)
            self.on_queued()
        return result

    async def start(self) -> None:
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.interval_seconds,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            id=SWEEP_JOB,
        )
        self.scheduler.start()

    async def stop(self) -> None:
        """Stop the timer, then let a sweep that is under way finish (it is short) rather than cut it."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()
            async with self._sweeping:
                self.scheduler.shutdown(wait=False)
