"""The paced outbox: delivers every queued message (notifications, reminders, broadcasts) once.

Rows are claimed (``pending`` -> ``sending``) in small batches by one worker at a time, sent below
each channel's overall rate and at most one message per second per chat, and recorded as soon as
the platform answers: ``sent``, ``blocked`` (the user blocked the bot: marked and skipped from now
on), ``failed`` (refused for good, or still failing after a bounded number of retries), or back to
``pending`` with a later ``next_attempt_at`` (flood limit: the platform's ``retry_after`` is
honoured; temporary errors: exponential back-off). The outbox uses its own platform clients, so a
flood limit here never slows the bot's live replies.

Rows left ``sending`` by a crashed process are given back after ``stale_after`` seconds; a clean
stop gives back at once what it claimed but did not send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import update
from sqlmodel import col, select

from handlers.notify import as_reply
from handlers.types import Reply
from storage.db import Database
from storage.models import Conversation, OutboxMessage, utcnow
from storage.repositories import Repos

log = logging.getLogger(__name__)
# Requests leave evenly spaced but arrive with network jitter; pacing a little under the configured
# rate keeps every one-second window below the platform's limit.
PACE_MARGIN = 0.98


class DeliveryError(Exception):
    """Why a message could not be delivered."""


class Blocked(DeliveryError):
    """The user blocked the bot or deleted the chat."""


class RetryLater(DeliveryError):
    """The platform asked us to wait (HTTP 429 with ``retry_after``)."""

    def __init__(self, seconds: float, message: str = ""):
        super().__init__(message or f"retry after {seconds}s")
        self.seconds = seconds


class Temporary(DeliveryError):
    """A network error or a server error: worth trying again later."""


class Permanent(DeliveryError):
    """The platform refused this message for good (bad request)."""


class Transport(Protocol):
    """One channel's way of sending a reply to a chat."""

    channel: str
    native_buttons: bool

    async def deliver(self, chat_id: str, reply: Reply) -> None: ...


@dataclass
class _Pace:
    """Overall pace of one channel, plus its pause after a flood-limit answer."""

    interval: float
    next_slot: float = 0.0
    paused_until: float = 0.0


