"""The inbox: every platform update is stored as it arrives, then handled one chat at a time, in order.

- **Intake.** Webhook routes and polling loops call ``InboxWorker.accept`` before they acknowledge
  an update (the 200 of a webhook, the next ``getUpdates`` offset). The row is unique on the
  platform's id, so a repeated delivery is acknowledged and ignored.
- **Handling.** The worker claims the oldest unfinished update of each chat under a lease it renews
  every second, and hands it to its channel. The dialogue marks it done in the same transaction as
  its own writes and the replies it queues in the outbox, so a crash either loses nothing (the update
  is handled again) or has already stored the answer (the outbox sends it).
- **Failures.** An update whose handling raises is tried again after a short pause; after
  ``max_attempts`` it is marked failed and the producer gets a polite message instead of silence.
- On start, updates left unfinished by a stopped process are handled as soon as their lease ends.
- **Many processes.** Any number of workers, in as many processes, share one inbox (PostgreSQL): a
  chat's updates are claimed one at a time, oldest first, by whichever worker is free
  (``InboxRepo.claim``). Leases are renewed on a thread of their own, so a process whose worker
  threads are all busy with dialogue work never loses its updates to another one meanwhile.

Under load, one queue holds what is not answered yet, and it is bounded and visible:

- **Replies first, then the next update.** The worker claims an update of a channel only while that
  channel's live replies waiting in the outbox fill less than ``REPLY_HEADROOM_SECONDS`` of its send
  budget (``reply_headroom``). When updates come faster than the platform lets the bot answer, the
  backlog therefore stays here, in the inbox, instead of growing without bound in the outbox, and an
  update is handled shortly before its answer can go (what it says is as fresh as it can be).
  Broadcasts and reminders only get the slots live replies leave (``bot.outbox``): they slow down
  first.
- **Visible.** ``backlog`` (updates waiting, the oldest one's arrival, across every process of the
  deployment: it is read from the database every ``BACKLOG_REFRESH`` seconds) is shown by
  ``/healthz``.
- **Bounded, nothing dropped.** At ``max_backlog`` (``INBOX_MAX_BACKLOG``) updates waiting,
  ``admitting`` turns False: the webhook routes answer 503 with ``Retry-After`` without storing (the
  platform keeps the update and delivers it again), and the polling loops stop fetching (the platform
  keeps it too). Nothing is acknowledged that is not stored. The bound holds to within what every
  process accepts in one refresh interval.
- In-process work is bounded by ``concurrency`` (updates in hand at once), and fewer when the
  process is short of CPU: the dialogue's threads compete with the event loop for the interpreter,
  and the event loop is what stores updates, shows "typing" and sends. When it wakes up late
  (``LAG_HIGH``), the worker halves how many updates it hands to threads; when it is on time again
  (``LAG_LOW``), it takes one more at a time, up to ``concurrency``. Intake (storing an update,
  reading the backlog) also runs on its own few threads, never queued behind the dialogue's work in
  the default executor. So a flood of updates being handled delays neither storing the next one
  (its 200, its "typing") nor the sending of replies; the backlog waits in the inbox instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.metrics import Metrics
from handlers.types import LeaseLost, Receipt
from services.notifications import PROACTIVE_FROM
from storage.db import Database
from storage.models import InboxUpdate, utcnow
from storage.repositories import Repos

log = logging.getLogger(__name__)
STOP_GRACE = 10.0
BACKLOG_REFRESH = 0.5  # seconds between two readings of the backlog
REPLY_HEADROOM_SECONDS = 2.0  # live replies queued ahead of the send budget, in seconds of sending
RETRY_AFTER_SECONDS = 2  # what a refused webhook call is told
INTAKE_THREADS = 4
INTAKE_BATCH = 200  # webhook updates stored in one transaction at most
INTAKE_QUEUE_MAX = 1000  # webhook updates waiting in this process to be stored; more are refused
LAG_HIGH = 0.1  # seconds the event loop wakes up late: hand fewer updates to threads
LAG_LOW = 0.02  # on time again: one more


def next_limit(current: int, lag: float, most: int) -> int:
    """How many updates to have in hand at once, given how late the event loop just woke up."""
    if lag > LAG_HIGH:
        return max(1, current // 2)
    if lag < LAG_LOW:
        return min(most, current + 1)
    return current


@dataclass(frozen=True)
class Backlog:
    """What waits, as last read from the database: updates not handled yet, when the oldest of them
    arrived, and per channel the live replies queued in the outbox."""

    waiting: int = 0
    oldest: datetime | None = None
    replies: dict[str, int] = field(default_factory=dict)

    def oldest_wait(self, now: datetime) -> float:
        """Seconds the oldest waiting update has waited (0 when none waits)."""
        return max((now - self.oldest).total_seconds(), 0.0) if self.oldest is not None else 0.0


class InboxChannel(Protocol):
    """A channel whose updates go through the inbox."""

    name: str

    async def handle(self, row: InboxUpdate, receipt: Receipt) -> None: ...

    def chat_of(self, row: InboxUpdate) -> str | None: ...


GiveUp = Callable[[str, str, Receipt, str], None]


class InboxWorker:
    def __init__(
        self,
        db: Database,
        channels: dict[str, InboxChannel],
        give_up: GiveUp,
        *,
        concurrency: int = 8,
        lease_seconds: float = 5.0,
        heartbeat_seconds: float = 1.0,
        max_attempts: int = 3,
        poll_interval: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
        worker_id: str | None = None,
        after_store: Callable[[], None] = lambda: None,
        metrics: Metrics | None = None,
        max_backlog: int = 0,
        reply_headroom: dict[str, int] | None = None,
    ):
        self.db = db
        self.channels = channels
        self.give_up = give_up
        self.concurrency = concurrency
        self.limit = concurrency  # updates in hand at once now (fewer when the event loop lags)
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self.clock = clock
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self.after_store = after_store
        self.metrics = metrics or Metrics()
        self.max_backlog = max_backlog  # 0: unbounded
        self.reply_headroom = reply_headroom or {}  # channel -> live replies allowed ahead (none: any)
        self.backlog = Backlog()
        self._stored_since = 0  # updates this process stored since ``backlog`` was read
        self._claimed_since: dict[str, int] = {}  # and updates it claimed, per channel
        self._intake = ThreadPoolExecutor(INTAKE_THREADS, thread_name_prefix="inbox-intake")
        # Webhook updates waiting to be stored, each with what its caller awaits (new or not).
        self._arrivals: list[tuple[str, str, str, dict[str, Any], asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._busy: dict[int, str] = {}  # inbox id -> chat being handled
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- intake ---

    async def accept(self, channel: str, update_key: str, chat_key: str, payload: dict[str, Any]) -> bool:
        """Store one update (before acknowledging it); False when it was stored before.

        Updates arriving together (concurrent webhook calls) are stored in one transaction, one
        commit for all of them: intake keeps up however slow a commit is. A failed transaction
        fails every call in it, and the platform delivers those updates again."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._arrivals.append((channel, update_key, chat_key, payload, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="inbox-intake")
        return await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._arrivals:
            batch, self._arrivals = self._arrivals[:INTAKE_BATCH], self._arrivals[INTAKE_BATCH:]
            rows = [(channel, key, chat, payload) for channel, key, chat, payload, _ in batch]
            try:
                new = await loop.run_in_executor(self._intake, self._store_rows, rows)
            except Exception as exc:
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self._stored_since += sum(new)
            self.wake()
            for (*_, future), stored in zip(batch, new, strict=True):
                if not future.done():
                    future.set_result(stored)

    def _store_rows(self, rows: list[tuple[str, str, str, dict[str, Any]]]) -> list[bool]:
        with self.db.session() as s:
            repos = Repos(s)
            new = repos.inbox.add_many(rows)
        if any(new):
            self.after_store()
        return new

    async def accept_many(self, channel: str, updates: list[tuple[str, str, dict[str, Any]]]) -> int:
        """Store updates (update key, chat key, payload) in one transaction; how many were new."""
        loop = asyncio.get_running_loop()
        stored = await loop.run_in_executor(self._intake, self.store, channel, updates)
        self._stored_since += stored
        self.wake()
        return stored

    @property
    def admitting(self) -> bool:
        """Whether new updates may be stored: False from ``max_backlog`` waiting updates on, or
        while ``INTAKE_QUEUE_MAX`` webhook calls of this process wait for their transaction."""
        if len(self._arrivals) >= INTAKE_QUEUE_MAX:
            return False
        return self.max_backlog <= 0 or self.backlog.waiting + self._stored_since < self.max_backlog

    async def wait_admitting(self) -> None:
        """Return once new updates may be stored (a polling loop calls this before fetching)."""
        while not self.admitting:
            await asyncio.sleep(BACKLOG_REFRESH)

    def saturated(self) -> frozenset[str]:
        """Channels whose queued live replies already fill their headroom: their next update waits."""
        replies = self.backlog.replies
        return frozenset(
            channel
            for channel, headroom in self.reply_headroom.items()
            if replies.get(channel, 0) + self._claimed_since.get(channel, 0) >= headroom
        )

    def store(self, channel: str, updates: list[tuple[str, str, dict[str, Any]]]) -> int:
        """One channel's updates (update key, chat key, payload) stored in one transaction; how many new."""
        return sum(self._store_rows([(channel, key, chat, payload) for key, chat, payload in updates]))

    def wake(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    def close(self) -> None:
        """Let the intake threads go (once nothing is stored any more: the web server has stopped)."""
        self._intake.shutdown(wait=False, cancel_futures=True)

    # --- running ---

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        lease_thread = ThreadPoolExecutor(1, thread_name_prefix="inbox-lease")
        heartbeat = asyncio.create_task(self._heartbeat(lease_thread))
        monitor = asyncio.create_task(self._monitor())
        try:
            while not stop.is_set():
                self._wake.clear()
                free = self.limit - len(self._busy)
                skip = self.saturated()
                rows: list[InboxUpdate] = []
                if free > 0 and not (self.channels and set(self.channels) <= skip):
                    try:
                        rows = await asyncio.to_thread(self._claim, free, skip)
                    except Exception:
                        log.exception("inbox: claiming updates failed; retrying")
                for row in rows:
                    assert row.id is not None
                    self._claimed_since[row.channel] = self._claimed_since.get(row.channel, 0) + 1
                    self._busy[row.id] = f"{row.channel}:{row.chat_key}"
                    task = asyncio.create_task(self._handle(row))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                if rows and len(rows) == free:
                    await asyncio.sleep(0)  # more may be waiting: claim again once a slot is free
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wait(stop), self.poll_interval)
        finally:
            if self._tasks:
                _, late = await asyncio.wait(set(self._tasks), timeout=STOP_GRACE)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
            for task in (heartbeat, monitor):
                task.cancel()
            await asyncio.gather(heartbeat, monitor, return_exceptions=True)
            lease_thread.shutdown(wait=False)

    async def _wait(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _handle(self, row: InboxUpdate) -> None:
        assert row.id is not None
        receipt = Receipt(row.id, self.worker_id)
        channel = self.channels.get(row.channel)
        try:
            if channel is None:
                raise RuntimeError(f"no channel {row.channel} in this process")
            await channel.handle(row, receipt)
            await asyncio.to_thread(self._finish, receipt)
            self.metrics.update_handled(row.channel, "done")
        except LeaseLost:
            log.warning("inbox row %s was taken over by another worker; left to it", row.id, extra=_ids(row))
        except Exception as exc:
            log.exception("inbox: handling update %s (%s) failed", row.id, row.channel, extra=_ids(row))
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._failed, row, receipt, channel, exc)
        finally:
            self._busy.pop(row.id, None)
            self._wake.set()

    async def _heartbeat(self, thread: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            with contextlib.suppress(Exception):
                await loop.run_in_executor(thread, self._renew, list(self._busy))

    async def _monitor(self) -> None:
        """Every ``BACKLOG_REFRESH`` seconds: adjust ``limit`` to how late the event loop woke up,
        read the backlog, and wake the claim loop when it may take more (a channel that was
        saturated may have room again, or the limit grew)."""
        loop = asyncio.get_running_loop()
        while True:
            asleep = loop.time()
            await asyncio.sleep(BACKLOG_REFRESH)
            before = self.limit
            self.limit = next_limit(before, loop.time() - asleep - BACKLOG_REFRESH, self.concurrency)
            was_saturated = bool(self.saturated()) or self.limit > before
            try:
                await self.refresh_backlog()
            except Exception:
                log.exception("inbox: reading the backlog failed; retrying")
                continue
            if was_saturated:
                self._wake.set()

    async def refresh_backlog(self) -> Backlog:
        """Read what waits from the database (every process's updates and replies)."""
        started = time.monotonic()
        backlog = await asyncio.get_running_loop().run_in_executor(self._intake, self._read_backlog)
        self.backlog, self._stored_since, self._claimed_since = backlog, 0, {}
        if time.monotonic() - started > BACKLOG_REFRESH:
            log.warning("inbox: reading the backlog took %.2f s", time.monotonic() - started)
        return backlog

    def _read_backlog(self) -> Backlog:
        with self.db.session() as s:
            repos = Repos(s)
            waiting, oldest = repos.inbox.backlog()
            replies = repos.outbox.replies_waiting(PROACTIVE_FROM) if self.reply_headroom else {}
        return Backlog(waiting, oldest, replies)

    # --- database steps ---

    def _claim(self, limit: int, skip: frozenset[str] = frozenset()) -> list[InboxUpdate]:
        with self.db.session() as s:
            return Repos(s).inbox.claim(
                self.worker_id, self.clock(), self.lease_seconds, limit, set(self._busy.values()), skip
            )

    def _renew(self, ids: list[int]) -> None:
        with self.db.session() as s:
            Repos(s).inbox.renew(ids, self.worker_id, self.clock() + timedelta(seconds=self.lease_seconds))

    def _finish(self, receipt: Receipt) -> None:
        """An update the channel did not pass to the dialogue (a group message, an edit...) is done."""
        with self.db.session() as s:
            Repos(s).inbox.finish(receipt.inbox_id, receipt.worker_id, self.clock())

    def _failed(
        self, row: InboxUpdate, receipt: Receipt, channel: InboxChannel | None, error: Exception
    ) -> None:
        # The first line only: database errors carry the statement and its values on the next ones.
        message = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:500]
        if row.attempts < self.max_attempts:
            delay = 0.5 * 2 ** (row.attempts - 1)
            with self.db.session() as s:
                Repos(s).inbox.retry(
                    row.id or 0, self.worker_id, self.clock() + timedelta(seconds=delay), message
                )
            self.metrics.update_handled(row.channel, "retried")
            return
        self.metrics.update_handled(row.channel, "failed")
        chat = channel.chat_of(row) if channel is not None else None
        if chat is None:
            with self.db.session() as s:
                Repos(s).inbox.finish(receipt.inbox_id, receipt.worker_id, self.clock(), "failed", message)
            return
        self.give_up(row.channel, chat, receipt, message)


def _ids(row: InboxUpdate) -> dict[str, object]:
    """The structured fields of a log line about one update (ids only: no chat, no text)."""
    return {"inbox_id": row.id, "channel": row.channel}
