"""sqlmodel tables: users and profiles, conversation state, leads and their audit trail, staff,
questions for staff, deadlines, subscriptions and reminders, broadcasts, the outbox, the message log.

All times are timezone-aware UTC (``*_at`` names). Money is a BigInteger (VND amounts pass 2^31).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, MetaData, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

# Stable constraint names, so Alembic migrations are identical on SQLite and PostgreSQL.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


def utcnow() -> datetime:
    return datetime.now(UTC)


class User(SQLModel, table=True):
    """A person who wrote to the bot on one channel (Telegram or Zalo ids are strings here)."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_users_channel_external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16, index=True)
    external_id: str = Field(max_length=64)
    display_name: str = Field(default="", max_length=256)
    username: str | None = Field(default=None, max_length=64)
    is_blocked: bool = Field(default=False, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)


class Profile(SQLModel, table=True):
    """What the producer told the bot about the establishment (the eligibility profile and more)."""

    __tablename__ = "profiles"

    user_id: int = Field(foreign_key="users.id", primary_key=True)
    full_name: str | None = Field(default=None, max_length=256)
    phone: str | None = Field(default=None, max_length=32)
    establishment_name: str | None = Field(default=None, max_length=256)
    legal_form: str | None = Field(default=None, max_length=32, index=True)
    activity: str | None = Field(default=None, max_length=32)
    sector: str | None = Field(default=None, max_length=256)
    products: str | None = Field(default=None, max_length=512)
    province: str | None = Field(default=None, max_length=64, index=True)
    commune: str | None = Field(default=None, max_length=128)
    place_type: str | None = Field(default=None, max_length=16)
    craft_village: bool | None = None
    difficult_area: bool | None = None
    technology_line: bool | None = None
    new_to_area: bool | None = None
    cluster_investor: bool | None = None
    investment_cost_vnd: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    interests: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class Conversation(SQLModel, table=True):
    """Where a user is in the dialogue: the flow, its step and the answers so far."""

    __tablename__ = "conversations"

    user_id: int = Field(foreign_key="users.id", primary_key=True)
    flow: str = Field(default="menu", max_length=32)
    step: str | None = Field(default=None, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    menu_version: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class Lead(SQLModel, table=True):
    """An application for support collected by the bot, reviewed by staff."""

    __tablename__ = "leads"

    id: int | None = Field(default=None, primary_key=True)
    ref_code: str | None = Field(default=None, max_length=32, unique=True)
    submission_key: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    channel: str = Field(max_length=16)
    programme_id: str | None = Field(default=None, max_length=64, index=True)
    category: str | None = Field(default=None, max_length=32)
    status: str = Field(default="new", max_length=32, index=True)
    full_name: str = Field(max_length=256)
    phone: str = Field(max_length=32)
    establishment_name: str = Field(default="", max_length=256)
    legal_form: str | None = Field(default=None, max_length=32)
    province: str | None = Field(default=None, max_length=64, index=True)
    commune: str | None = Field(default=None, max_length=128)
    sector: str | None = Field(default=None, max_length=256)
    products: str | None = Field(default=None, max_length=512)
    plan: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    estimated_cost_vnd: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    eligibility: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    consent_at: datetime
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class LeadEvent(SQLModel, table=True):
    """One change to a lead: who, from which status to which, and why (the audit log)."""

    __tablename__ = "lead_events"

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="leads.id", index=True)
    actor: str = Field(max_length=128)
    from_status: str | None = Field(default=None, max_length=32)
    to_status: str | None = Field(default=None, max_length=32)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class StaffAccount(SQLModel, table=True):
    """A centre staff member who may use the dashboard (and staff actions in Telegram)."""

    __tablename__ = "staff_accounts"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    password_hash: str = Field(max_length=256)
    telegram_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None


class StaffQuestion(SQLModel, table=True):
    """A producer's question handed to staff ("Hỏi cán bộ") and its answer."""

    __tablename__ = "staff_questions"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="open", max_length=16, index=True)
    answer: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    answered_by: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
    answered_at: datetime | None = None


class Deadline(SQLModel, table=True):
    """A registration deadline: national or one province's, for a programme or a category."""

    __tablename__ = "deadlines"

    id: int | None = Field(default=None, primary_key=True)
    source_key: str | None = Field(default=None, max_length=128, unique=True)
    programme_id: str | None = Field(default=None, max_length=64)
    category: str | None = Field(default=None, max_length=32)
    province: str | None = Field(default=None, max_length=64, index=True)
    due_on: date = Field(index=True)
    action: str = Field(sa_column=Column(Text, nullable=False))
    place: str = Field(default="", sa_column=Column(Text, nullable=False))
    note: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    basis: str = Field(default="", max_length=256, sa_column_kwargs={"server_default": ""})
    created_by: str = Field(default="knowledge", max_length=128)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class Subscription(SQLModel, table=True):
    """A producer's opt-in to deadline reminders (all that concern them, or one programme)."""

    __tablename__ = "subscriptions"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    programme_id: str | None = Field(default=None, max_length=64)
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    province: str | None = Field(default=None, max_length=64)
    is_active: bool = Field(default=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    cancelled_at: datetime | None = None


class Reminder(SQLModel, table=True):
    """One reminder of one deadline to one user at one offset; sent at most once."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("user_id", "deadline_id", "offset_days", name="uq_reminders_user_deadline_offset"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    deadline_id: int = Field(foreign_key="deadlines.id", index=True)
    offset_days: int
    due_at: datetime = Field(index=True)
    status: str = Field(default="pending", max_length=16, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    processed_at: datetime | None = None


class Broadcast(SQLModel, table=True):
    """An announcement composed by staff: template, audience filter, status and delivery counts."""

    __tablename__ = "broadcasts"

    id: int | None = Field(default=None, primary_key=True)
    template: str = Field(sa_column=Column(Text, nullable=False))
    audience: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    buttons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="draft", max_length=16, index=True)
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
    confirmed_at: datetime | None = None
    finished_at: datetime | None = None


class OutboxMessage(SQLModel, table=True):
    """One message to one chat, sent by the paced outbox (broadcasts, reminders, notifications)."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("kind", "source_id", "user_id", name="uq_outbox_kind_source_user"),
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    source_id: int
    user_id: int = Field(foreign_key="users.id", index=True)
    channel: str = Field(max_length=16)
    chat_id: str = Field(max_length=64)
    text: str = Field(sa_column=Column(Text, nullable=False))
    buttons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=16)
    priority: int = Field(default=0, description="lower goes first: notifications, reminders, broadcasts")
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class MessageLog(SQLModel, table=True):
    """Every message in and out, for the conversation history staff see on a lead."""

    __tablename__ = "message_log"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    channel: str = Field(max_length=16)
    direction: str = Field(max_length=3)
    kind: str = Field(default="text", max_length=16)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, index=True)
