"""The paced outbox: delivers every message the bot sends (live replies, notifications, reminders,
broadcasts), each once, within one send budget per bot token.

- **One budget, shared.** Before each message a sender reserves a slot of its channel's budget (a
  database row, so every process of a deployment shares it): live replies take the next slot even
  if it is a little ahead, the rest only take slots that are free now, so replies go first and
  broadcasts use what is left. A 429 pauses the budget for its ``retry_after``, for everyone.
- **Claimed just before sending.** A message is claimed (``pending`` -> ``sending``) when its slot is
  reserved, a fraction of a second before its HTTP call, under a lease the sender renews every
  second. Any sender gives back
  messages whose lease ran out (their sender died): they go out again, marked ``ambiguous`` because
  the platform may already have delivered them. At most ``concurrency`` messages per channel can be
  in that state after a crash; every other message is either sent or still pending.
- **One chat at a time.** A chat with a message in flight is skipped; proactive messages also wait a
  second after the last message to that chat. Messages to one chat go in order.
- **Outcomes** are recorded as soon as the platform answers: ``sent``, ``blocked`` (the user blocked
  the bot: marked and skipped from now on), ``failed`` (refused, or still failing after
  ``max_attempts``), or back to ``pending`` later (flood limit: its ``retry_after``; temporary
  errors: exponential back-off).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.metrics import Metrics
from handlers.notify import as_reply
from handlers.types import Reply
from services.notifications import PROACTIVE_FROM
from storage.db import Database
from storage.models import OutboxMessage, utcnow
from storage.repositories import Repos

log = logging.getLogger(__name__)
# Requests leave evenly spaced but arrive with network jitter; pacing a little under the configured
# rate keeps every one-second window below the platform's limit.
PACE_MARGIN = 0.97
LIVE_HORIZON = 3600.0  # a live reply takes the next slot however far ahead it is
LATE_TOLERANCE = 0.005  # seconds a send may leave after its slot (at least a quarter of the spacing)
MAX_RESLOTS = 5
STOP_GRACE = 10.0

Pace = Callable[[], Awaitable[None]]


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
    """One channel's way of sending a reply to a chat.

    A reply may need several platform messages (long text is split); ``pace`` is awaited before
    each one after the first, so every platform message has its slot in the budget.
    """

    channel: str
    native_buttons: bool

    async def deliver(self, chat_id: str, reply: Reply, pace: Pace) -> None: ...


class ChannelTransport(Transport, Protocol):
    """A transport the runner starts before the outbox runs and stops after (its platform client)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class _Channel:
    """One channel's budget: its key (one per bot token), spacing between sends, and look-ahead."""

    name: str
    key: str
    interval: float
    horizon: float
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # True while the queue is known to hold proactive messages and nothing new was queued since:
    # the next slot is reserved without looking at the queue first.
    busy_with_bulk: bool = False
    # Until when this process heard the platform say "wait" (the budget row says it to the others).
    paused_until: float = 0.0


@dataclass(frozen=True)
class _Plan:
    live: bool = False
    slot: float | None = None
    wait_until: float | None = None


@dataclass
class SenderStats:
    sent: int = 0
    retry_after: int = 0
    recovered: int = 0


