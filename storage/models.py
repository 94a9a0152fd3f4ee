"""sqlmodel tables: users and profiles, conversation state, leads and their audit trail, staff,
questions for staff, deadlines, subscriptions and reminders, broadcasts, the inbox of platform
updates, the outbox with its shared send budget and per-chat pacing, the leases of periodic jobs,
the message log.

All times are timezone-aware UTC (``*_at`` names). Money is a BigInteger (VND amounts pass 2^31).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import JSON, BigInteger, Column, Index, MetaData, Table, Text, UniqueConstraint, text
from sqlalchemy import false as sa_false
from sqlalchemy import inspect as sa_inspect
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


def table_of(model: type[SQLModel]) -> Table:
    """The table of a table model (sqlmodel sets ``__table__`` on the class but does not declare it)."""
    table = sa_inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


class _HasId(Protocol):
    id: int | None


def saved_id(row: _HasId) -> int:
    """The id of a row that is in the database. Tables type ``id`` as optional because it is unset
    until the row is first flushed; code that holds a saved row uses this instead of asserting."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: add and flush it first")
    return row.id


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
    # A province's producers read from the index alone (the statistics of one province).
    __table_args__ = (Index("ix_profiles_province_user", "province", "user_id"),)

    user_id: int = Field(foreign_key="users.id", primary_key=True)
    full_name: str | None = Field(default=None, max_length=256)
    phone: str | None = Field(default=None, max_length=32)
    establishment_name: str | None = Field(default=None, max_length=256)
    legal_form: str | None = Field(default=None, max_length=32, index=True)
    activity: str | None = Field(default=None, max_length=32)
    sector: str | None = Field(default=None, max_length=256)
    products: str | None = Field(default=None, max_length=512)
    province: str | None = Field(default=None, max_length=64)
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
    updated_at: datetime = Field(default_factory=utcnow, index=True)


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
    # Folded (diacritic-free, lower-case) reference, names, commune and phone, for search in SQL.
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
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
    # "admin" (the whole country) or "province" (only ``province``'s leads, questions, deadlines...).
    role: str = Field(default="admin", max_length=16, sa_column_kwargs={"server_default": "admin"})
    province: str | None = Field(default=None, max_length=64)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None