@dataclass
class OutboxSender:
    db: Database
    transports: dict[str, Transport]
    rates: dict[str, float]
    per_chat_interval: float = 1.0
    max_attempts: int = 8
    batch_size: int = 20
    concurrency: int = 8
    stale_after: float = 30.0
    poll_interval: float = 1.0
    clock: Callable[[], datetime] = utcnow
    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        self._paces = {
            name: _Pace(1.0 / (self.rates.get(name, 10.0) * PACE_MARGIN)) for name in self.transports
        }
        self._last_to_chat: dict[tuple[str, str], float] = {}
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._semaphore = asyncio.Semaphore(self.concurrency)

    # --- running ---

    def wake(self) -> None:
        """New rows were queued: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.to_thread(self.recover_stale)
        while not stop.is_set():
            try:
                handled = await self.drain_once(stop, wait=False)
            except Exception:
                log.exception("outbox pass failed; retrying shortly")
                handled = 0
            if handled == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._first_of(stop), timeout=self.poll_interval)
        await self._finish()

    async def _first_of(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def drain_once(self, stop: asyncio.Event | None = None, wait: bool = True) -> int:
        """Claim one batch and start sending it; returns how many rows were handled.

        With ``wait`` false the last deliveries may still be in flight when it returns, so the next
        batch is claimed without a pause (the semaphore still bounds what is in flight).
        """
        loop = asyncio.get_running_loop()
        paused = [name for name, pace in self._paces.items() if pace.paused_until > loop.time()]
        rows = await asyncio.to_thread(self._claim, paused)
        for i, row in enumerate(rows):
            if stop is not None and stop.is_set():
                await asyncio.to_thread(self._release, [r.id for r in rows[i:]])
                break
            await self._send_paced(row, self._semaphore)
        if wait:
            await self._finish()
        return len(rows)

    async def _finish(self) -> None:
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def _send_paced(self, row: OutboxMessage, semaphore: asyncio.Semaphore) -> None:
        loop = asyncio.get_running_loop()
        pace = self._paces.get(row.channel)
        if pace is None:
            await asyncio.to_thread(
                self._record_failure, row.id, Permanent(f"no transport for {row.channel}")
            )
            return
        chat_key = (row.channel, row.chat_id)
        chat_free_at = self._last_to_chat.get(chat_key, -1e9) + self.per_chat_interval
        if chat_free_at > loop.time() or pace.paused_until > loop.time():
            wait = max(chat_free_at, pace.paused_until) - loop.time()
            await asyncio.to_thread(self._release, [row.id], wait)
            return
        now = loop.time()
        if pace.next_slot > now:
            await asyncio.sleep(pace.next_slot - now)
        pace.next_slot = max(pace.next_slot, now) + pace.interval
        self._last_to_chat[chat_key] = loop.time()
        await semaphore.acquire()
        task = asyncio.create_task(self._deliver(row, semaphore))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _deliver(self, row: OutboxMessage, semaphore: asyncio.Semaphore) -> None:
        try:
            transport = self.transports[row.channel]
            await transport.deliver(row.chat_id, as_reply(row.text, row.buttons))
        except RetryLater as exc:
            pace = self._paces[row.channel]
            pace.paused_until = max(pace.paused_until, asyncio.get_running_loop().time() + exc.seconds)
            await asyncio.to_thread(self._record_failure, row.id, exc)
        except DeliveryError as exc:
            await asyncio.to_thread(self._record_failure, row.id, exc)
        except Exception as exc:  # an unexpected client error counts as temporary
            log.exception("unexpected error sending outbox row %s", row.id)
            await asyncio.to_thread(self._record_failure, row.id, Temporary(repr(exc)))
        else:
            await asyncio.to_thread(self._record_sent, row, transport.native_buttons)
        finally:
            semaphore.release()

    # --- database steps (run in a worker thread) ---

    def recover_stale(self) -> int:
        """Give back rows a crashed process left in ``sending``."""
        cutoff = self.clock() - timedelta(seconds=self.stale_after)
        with self.db.session() as s:
            result = s.exec(  # type: ignore[call-overload]
                update(OutboxMessage)
                .where(col(OutboxMessage.status) == "sending", col(OutboxMessage.claimed_at) < cutoff)
                .values(status="pending", claimed_by=None, claimed_at=None)
            )
            return result.rowcount or 0

    def _claim(self, paused_channels: list[str]) -> list[OutboxMessage]:
        now = self.clock()
        with self.db.session() as s:
            stmt = select(OutboxMessage.id).where(
                OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now
            )
            if paused_channels:
                stmt = stmt.where(col(OutboxMessage.channel).not_in(paused_channels))
            ids = list(
                s.exec(
                    stmt.order_by(col(OutboxMessage.priority), col(OutboxMessage.id)).limit(self.batch_size)
                ).all()
            )
            if not ids:
                return []
            s.exec(  # type: ignore[call-overload]
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(ids), col(OutboxMessage.status) == "pending")
                .values(status="sending", claimed_by=self.worker_id, claimed_at=now)
            )
        with self.db.session() as s:
            rows = s.exec(
                select(OutboxMessage)
                .where(
                    col(OutboxMessage.id).in_(ids),
                    OutboxMessage.claimed_by == self.worker_id,
                    OutboxMessage.status == "sending",
                )
                .order_by(col(OutboxMessage.priority), col(OutboxMessage.id))
            ).all()
            return list(rows)

    def _release(self, ids: list[int | None], delay: float = 0.0) -> None:
        if not ids:
            return
        with self.db.session() as s:
            s.exec(  # type: ignore[call-overload]
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(ids), col(OutboxMessage.status) == "sending")
                .values(
                    status="pending",
                    claimed_by=None,
                    claimed_at=None,
                    next_attempt_at=self.clock() + timedelta(seconds=max(delay, 0.0)),
                )
            )

    def _record_sent(self, row: OutboxMessage, native_buttons: bool) -> None:
        with self.db.session() as s:
            message = s.get(OutboxMessage, row.id)
            if message is None:
                return
            message.status = "sent"
            message.sent_at = self.clock()
            message.attempts += 1
            message.last_error = None
            s.add(message)
            if message.buttons and not native_buttons:
                # Text channels answer a menu by its number: remember this one as the last menu shown.
                conversation = s.get(Conversation, message.user_id)
                if conversation is not None:
                    data = dict(conversation.data)
                    data["_buttons"] = [[b["label"], b["data"]] for b in message.buttons]
                    conversation.data = data
                    s.add(conversation)

    def _record_failure(self, row_id: int | None, error: DeliveryError) -> None:
        with self.db.session() as s:
            message = s.get(OutboxMessage, row_id)
            if message is None:
                return
            message.attempts += 1
            message.last_error = str(error)[:1000]
            message.claimed_by = None
            if isinstance(error, Blocked):
                message.status = "blocked"
                Repos(s).users.mark_blocked(message.user_id)
            elif isinstance(error, Permanent) or message.attempts >= self.max_attempts:
                message.status = "failed"
            else:
                delay = error.seconds if isinstance(error, RetryLater) else min(2**message.attempts, 300)
                message.status = "pending"
                message.next_attempt_at = self.clock() + timedelta(seconds=delay)
            s.add(message)
