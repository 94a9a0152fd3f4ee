"""The periodic sweep on a timer (APScheduler): sync the deadline calendar, plan reminders for
subscribers, queue the due ones in the outbox, mark delivered broadcasts done, and purge what is past
its keeping time. The sweep holds no state of its own: every
reminder is a database row, so a restart, or a second process, neither loses nor repeats one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.services import Services
from services.reminders import sync_deadlines
from storage.models import utcnow

log = logging.getLogger(__name__)
# Handled updates are kept this long, so a platform's late redelivery is still recognised.
INBOX_KEPT = timedelta(days=7)


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

    async def tick(self) -> SweepResult | None:
        try:
            async with self._sweeping:
                # Shielded: shutting the scheduler down cancels running jobs, but a sweep is one short
                # transaction in a worker thread and is better left to finish than cut.
                result = await asyncio.shield(asyncio.to_thread(self.sweep_once))
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
            id="reminder-sweep",
        )
        self.scheduler.start()

    async def stop(self) -> None:
        """Stop the timer, then let a sweep that is under way finish (it is short) rather than cut it."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()
            async with self._sweeping:
                self.scheduler.shutdown(wait=False)