class StaffAction(SQLModel, table=True):
    """One thing a staff member did (a status change, a note, an answer, a deadline, a broadcast, a
    login...), written in the same unit of work as the change itself: the staff audit log."""

    __tablename__ = "staff_actions"
    __table_args__ = (Index("ix_staff_actions_actor_id", "actor", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    actor: str = Field(max_length=128)
    action: str = Field(max_length=32)
    object_type: str | None = Field(default=None, max_length=32)
    object_id: int | None = None
    details: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    created_at: datetime = Field(default_factory=utcnow, index=True)


class KnowledgeVersion(SQLModel, table=True):
    """One version of the live knowledge base: every knowledge file (relative path -> YAML text) as it
    stood after a change, with who made it, when and why. The newest row is what every process
    answers from; the YAML files in the repository are the seed and the backup."""

    __tablename__ = "knowledge_versions"

    id: int | None = Field(default=None, primary_key=True)
    files: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=128)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    created_at: datetime = Field(default_factory=utcnow)


class LearningItem(SQLModel, table=True):
    """One message the bot could not answer well, for the learning queue (``/unanswered``): a free
    question the search was not confident about, a "Hỏi cán bộ" question, or an answer the producer
    marked unhelpful. Items with the same ``group_key`` and no ``resolved_at`` form one open group;
    staff resolve a group as a whole (a new phrasing, a new FAQ, out of scope)."""

    __tablename__ = "learning_items"
    __table_args__ = (Index("ix_learning_items_group_open", "group_key", "resolved_at"),)

    id: int | None = Field(default=None, primary_key=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    folded: str = Field(sa_column=Column(Text, nullable=False))
    source: str = Field(max_length=16, description="not_confident | ask_staff | unhelpful")
    entry_id: str | None = Field(default=None, max_length=64, description="the entry shown, if any")
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    province: str | None = Field(default=None, max_length=64, description="the producer's, when asked")
    group_key: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    resolved_at: datetime | None = None
    resolution: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    resolved_by: str | None = Field(default=None, max_length=128)


class AnswerFeedback(SQLModel, table=True):
    """A producer's 👍 or 👎 under the bot's answer to a free question: which entry, which question."""

    __tablename__ = "answer_feedback"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    entry_id: str = Field(max_length=64, index=True)
    question: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    helpful: bool
    created_at: datetime = Field(default_factory=utcnow)


class StaffSession(SQLModel, table=True):
    """A logged-in dashboard session. The cookie carries a random token; only its SHA-256 is stored,
    so logging out (or a password change) ends the session for good, whatever the cookie says."""

    __tablename__ = "staff_sessions"

    id: str = Field(primary_key=True, max_length=64)
    staff_id: int = Field(foreign_key="staff_accounts.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


class LoginFailure(SQLModel, table=True):
    """One failed dashboard login, per client address and per (normalised) username: the login
    limit counts these, in the database so that every process enforces the same limit."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_failed_at", "key", "failed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=160)
    failed_at: datetime = Field(default_factory=utcnow)


class StaffQuestion(SQLModel, table=True):
    """A producer's question handed to staff ("Hỏi cán bộ") and its answer."""

    __tablename__ = "staff_questions"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    province: str | None = Field(default=None, max_length=64, description="the asker's, when asked")
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
    # Set when staff withdraw it; a knowledge-base deadline then stays withdrawn across sweeps.
    withdrawn_by: str | None = Field(default=None, max_length=128)
    withdrawn_at: datetime | None = None
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
        # The sweep's range of due rows (pending, due by now), whatever is pending for later.
        Index("ix_reminders_status_due_at", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    deadline_id: int = Field(foreign_key="deadlines.id", index=True)
    offset_days: int
    due_at: datetime = Field(index=True)
    status: str = Field(default="pending", max_length=16, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    processed_at: datetime | None = None


class ReminderPlan(SQLModel, table=True):
    """How far the sweep has planned one deadline's reminders: for every active subscription up to
    ``through_subscription_id``, under the rules summed up by ``fingerprint`` (who the deadline
    concerns, its date, the offsets, the hour, the channels). The next sweep plans only newer
    subscriptions, or everyone again once the fingerprint changed."""

    __tablename__ = "reminder_plans"

    deadline_id: int = Field(foreign_key="deadlines.id", primary_key=True)
    fingerprint: str = Field(max_length=64)
    through_subscription_id: int = 0
    planned_at: datetime = Field(default_factory=utcnow)


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
    """One message to one chat, sent by the paced outbox: live replies, notifications, reminders and
    broadcasts alike. ``status``: pending -> sending (claimed just before its HTTP call, under a lease)
    -> sent | blocked | failed. ``ambiguous`` marks a message whose HTTP call was in flight when its
    sender died: it was sent again, so the producer may have it twice."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The sender walks this index in order (no sort, however many rows are pending).
        Index("ix_outbox_claim", "status", "channel", "priority", "id"),
        # A broadcast's report and "anything still waiting?" read only its own rows, by status.
        Index("ix_outbox_kind_source", "kind", "source_id", "status"),
        # The claim's "no earlier message of this chat still waiting": one user's waiting rows.
        Index("ix_outbox_user_status", "user_id", "status", "id"),
        # The last menu a user was sent (``OutboxRepo.last_menu``).
        Index("ix_outbox_user_sent", "user_id", "sent_at"),
        # The statistics' deliveries of a period (``StatsRepo.deliveries``), read from the index alone.
        Index("ix_outbox_kind_created", "kind", "created_at", "status", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    source_id: int
    # Unique when set: the same (event, recipient) is never queued twice.
    dedupe_key: str | None = Field(default=None, max_length=128, unique=True)
    user_id: int = Field(foreign_key="users.id")
    channel: str = Field(max_length=16)
    chat_id: str = Field(max_length=64)
    text: str = Field(sa_column=Column(Text, nullable=False))
    buttons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    ask_contact: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    status: str = Field(default="pending", max_length=16)
    priority: int = Field(default=0, description="lower goes first: replies, notifications, reminders...")
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = None
    lease_until: datetime | None = None
    ambiguous: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    # Deleted once delivered: the last answer to a producer who asked to have their data erased.
    ephemeral: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


_UNFINISHED = text("status IN ('pending', 'working')")


class InboxUpdate(SQLModel, table=True):
    """One platform update (Telegram or Zalo, webhook or polling), stored before it is acknowledged.

    Unique on (channel, update_key), so a repeated delivery is stored once. ``status``: pending ->
    working (claimed under a lease, one chat at a time, oldest first) -> done, in the same transaction
    as the dialogue's writes and its replies; or failed after a bounded number of attempts.
    """

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("channel", "update_key", name="uq_inbox_channel_update_key"),
        Index("ix_inbox_status_id", "status", "id"),
        Index("ix_inbox_chat", "channel", "chat_key", "id"),
        # The claim's own indexes, over the few unfinished rows only (a week of handled ones is kept):
        # the oldest ready rows in id order, and whether a chat has an earlier unfinished one.
        Index("ix_inbox_unfinished", "id", postgresql_where=_UNFINISHED, sqlite_where=_UNFINISHED),
        Index(
            "ix_inbox_unfinished_chat",
            "channel",
            "chat_key",
            "id",
            postgresql_where=_UNFINISHED,
            sqlite_where=_UNFINISHED,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    update_key: str = Field(max_length=128)
    chat_key: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    claimed_by: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    received_at: datetime = Field(default_factory=utcnow, index=True)
    handled_at: datetime | None = None


class SendBudget(SQLModel, table=True):
    """The pace of one bot token, shared by every process: the next free send slot and a pause
    after the platform's flood limit (``retry_after``). Times are Unix seconds."""

    __tablename__ = "send_budget"

    key: str = Field(primary_key=True, max_length=64)
    next_slot: float = 0.0
    paused_until: float = 0.0


class ChatPacing(SQLModel, table=True):
    """Per chat: busy while a message to it is in flight, and when the last one went (Unix seconds),
    so messages to one chat go one at a time and proactive ones at most one per second."""

    __tablename__ = "chat_pacing"

    user_id: int = Field(foreign_key="users.id", primary_key=True)
    busy_until: float = 0.0
    last_sent_at: float = 0.0


class JobLease(SQLModel, table=True):
    """A periodic job (the scheduler's sweep) run by one process at a time and once per interval
    across all of them: ``holder`` runs it until ``lease_until`` (renewed while it runs; a holder that
    died loses it then), ``last_run_at`` is when its last run started."""

    __tablename__ = "job_leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=64)
    lease_until: datetime
    last_run_at: datetime | None = None


class MessageLog(SQLModel, table=True):
    """Every message in and out, for the conversation history staff see on a lead."""

    __tablename__ = "message_log"
    __table_args__ = (
        # A producer's conversation around a moment (a lead, a question), in order.
        Index("ix_message_log_user_created", "user_id", "created_at"),
        # The statistics' typed questions per day, askers and active producers, from the index alone.
        Index("ix_message_log_asking", "direction", "created_at", "kind", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id")
    channel: str = Field(max_length=16)
    direction: str = Field(max_length=3)
    kind: str = Field(default="text", max_length=16)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, index=True)