class OutboxSender:
    def __init__(
        self,
        db: Database,
        transports: Mapping[str, Transport],
        rates: dict[str, float],
        *,
        budget_keys: dict[str, str] | None = None,
        concurrency: int = 8,
        lease_seconds: float = 5.0,
        heartbeat_seconds: float = 1.0,
        per_chat_interval: float = 1.0,
        max_attempts: int = 8,
        poll_interval: float = 1.0,
        margin: float = PACE_MARGIN,
        clock: Callable[[], datetime] = utcnow,
        worker_id: str | None = None,
        metrics: Metrics | None = None,
    ):
        self.db = db
        self.metrics = metrics or Metrics()
        self.transports = transports
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.per_chat_interval = per_chat_interval
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self.clock = clock
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self.stats = SenderStats()
        keys = budget_keys or {}
        self._channels: dict[str, _Channel] = {}
        for name in transports:
            interval = 1.0 / (rates.get(name, 10.0) * margin)
            self._channels[name] = _Channel(name, keys.get(name, name), interval, max(2 * interval, 0.05))
        self._slots = {name: asyncio.Semaphore(concurrency) for name in transports}
        self._inflight: dict[int, OutboxMessage] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- running ---

    def wake(self) -> None:
        """New rows were queued: look now instead of at the next poll (safe from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake_all()
        else:
            loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for channel in self._channels.values():
            channel.wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set, then let messages in flight finish (a few seconds at most)."""
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._prepare)
        loops = [asyncio.create_task(self._channel_loop(c, stop)) for c in self._channels.values()]
        # Leases are renewed on a thread of their own: when every worker thread is busy (with the
        # dialogue's work, say), another process must not take this one's messages for a dead sender's.
        lease_thread = ThreadPoolExecutor(1, thread_name_prefix="outbox-lease")
        heartbeat = asyncio.create_task(self._heartbeat(lease_thread))
        try:
            await stop.wait()
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._finish()
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            lease_thread.shutdown(wait=False)

    async def _finish(self) -> None:
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=STOP_GRACE)
        for task in late:  # their rows stay "sending" and are given back when the lease ends
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _channel_loop(self, channel: _Channel, stop: asyncio.Event) -> None:
        slots = self._slots[channel.name]
        while not stop.is_set():
            await slots.acquire()
            if channel.wake.is_set():
                channel.wake.clear()
                channel.busy_with_bulk = False  # something new: maybe a reply, look first
            try:
                plan = await asyncio.to_thread(self._plan, channel)
            except Exception:
                log.exception("outbox: planning the next %s message failed; retrying", channel.name)
                slots.release()
                await asyncio.sleep(self.poll_interval)
                continue
            if plan.live:
                self._spawn(self._send_reply(channel))
                continue
            if plan.slot is not None:
                self._spawn(self._send_at(channel, plan.slot))
                continue
            slots.release()
            timeout = self.poll_interval if plan.wait_until is None else plan.wait_until - time.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(channel.wake.wait(), max(min(timeout, self.poll_interval), 0.001))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_at(self, channel: _Channel, slot: float) -> None:
        """A proactive message: its slot is reserved (at most a fraction of a second ahead); claim
        the next message, wait for the slot, send. The request leaves on time, so no burst builds up
        at the platform."""
        await self._claim_and_send(channel, slot)

    async def _send_reply(self, channel: _Channel) -> None:
        """A reply: claim it first, then take the very next slot (nothing is reserved in vain when
        another sender was quicker, or when the chat is still busy with the reply's first part)."""
        await self._claim_and_send(channel, None)

    async def _claim_and_send(self, channel: _Channel, slot: float | None) -> None:
        row: OutboxMessage | None = None
        try:
            row = await asyncio.to_thread(self._claim, channel.name)
            if row is None:
                channel.busy_with_bulk = False
                if slot is not None:  # the queue changed meanwhile: the slot is given back
                    await asyncio.to_thread(self._give_back, channel, slot)
                return
            assert row.id is not None
            self._inflight[row.id] = row  # its lease is renewed from now on
            await self._wait_for(channel, slot if slot is not None else await self._reserve_any(channel))
            await self._deliver(channel, row)
        except Exception:
            log.exception("outbox: sending on %s failed unexpectedly", channel.name)
        finally:
            if row is not None and row.id is not None:
                self._inflight.pop(row.id, None)
            self._slots[channel.name].release()

    async def _deliver(self, channel: _Channel, row: OutboxMessage) -> None:
        assert row.id is not None
        transport = self.transports[row.channel]
        try:
            await transport.deliver(
                row.chat_id,
                as_reply(row.text, row.buttons, row.ask_contact),
                lambda: self._next_part(channel),
            )
        except RetryLater as exc:
            self.stats.retry_after += 1
            self.metrics.flood_limited(row.channel)
            channel.paused_until = max(channel.paused_until, time.time() + exc.seconds)
            await asyncio.to_thread(self._record_retry_after, channel, row, exc)
        except DeliveryError as exc:
            self.metrics.delivery_failed(row.channel, type(exc).__name__.lower())
            await asyncio.to_thread(self._record_failure, row, exc)
        except Exception as exc:  # an unexpected client error counts as temporary
            log.exception("unexpected error sending outbox row %s", row.id, extra={"outbox_id": row.id})
            self.metrics.delivery_failed(row.channel, "temporary")
            await asyncio.to_thread(self._record_failure, row, Temporary(repr(exc)))
        else:
            self.stats.sent += 1
            self.metrics.message_sent(row.channel, row.kind)
            await asyncio.to_thread(self._record_sent, row, self.clock())
        # The chat is free again: its next message (the second part of a reply) can go now.
        channel.wake.set()

    async def _wait_for(self, channel: _Channel, slot: float) -> None:
        """Sleep until ``slot``. Woken too late (the process stalled, or the database was busy), the
        slot is given up for a new one: late sends would go out together with on-time ones, a burst
        the platform refuses. After a few tries the message goes anyway."""
        tolerance = max(channel.interval / 4, LATE_TOLERANCE)
        for attempt in range(MAX_RESLOTS + 1):
            delay = slot - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if channel.paused_until > time.time():  # a 429 came while this one waited for its slot
                await asyncio.sleep(channel.paused_until - time.time())
            elif time.time() - slot <= tolerance or attempt == MAX_RESLOTS:
                return
            slot = await self._reserve_any(channel)

    async def _reserve_any(self, channel: _Channel) -> float:
        while True:
            slot = await asyncio.to_thread(self._reserve, channel, LIVE_HORIZON)
            if slot is not None:
                return slot
            await asyncio.sleep(channel.interval)  # paused by a flood limit

    async def _next_part(self, channel: _Channel) -> None:
        """A further platform message of the same reply: it takes a slot of its own."""
        await self._wait_for(channel, await self._reserve_any(channel))

    async def _heartbeat(self, thread: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                recovered = await loop.run_in_executor(thread, self._renew_and_recover, list(self._inflight))
            except Exception:
                log.exception("outbox: renewing leases failed; retrying")
                continue
            if recovered:
                self._wake_all()

    # --- database steps (each one short transaction, run in a worker thread) ---

    def _prepare(self) -> None:
        with self.db.session() as s:
            repos = Repos(s)
            for channel in self._channels.values():
                repos.budget.ensure(channel.key)
        self._renew_and_recover([])

    def _renew_and_recover(self, mine: list[int]) -> int:
        now = self.clock()
        with self.db.session() as s:
            repos = Repos(s)
            repos.outbox.renew(mine, self.worker_id, now + timedelta(seconds=self.lease_seconds))
            recovered = repos.outbox.recover_expired(now, keep=mine)
        if recovered:
            self.stats.recovered += recovered
            self.metrics.messages_resent(recovered)
            log.warning("outbox: %d message(s) of a stopped sender are sent again (ambiguous)", recovered)
        return recovered

    def _plan(self, channel: _Channel) -> _Plan:
        """What to do next: send a reply (claimed first), send a proactive message at a reserved
        slot, look again at a given time (the budget is taken or paused), or wait (nothing to send)."""
        now = self.clock()
        with self.db.session() as s:
            repos = Repos(s)
            if not channel.busy_with_bulk:
                priority = repos.outbox.next_priority(
                    channel.name, now, time.time(), PROACTIVE_FROM, self.per_chat_interval
                )
                if priority is None:
                    return _Plan()
                if priority < PROACTIVE_FROM:
                    return _Plan(live=True)
                channel.busy_with_bulk = True
            slot = repos.budget.reserve(channel.key, channel.interval, channel.horizon)
            if slot is not None:
                return _Plan(slot=slot)
            next_slot, paused_until = repos.budget.state(channel.key)
            return _Plan(wait_until=max(paused_until, next_slot - channel.horizon))

    def _reserve(self, channel: _Channel, horizon: float) -> float | None:
        with self.db.session() as s:
            return Repos(s).budget.reserve(channel.key, channel.interval, horizon)

    def _give_back(self, channel: _Channel, slot: float) -> None:
        with self.db.session() as s:
            Repos(s).budget.give_back(channel.key, slot, channel.interval)

    def _claim(self, channel: str) -> OutboxMessage | None:
        with self.db.session() as s:
            return Repos(s).outbox.claim_next(
                channel,
                self.worker_id,
                self.clock(),
                time.time(),
                self.lease_seconds,
                PROACTIVE_FROM,
                self.per_chat_interval,
            )

    def _record_sent(self, row: OutboxMessage, delivered_at: datetime | None = None) -> None:
        assert row.id is not None
        with self.db.session() as s:
            repos = Repos(s)
            if not repos.outbox.mark_sent(row.id, self.worker_id, self.clock()):
                late = "outbox row %s was sent after its lease ran out (ambiguous)"
                log.warning(late, row.id, extra={"outbox_id": row.id})
            elif row.kind == "reply":
                arrived = repos.metrics.first_reply_arrival(row.id, row.source_id)
                self.metrics.reply_delivered(row.channel, arrived, delivered_at or self.clock())
            repos.pacing.release(row.user_id, sent_at=time.time())
        if row.ephemeral:
            self.db.flush_deleted()

    def _record_retry_after(self, channel: _Channel, row: OutboxMessage, error: RetryLater) -> None:
        assert row.id is not None
        with self.db.session() as s:
            repos = Repos(s)
            repos.budget.pause(channel.key, time.time() + error.seconds)
            when = self.clock() + timedelta(seconds=error.seconds)
            repos.outbox.retry_later(row.id, self.worker_id, when, str(error), count_attempt=False)
            repos.pacing.release(row.user_id, sent_at=None)

    def _record_failure(self, row: OutboxMessage, error: DeliveryError) -> None:
        assert row.id is not None
        with self.db.session() as s:
            repos = Repos(s)
            attempts = repos.outbox.attempts(row.id) + 1
            final = isinstance(error, Blocked | Permanent) or attempts >= self.max_attempts
            if isinstance(error, Blocked):
                repos.outbox.mark_failed(row.id, self.worker_id, "blocked", str(error))
                repos.users.mark_blocked(row.user_id)
            elif final:
                repos.outbox.mark_failed(row.id, self.worker_id, "failed", str(error))
            else:
                when = self.clock() + timedelta(seconds=min(2**attempts, 300))
                repos.outbox.retry_later(row.id, self.worker_id, when, str(error), count_attempt=True)
            repos.pacing.release(row.user_id, sent_at=None)
            if final and row.ephemeral:
                repos.outbox.forget(row.id)
