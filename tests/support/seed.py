"""Seeding a database fast (bulk inserts): producers with profiles and conversations, and
reminder subscribers."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert
from sqlmodel import col, select

from storage.db import Database
from storage.models import Conversation, Profile, Subscription, User


def seed_producers(
    database: Database, count: int, first_chat: int, channel: str = "telegram", province: str = "Nghệ An"
) -> list[int]:
    """``count`` producers on ``channel`` with chat ids from ``first_chat``; their user ids."""
    now = datetime.now(UTC)
    with database.engine.begin() as conn:
        conn.execute(
            insert(User),
            [
                {
                    "channel": channel,
                    "external_id": str(first_chat + i),
                    "display_name": f"Hộ {i}",
                    "is_blocked": False,
                    "created_at": now,
                    "last_seen_at": now,
                }
                for i in range(count)
            ],
        )
        ids = [
            row[0]
            for row in conn.execute(
                select(User.id)
                .where(
                    col(User.channel) == channel,
                    col(User.external_id).in_([str(first_chat + i) for i in range(count)]),
                )
                .order_by(col(User.id))
            )
        ]
        conn.execute(
            insert(Profile),
            [{"user_id": i, "province": province, "interests": [], "updated_at": now} for i in ids],
        )
        conn.execute(
            insert(Conversation),
            [{"user_id": i, "flow": "menu", "data": {}, "menu_version": 0, "updated_at": now} for i in ids],
        )
    return ids


def subscribe(database: Database, user_ids: list[int]) -> None:
    """Every one of them subscribes to all reminders that concern them."""
    now = datetime.now(UTC)
    with database.engine.begin() as conn:
        conn.execute(
            insert(Subscription),
            [{"user_id": i, "categories": [], "is_active": True, "created_at": now} for i in user_ids],
        )
