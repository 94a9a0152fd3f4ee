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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.metrics import Metrics
from handlers.types import LeaseLost, Receipt
from storage.db import Database
from storage.models import InboxUpdate, utcnow
from storage.repositories import Repos

log = logging.getLogger(__name__)
STOP_GRACE = 10.0


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
    ):
        self.db = db
        self.channels = channels
        self.give_up = give_up
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self.clock = clock
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self.after_store = after_store
        self.metrics = metrics or Metrics()
        self._busy: dict[int, str] = {}  # inbox id -> chat being handled
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- intake ---

    async def accept(self, channel: str, update_key: str, chat_key: str, payload: dict[str, Any]) -> bool:
        """Store one update (before acknowledging it); False when it was stored before."""
        return await self.accept_many(channel, [(update_key, chat_key, payload)]) == 1

    async def accept_many(self, channel: str, updates: list[tuple[str, str, dict[str, Any]]]) -> int:
        """Store updates (update key, chat key, payload) in one transaction; how many were new."""
        stored = await asyncio.to_thread(self.store, channel, updates)
        self.wake()
        return stored

    def store(self, channel: str, updates: list[tuple[str, str, dict[str, Any]]]) -> int:
        with self.db.session() as s:
            repos = Repos(s)
            stored = sum(repos.inbox.add(channel, key, chat, payload) for key, chat, payload in updates)
        if stored:
            self.after_store()
        return stored

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

    # --- running ---

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        lease_thread = ThreadPoolExecutor(1, thread_name_prefix="inbox-lease")
        heartbeat = asyncio.create_task(self._heartbeat(lease_thread))
        try:
            while not stop.is_set():
                self._wake.clear()
                free = self.concurrency - len(self._busy)
                rows: list[InboxUpdate] = []
                if free > 0:
                    try:
                        rows = await asyncio.to_thread(self._claim, free)
                    except Exception:
                        log.exception("inbox: claiming updates failed; retrying")
                for row in rows:
                    assert row.id is not None
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
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
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

    # --- database steps ---

    def _claim(self, limit: int) -> list[InboxUpdate]:
        with self.db.session() as s:
            return Repos(s).inbox.claim(
                self.worker_id, self.clock(), self.lease_seconds, limit, set(self._busy.values())
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
