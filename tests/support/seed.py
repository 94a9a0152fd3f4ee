"""Seeding a database fast (bulk inserts): producers with profiles and conversations, reminder
subscribers and applications; and a broadcast to everyone, confirmed and queued."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlmodel import col, select

from knowledge.catalog import load_catalog
from knowledge.loader import KnowledgeBase
from services.broadcasts import Audience, BroadcastService
from services.staff_directory import StaffDirectory
from storage.db import Database
from storage.models import Conversation, Lead, Profile, Subscription, User
from storage.repositories import Repos
from storage.search_text import lead_search_text


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


def queue_broadcast(
    database: Database, text: str, author: str = "test", kb: KnowledgeBase | None = None
) -> int:
    """A broadcast of ``text`` to every producer, confirmed by staff so the outbox sends it; its id."""
    with database.session() as s:
        repos = Repos(s)
        service = BroadcastService(StaffDirectory())
        draft = service.create(repos, text, Audience(), [], author)
        service.confirm(repos, kb if kb is not None else load_catalog().kb, draft)
        assert draft.id is not None
        return draft.id


def subscribe(database: Database, user_ids: list[int]) -> None:
    """Every one of them subscribes to all reminders that concern them."""
    now = datetime.now(UTC)
    with database.engine.begin() as conn:
        conn.execute(
            insert(Subscription),
            [{"user_id": i, "categories": [], "is_active": True, "created_at": now} for i in user_ids],
        )


def seed_leads(database: Database, count: int, province: str = "Nghệ An") -> None:
    """``count`` applications from one producer, oldest first; the first is "Nguyễn Thị Đầu Tiên"."""
    now = datetime.now(UTC)
    with database.engine.begin() as conn:
        conn.execute(
            insert(User),
            [{"channel": "telegram", "external_id": "lead-owner", "created_at": now, "last_seen_at": now}],
        )
        user_id = conn.execute(select(User.id).where(col(User.external_id) == "lead-owner")).scalar_one()
        rows = []
        for i in range(1, count + 1):
            name = "Nguyễn Thị Đầu Tiên" if i == 1 else f"Hộ số {i}"
            ref, phone = f"KC-2026-{i:06d}", f"09{i:08d}"
            rows.append(
                {
                    "ref_code": ref,
                    "submission_key": f"k{i}",
                    "user_id": user_id,
                    "channel": "telegram",
                    "status": "new",
                    "full_name": name,
                    "phone": phone,
                    "establishment_name": "Cơ sở chế biến",
                    "province": province,
                    "sector": "Chế biến nông sản",
                    "plan": "Mua máy sấy nông sản",
                    "estimated_cost_vnd": 300_000_000,
                    "eligibility": {"status": "eligible"},
                    "search_text": lead_search_text(ref, name, "Cơ sở chế biến", None, phone),
                    "consent_at": now,
                    "created_at": now - timedelta(seconds=count - i),
                    "updated_at": now,
                }
            )
        for start in range(0, len(rows), 5000):
            conn.execute(insert(Lead), rows[start : start + 5000])
