"""The reads behind ``/metrics`` (``storage.metrics``, ``InboxRepo.backlog``): what they count, and
that a scrape's time limit cuts a slow statement short on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update
from sqlmodel import col, select

from storage.db import Database
from storage.metrics import OutboxCount, time_limit
from storage.models import InboxUpdate, OutboxMessage
from storage.repositories import Repos
from tests.support.seed import seed_producers


def test_backlog_counts_waiting_updates_and_finds_the_oldest(database: Database) -> None:
    with database.unit() as repos:
        assert repos.inbox.backlog() == (0, None)
        for key in ("1", "2", "3"):
            repos.inbox.add("telegram", key, "chat-a", {})
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    with database.unit() as repos:
        repos.session.exec(
            update(InboxUpdate).where(col(InboxUpdate.update_key) == "2").values(received_at=long_ago)
        )
        repos.session.exec(
            update(InboxUpdate).where(col(InboxUpdate.update_key) == "3").values(status="done")
        )
    with database.unit() as repos:
        waiting, oldest = repos.inbox.backlog()
    assert waiting == 2
    assert oldest is not None and oldest.replace(tzinfo=UTC) == long_ago


def test_outbox_counts_the_queue_by_channel_status_and_priority(database: Database) -> None:
    ids = seed_producers(database, 3, first_chat=100)
    with database.unit() as repos:
        users = [repos.users.get(i) for i in ids]
        for user in users:
            assert user is not None
            repos.outbox.add("reply", 1, user, "trả lời", priority=-10)
            repos.outbox.add("broadcast", 2, user, "thông báo", priority=20)
    with database.unit() as repos:
        repos.session.exec(
            update(OutboxMessage).where(col(OutboxMessage.kind) == "reply").values(status="sent")
        )
        first = repos.session.exec(
            select(OutboxMessage.id).where(col(OutboxMessage.kind) == "broadcast")
        ).first()
        repos.session.exec(
            update(OutboxMessage).where(col(OutboxMessage.id) == first).values(status="sending")
        )
    with database.unit() as repos:
        counts = sorted(repos.metrics.outbox_counts(), key=lambda c: c.status)
    # Delivered messages are history, not the queue: the process's counters count them.
    assert counts == [OutboxCount("telegram", "pending", 20, 2), OutboxCount("telegram", "sending", 20, 1)]


def test_first_reply_arrival_only_for_an_updates_first_reply(database: Database) -> None:
    (user_id,) = seed_producers(database, 1, first_chat=200)
    with database.unit() as repos:
        repos.inbox.add("telegram", "u1", "200", {})
    with database.unit() as repos:
        inbox_id = repos.session.execute(text("SELECT id FROM inbox")).scalar_one()
        user = repos.users.get(user_id)
        assert user is not None
        first = repos.outbox.add("reply", inbox_id, user, "một", dedupe_key=f"reply:{inbox_id}:0")
        second = repos.outbox.add("reply", inbox_id, user, "hai", dedupe_key=f"reply:{inbox_id}:1")
    assert first is not None and second is not None and first.id is not None and second.id is not None
    with database.unit() as repos:
        arrived = repos.metrics.first_reply_arrival(first.id, inbox_id)
        assert arrived is not None
        assert abs(arrived.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(minutes=1)
        assert repos.metrics.first_reply_arrival(second.id, inbox_id) is None
        assert repos.metrics.first_reply_arrival(first.id, inbox_id + 1000) is None


def _slow_statement(database: Database) -> str:
    if database.dialect == "postgresql":
        return "SELECT pg_sleep(5)"
    return (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
        "SELECT count(*) FROM n"
    )


def test_time_limit_cuts_a_slow_read_short(database: Database) -> None:
    started = datetime.now(UTC)
    with (
        pytest.raises(Exception, match=r"(?i)cancel|interrupt|timeout"),
        database.session() as session,
        time_limit(session, 0.2),
    ):
        session.execute(text(_slow_statement(database))).all()
    assert datetime.now(UTC) - started < timedelta(seconds=3)
    with database.session() as session:  # the connection goes back to the pool without the limit
        assert session.execute(text("SELECT 1")).scalar_one() == 1
        with time_limit(session, 5):
            assert Repos(session).inbox.backlog() == (0, None)
