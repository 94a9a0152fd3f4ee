"""The reads behind ``/metrics``: small aggregates over indexed columns, each scrape bounded in time.

``MetricsRepo`` (``Repos.metrics``) counts the outbox's queue (messages ``pending`` or ``sending``)
by channel, status and priority: the leading columns of its claim index, so the count reads only
the queue's part of the index, however long the history of delivered messages is (counting that
history at every scrape took 0.3 s at a million rows on PostgreSQL, and it only grows; delivered,
blocked and failed messages are counted as they happen instead, by the process's counters). It also
finds when the update a reply answers arrived, for the reply latency.

``time_limit`` bounds every statement of a scrape: ``statement_timeout`` on PostgreSQL, a progress
handler on SQLite; a read cut short raises, and the scrape reports the database figures as missing
instead of waiting. Nothing read here identifies a person: counts, statuses and times only.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from storage.models import InboxUpdate, OutboxMessage

QUEUED = ("pending", "sending")
# SQLite calls the progress handler every this many virtual machine instructions.
_SQLITE_CHECK_EVERY = 10_000


@dataclass(frozen=True)
class OutboxCount:
    channel: str
    status: str
    priority: int
    count: int


@contextmanager
def time_limit(session: Session, seconds: float) -> Iterator[None]:
    """Every statement of ``session`` inside the block is cancelled after ``seconds`` (PostgreSQL:
    for the rest of the transaction, which must be a read-only one made for this)."""
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {max(int(seconds * 1000), 1)}")
        yield
        return
    raw = connection.connection.driver_connection
    if not isinstance(raw, sqlite3.Connection):
        yield
        return
    deadline = time.monotonic() + seconds
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), _SQLITE_CHECK_EVERY)
    try:
        yield
    finally:
        raw.set_progress_handler(None, 0)


@dataclass
class MetricsRepo:
    session: Session

    def outbox_counts(self) -> list[OutboxCount]:
        """How many messages wait to be sent (``pending``) or are being sent (``sending``), per
        (channel, status, priority)."""
        rows = self.session.exec(
            select(OutboxMessage.channel, OutboxMessage.status, OutboxMessage.priority, func.count())
            .where(col(OutboxMessage.status).in_(QUEUED))
            .group_by(col(OutboxMessage.status), col(OutboxMessage.channel), col(OutboxMessage.priority))
        ).all()
        return [OutboxCount(channel, status, int(priority), int(n)) for channel, status, priority, n in rows]

    def first_reply_arrival(self, outbox_id: int, inbox_id: int) -> datetime | None:
        """When the update answered by reply ``outbox_id`` arrived, if that reply is its first
        (no earlier reply to the same update); None otherwise, or when the update is gone."""
        earlier = aliased(OutboxMessage)
        has_earlier = (
            select(earlier.id)
            .where(earlier.kind == "reply", earlier.source_id == inbox_id, col(earlier.id) < outbox_id)
            .exists()
        )
        return self.session.exec(
            select(InboxUpdate.received_at).where(col(InboxUpdate.id) == inbox_id, ~has_earlier)
        ).first()
