"""Small repositories, one per table family, behind one ``Repos`` aggregator over a single session.

Repositories add, read and change rows; they never commit (the unit of work in ``storage.db`` does).
"""

from __future__ import annotations

import hashlib
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    Boolean,
    Float,
    Integer,
    String,
    and_,
    bindparam,
    case,
    delete,
    false,
    func,
    literal,
    literal_column,
    or_,
    text,
    true,
    union,
    union_all,
    update,
)
from sqlalchemy import insert as sql_insert
from sqlalchemy import select as sql_select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, SQLModel, col, select

from storage.bulk import (
    FIELDS,
    BroadcastAudience,
    DeadlineAudience,
    MessagePart,
    field_column,
    id_text,
    rendered,
)
from storage.metrics import MetricsRepo
from storage.models import (
    AnswerFeedback,
    Broadcast,
    ChatPacing,
    Conversation,
    Deadline,
    InboxUpdate,
    JobLease,
    KnowledgeVersion,
    Lead,
    LeadEvent,
    LearningItem,
    LoginFailure,
    MessageLog,
    OutboxMessage,
    Profile,
    Reminder,
    ReminderPlan,
    SendBudget,
    StaffAccount,
    StaffAction,
    StaffQuestion,
    StaffSession,
    Subscription,
    User,
    saved_id,
    table_of,
    utcnow,
)
from storage.personal_data import PersonalDataRepo
from storage.search_text import lead_search_text, search_needle

# How many messages sent since a conversation last moved ``OutboxRepo.last_menu`` looks through.
LAST_MENU_LOOKBACK = 20
# The first key of the PostgreSQL advisory locks ``InboxRepo.add`` takes per chat (the second is the
# chat's hash), so they never meet another use of advisory locks.
INBOX_LOCKS = 0x6B630001
# A bulk insert of this many rows refreshes the table's statistics (``refresh_statistics``).
ANALYZE_AFTER_ROWS = 10_000
# Reminders queued per ``INSERT ... SELECT`` (their ids are bound parameters).
REMINDERS_PER_INSERT = 1000


@dataclass
class UserRepo:
    session: Session

    def get(self, user_id: int) -> User | None:
        return self.session.get(User, user_id)

    def find(self, channel: str, external_id: str) -> User | None:
        stmt = select(User).where(User.channel == channel, User.external_id == external_id)
        return self.session.exec(stmt).first()

    def get_or_create(
        self, channel: str, external_id: str, display_name: str = "", username: str | None = None
    ) -> User:
        """The user for (channel, external id), created on first contact; refreshes name and last seen."""
        user = self.find(channel, external_id)
        now = utcnow()
        if user is None:
            new = User(
                channel=channel, external_id=external_id, display_name=display_name[:256], username=username
            )
            user, created = insert_or_get(self.session, new, "channel", "external_id")
            if created:
                return user
        if display_name and display_name[:256] != user.display_name:
            user.display_name = display_name[:256]
        if username and username != user.username:
            user.username = username
        user.last_seen_at = now
        if user.is_blocked:
            user.is_blocked = False  # they wrote to us again, so they unblocked the bot
        self.session.add(user)
        return user

    def mark_blocked(self, user_id: int) -> None:
        user = self.session.get(User, user_id)
        if user is not None and not user.is_blocked:
            user.is_blocked = True
            self.session.add(user)

    def count(self) -> int:
        return int(self.session.exec(select(func.count()).select_from(User)).one())


@dataclass
class ProfileRepo:
    session: Session

    def get(self, user_id: int) -> Profile | None:
        return self.session.get(Profile, user_id)

    def get_or_create(self, user_id: int) -> Profile:
        profile = self.session.get(Profile, user_id)
        if profile is None:
            profile, _ = insert_or_get(self.session, Profile(user_id=user_id), "user_id")
        return profile

    def update(self, user_id: int, **fields: Any) -> Profile:
        profile = self.get_or_create(user_id)
        for name, value in fields.items():
            if not hasattr(profile, name) or name in {"user_id", "updated_at"}:
                raise AttributeError(f"profile has no field '{name}'")
            setattr(profile, name, value)
        profile.updated_at = utcnow()
        self.session.add(profile)
        return profile


@dataclass
class ConversationRepo:
    session: Session

    def get(self, user_id: int) -> Conversation:
        conversation = self.session.get(Conversation, user_id)
        if conversation is None:
            conversation, _ = insert_or_get(self.session, Conversation(user_id=user_id), "user_id")
        return conversation

    def save(
        self, user_id: int, flow: str, step: str | None, data: dict[str, Any], menu_version: int
    ) -> None:
        conversation = self.get(user_id)
        conversation.flow = flow
        conversation.step = step
        conversation.data = dict(data)
        conversation.menu_version = menu_version
        conversation.updated_at = utcnow()
        self.session.add(conversation)


@dataclass
class MessageLogRepo:
    session: Session

    def add(self, user_id: int, channel: str, direction: str, text: str, kind: str = "text") -> None:
        self.session.add(
            MessageLog(user_id=user_id, channel=channel, direction=direction, kind=kind, text=text)
        )

    def history(self, user_id: int, limit: int = 200) -> list[MessageLog]:
        stmt = (
            select(MessageLog)
            .where(MessageLog.user_id == user_id)
            .order_by(col(MessageLog.id).desc())
            .limit(limit)
        )
        return list(reversed(self.session.exec(stmt).all()))

    def around(self, user_id: int, at: datetime, before: int, after: int) -> list[MessageLog]:
        """The conversation around a moment (a lead's submission): the ``before`` messages up to
        ``at`` and the ``after`` ones following it, in order."""
        mine = MessageLog.user_id == user_id
        earlier = (
            select(MessageLog)
            .where(mine, col(MessageLog.created_at) <= at)
            .order_by(col(MessageLog.created_at).desc(), col(MessageLog.id).desc())
            .limit(before)
        )
        later = (
            select(MessageLog)
            .where(mine, col(MessageLog.created_at) > at)
            .order_by(col(MessageLog.created_at), col(MessageLog.id))
            .limit(after)
        )
        return [*reversed(self.session.exec(earlier).all()), *self.session.exec(later).all()]


@dataclass(frozen=True)
class LeadQuery:
    """A filter of the lead list; every part optional. ``text`` matches the folded reference, names,
    commune and phone digits (see ``storage.search_text``)."""

    status: str | None = None
    province: str | None = None
    programme: str | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None
    text: str = ""
    nothing: bool = False  # matches no lead (a filter outside the staff member's province)

    def where(self) -> list[Any]:
        clauses: list[Any] = []
        if self.nothing:
            clauses.append(false())
        if self.status:
            clauses.append(Lead.status == self.status)
        if self.province:
            clauses.append(Lead.province == self.province)
        if self.programme:
            clauses.append(Lead.programme_id == self.programme)
        if self.created_from is not None:
            clauses.append(col(Lead.created_at) >= self.created_from)
        if self.created_before is not None:
            clauses.append(col(Lead.created_at) < self.created_before)
        words, digits = search_needle(self.text)
        if words or digits:
            matches = [col(Lead.search_text).contains(f" {words}") if words else None]
            if digits:
                matches.append(col(Lead.search_text).contains(digits))
            clauses.append(or_(*[m for m in matches if m is not None]))
        return clauses


@dataclass
class LeadRepo:
    session: Session

    def search(self, query: LeadQuery, offset: int = 0, limit: int | None = None) -> list[Lead]:
        """Matching leads, newest first: one page (``limit``) or all of them."""
        stmt = select(Lead).where(*query.where()).order_by(col(Lead.id).desc()).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list(self.session.exec(stmt).all())

    def count(self, query: LeadQuery) -> int:
        return int(self.session.exec(select(func.count()).select_from(Lead).where(*query.where())).one())

    def batch_before(self, query: LeadQuery, before_id: int | None, limit: int) -> list[Row[Any]]:
        """The next ``limit`` matching leads, newest first, with ids below ``before_id`` (all when
        None): one batch of an export, read by its key, so no cursor outlives the batch. Plain rows
        (a lead's columns by name, typed as on ``Lead``), not tracked objects: ten times cheaper."""
        table = table_of(Lead)
        stmt = sql_select(*table.columns).where(*query.where())
        if before_id is not None:
            stmt = stmt.where(table.c.id < before_id)
        rows = self.session.connection().execute(stmt.order_by(table.c.id.desc()).limit(limit))
        return list(rows.all())

    def stream(self, query: LeadQuery, batch: int = 500) -> Iterator[Lead]:
        """Every matching lead, newest first, fetched ``batch`` at a time (for exports)."""
        stmt = select(Lead).where(*query.where()).order_by(col(Lead.id).desc())
        for lead in self.session.exec(stmt.execution_options(yield_per=batch)):
            yield lead
            self.session.expunge(lead)

    def get(self, lead_id: int) -> Lead | None:
        return self.session.get(Lead, lead_id)

    def by_submission_key(self, key: str) -> Lead | None:
        return self.session.exec(select(Lead).where(Lead.submission_key == key)).first()

    def by_ref(self, ref_code: str) -> Lead | None:
        return self.session.exec(select(Lead).where(Lead.ref_code == ref_code)).first()

    def for_user(self, user_id: int) -> list[Lead]:
        stmt = select(Lead).where(Lead.user_id == user_id).order_by(col(Lead.id).desc())
        return list(self.session.exec(stmt).all())

    def for_users(self, user_ids: set[int]) -> dict[int, list[Lead]]:
        """Each producer's leads, newest first, in one query (producers without any are left out)."""
        if not user_ids:
            return {}
        stmt = select(Lead).where(col(Lead.user_id).in_(sorted(user_ids))).order_by(col(Lead.id).desc())
        found: dict[int, list[Lead]] = {}
        for lead in self.session.exec(stmt).all():
            found.setdefault(lead.user_id, []).append(lead)
        return found

    def add(self, lead: Lead, year: int) -> Lead:
        """Insert a lead and give it its reference code (KC-<year>-<6-digit id>)."""
        self.session.add(lead)
        self.session.flush()
        lead.ref_code = f"KC-{year}-{lead.id:06d}"
        lead.search_text = lead_search_text(
            lead.ref_code, lead.full_name, lead.establishment_name, lead.commune, lead.phone
        )
        self.session.add(lead)
        self.session.add(LeadEvent(lead_id=saved_id(lead), actor="producer", to_status=lead.status))
        return lead

    def newest_with_status(
        self, statuses: tuple[str, ...], limit: int, province: str | None = None
    ) -> list[Lead]:
        """The newest leads in ``statuses`` (of one province only, when given)."""
        stmt = select(Lead).where(col(Lead.status).in_(statuses))
        if province is not None:
            stmt = stmt.where(Lead.province == province)
        return list(self.session.exec(stmt.order_by(col(Lead.id).desc()).limit(limit)).all())

    def add_once(self, lead: Lead, year: int) -> tuple[Lead, bool]:
        """Insert a lead unless one with its submission key exists (another process may have taken
        the same submission a moment ago); returns the lead and whether it is new."""
        try:
            with self.session.begin_nested():
                self.add(lead, year)
        except IntegrityError:
            existing = self.by_submission_key(lead.submission_key or "")
            if existing is None:
                raise
            return existing, False
        return lead, True

    def save(self, lead: Lead, event: LeadEvent | None = None) -> None:
        self.session.add(lead)
        if event is not None:
            self.session.add(event)
        self.session.flush()

    def add_event(self, event: LeadEvent) -> LeadEvent:
        self.session.add(event)
        self.session.flush()
        return event

    def events(self, lead_id: int) -> list[LeadEvent]:
        stmt = select(LeadEvent).where(LeadEvent.lead_id == lead_id).order_by(col(LeadEvent.id))
        return list(self.session.exec(stmt).all())


@dataclass
class DeadlineRepo:
    session: Session

    def get(self, deadline_id: int) -> Deadline | None:
        return self.session.get(Deadline, deadline_id)

    def active_from(self, today: date) -> list[Deadline]:
        """Active deadlines on or after ``today``, soonest first."""
        stmt = select(Deadline).where(Deadline.is_active, Deadline.due_on >= today)
        return list(self.session.exec(stmt.order_by(col(Deadline.due_on))).all())

    def listed_from(self, since: date) -> list[Deadline]:
        """Every deadline (withdrawn ones too) on or after ``since``, for the staff's list."""
        stmt = select(Deadline).where(Deadline.due_on >= since).order_by(col(Deadline.due_on))
        return list(self.session.exec(stmt).all())

    def add(self, deadline: Deadline) -> Deadline:
        self.session.add(deadline)
        self.session.flush()
        return deadline

    def withdraw(self, deadline: Deadline, by: str, now: datetime) -> None:
        deadline.is_active = False
        deadline.withdrawn_by = by[:128]
        deadline.withdrawn_at = now
        self.session.add(deadline)

    def upsert_by_key(self, key: str, **fields: Any) -> Deadline:
        deadline = self.session.exec(select(Deadline).where(Deadline.source_key == key)).first()
        if deadline is None:
            deadline, created = insert_or_get(self.session, Deadline(source_key=key, **fields), "source_key")
            if created:
                return deadline
        for name, value in fields.items():
            setattr(deadline, name, value)
        self.session.add(deadline)
        self.session.flush()
        return deadline


@dataclass
class StaffQuestionRepo:
    session: Session

    def add(self, user_id: int, text: str, province: str | None = None) -> StaffQuestion:
        question = StaffQuestion(user_id=user_id, text=text, province=province)
        self.session.add(question)
        self.session.flush()
        return question

    def get(self, question_id: int) -> StaffQuestion | None:
        return self.session.get(StaffQuestion, question_id)

    def open_questions(self, province: str | None = None) -> list[StaffQuestion]:
        """Open questions, oldest first (of one province only, when given)."""
        stmt = select(StaffQuestion).where(StaffQuestion.status == "open")
        if province is not None:
            stmt = stmt.where(StaffQuestion.province == province)
        return list(self.session.exec(stmt.order_by(col(StaffQuestion.id))).all())

    def count_open(self, province: str | None = None) -> int:
        stmt = select(func.count()).select_from(StaffQuestion).where(StaffQuestion.status == "open")
        if province is not None:
            stmt = stmt.where(StaffQuestion.province == province)
        return int(self.session.exec(stmt).one())

    def open_page(
        self, offset: int, limit: int, province: str | None = None
    ) -> list[tuple[StaffQuestion, str | None]]:
        """One page of open questions, oldest first, each with its asker's display name (one query)."""
        stmt = (
            select(StaffQuestion, User.display_name)
            .join(User, col(User.id) == StaffQuestion.user_id, isouter=True)
            .where(StaffQuestion.status == "open")
        )
        if province is not None:
            stmt = stmt.where(StaffQuestion.province == province)
        stmt = stmt.order_by(col(StaffQuestion.id)).offset(offset).limit(limit)
        return [(question, name) for question, name in self.session.exec(stmt).all()]

    def recently_answered(self, limit: int, province: str | None = None) -> list[StaffQuestion]:
        stmt = select(StaffQuestion).where(StaffQuestion.status == "answered")
        if province is not None:
            stmt = stmt.where(StaffQuestion.province == province)
        stmt = stmt.order_by(col(StaffQuestion.answered_at).desc()).limit(limit)
        return list(self.session.exec(stmt).all())

    def talk_around(self, question_ids: list[int], before: int, after: int) -> dict[int, list[MessageLog]]:
        """For each question, its asker's conversation around it: the ``before`` messages up to the
        question and the ``after`` ones following it, in order. Two queries however many questions
        (each message numbered within its question's window, nearest first)."""
        if not question_ids:
            return {}
        talk: dict[int, list[MessageLog]] = {q: [] for q in question_ids}
        for earlier, limit in ((True, before), (False, after)):
            nearest = (
                (col(MessageLog.created_at).desc(), col(MessageLog.id).desc())
                if earlier
                else (col(MessageLog.created_at), col(MessageLog.id))
            )
            side = (
                col(MessageLog.created_at) <= StaffQuestion.created_at
                if earlier
                else col(MessageLog.created_at) > StaffQuestion.created_at
            )
            numbered = (
                select(
                    col(MessageLog.id).label("message_id"),
                    col(StaffQuestion.id).label("question_id"),
                    func.row_number()
                    .over(partition_by=col(StaffQuestion.id), order_by=nearest)
                    .label("place"),
                )
                .join(MessageLog, col(MessageLog.user_id) == StaffQuestion.user_id)
                .where(col(StaffQuestion.id).in_(question_ids), side)
                .subquery()
            )
            stmt = (
                select(numbered.c.question_id, MessageLog)
                .join(numbered, numbered.c.message_id == col(MessageLog.id))
                .where(numbered.c.place <= limit)
                .order_by(numbered.c.question_id, col(MessageLog.created_at), col(MessageLog.id))
            )
            for question_id, message in self.session.exec(stmt).all():
                talk[int(question_id)].append(message)
        return talk

    def save(self, question: StaffQuestion) -> None:
        self.session.add(question)
        self.session.flush()


@dataclass
class OutboxRepo:
    session: Session

    def add(
        self,
        kind: str,
        source_id: int,
        user: User,
        text: str,
        buttons: list[dict[str, Any]] | None = None,
        priority: int = 0,
        *,
        dedupe_key: str | None = "",
        ask_contact: bool = False,
    ) -> OutboxMessage | None:
        """Queue one message for one user; None when its dedupe key is already queued.

        The key defaults to (kind, source, user): the same event never reaches one person twice.
        Pass ``dedupe_key=None`` for messages that may repeat (a second answer to one question).
        """
        key = f"{kind}:{source_id}:{user.id}" if dedupe_key == "" else dedupe_key
        if key is not None:
            exists = self.session.exec(
                select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)
            ).first()
            if exists is not None:
                return None
        message = _outbox_row(
            kind, source_id, key, user, text, buttons or [], priority, ask_contact=ask_contact
        )
        self.session.add(message)
        return message

    def add_rendered(
        self,
        kind: str,
        source_id: int,
        rows: list[tuple[int, str, str, str]],
        buttons: list[dict[str, Any]],
        priority: int,
        now: datetime,
    ) -> int:
        """Queue messages rendered in Python, (user id, channel, chat id, text) each, in one
        multi-row insert (a broadcast batch whose template SQL cannot render); keys (kind, source,
        user) as ``add`` gives them."""
        if not rows:
            return 0
        shared = {
            "kind": kind,
            "source_id": source_id,
            "buttons": buttons,
            "ask_contact": False,
            "status": "pending",
            "priority": priority,
            "attempts": 0,
            "next_attempt_at": now,
            "ambiguous": False,
            "ephemeral": False,
            "created_at": now,
        }
        self.session.execute(
            sql_insert(table_of(OutboxMessage)),
            [
                {
                    **shared,
                    "dedupe_key": f"{kind}:{source_id}:{user_id}",
                    "user_id": user_id,
                    "channel": channel,
                    "chat_id": chat_id,
                    "text": text,
                }
                for user_id, channel, chat_id, text in rows
            ],
        )
        return len(rows)

    def add_reminders(
        self, reminder_ids: list[int], text: str, buttons: list[dict[str, Any]], priority: int, now: datetime
    ) -> int:
        """Queue one message (the same text: one deadline, one day) to the user of each reminder,
        with ``INSERT ... SELECT`` a thousand at a time; keys (kind, source, user) as ``add`` gives
        them, and one already queued is left alone. How many were queued."""
        kind, queued = "reminder", 0
        for start in range(0, len(reminder_ids), REMINDERS_PER_INSERT):
            chunk = reminder_ids[start : start + REMINDERS_PER_INSERT]
            shared = _bulk_outbox_values(kind, 0, buttons, priority, now)
            key = literal(f"{kind}:", String).op("||")(id_text(Reminder.id))
            select_list = {
                **shared,
                "source_id": Reminder.id,
                "dedupe_key": key.op("||")(literal(":", String)).op("||")(id_text(User.id)),
                "user_id": User.id,
                "channel": User.channel,
                "chat_id": User.external_id,
                "text": literal(text, String),
            }
            rows = (
                sql_select(*select_list.values())
                .select_from(Reminder)
                .join(User, col(User.id) == Reminder.user_id)
                .where(col(Reminder.id).in_(chunk))
            )
            table = table_of(OutboxMessage)
            stmt = _dialect_insert(self.session)(table).from_select(list(select_list), rows)
            stmt = stmt.on_conflict_do_nothing().execution_options(preserve_rowcount=True)
            queued += int(self.session.exec(stmt).rowcount or 0)
        return queued

    def bulk_added(self, rows: int) -> None:
        """``rows`` were just queued in bulk (see ``refresh_statistics``)."""
        refresh_statistics(self.session, OutboxMessage, rows)

    def has_waiting(self, kind: str, source_id: int) -> bool:
        """Whether a source (a broadcast) still has a message not yet sent (pending or claimed)."""
        stmt = select(OutboxMessage.id).where(
            OutboxMessage.kind == kind,
            OutboxMessage.source_id == source_id,
            col(OutboxMessage.status).in_(("pending", "sending")),
        )
        return self.session.exec(stmt.limit(1)).first() is not None

    def add_ephemeral(self, user: User, chat_id: str, text: str, inbox_id: int, priority: int) -> None:
        """A last reply to a producer whose data was just erased (``user`` is a tombstone): it
        carries its chat id itself and is deleted once delivered."""
        row = _outbox_row("reply", inbox_id, None, user, text, [], priority, chat_id=chat_id)
        row.ephemeral = True
        self.session.add(row)

    def forget(self, row_id: int) -> None:
        row = self.session.get(OutboxMessage, row_id)
        if row is not None:
            self.session.exec(delete(ChatPacing).where(col(ChatPacing.user_id) == row.user_id))
            self.session.delete(row)

    # --- the sender's steps (each one statement or a few, in the caller's transaction) ---

    def next_priority(
        self, channel: str, now: datetime, now_ts: float, proactive_from: int, gap: float
    ) -> int | None:
        """The priority of the first message that could be sent now on ``channel`` (None: nothing)."""
        params = _claim_params(channel, now, now_ts, proactive_from, gap)
        row = self.session.execute(_CLAIMABLE.limit(1), params).first()
        return None if row is None else int(row[2])

    def claim_next(
        self,
        channel: str,
        worker: str,
        now: datetime,
        now_ts: float,
        lease_seconds: float,
        proactive_from: int,
        gap: float,
    ) -> OutboxMessage | None:
        """Claim the first sendable message of ``channel`` and its chat, just before sending it."""
        params = _claim_params(channel, now, now_ts, proactive_from, gap)
        candidates = self.session.execute(_CLAIMABLE.limit(8), params).all()
        pacing = ChatPacingRepo(self.session)
        for row_id, user_id, priority in candidates:
            chat_gap = 0.0 if priority < proactive_from else gap
            if not pacing.take(user_id, now_ts, lease_seconds, chat_gap):
                continue
            taken = self.session.exec(
                update(OutboxMessage)
                .where(
                    # Checked again: the candidate list may be stale (another sender was quicker).
                    col(OutboxMessage.id) == row_id,
                    col(OutboxMessage.status) == "pending",
                    col(OutboxMessage.next_attempt_at) <= now,
                )
                .values(
                    status="sending",
                    claimed_by=worker,
                    claimed_at=now,
                    lease_until=now + timedelta(seconds=lease_seconds),
                )
                .returning(OutboxMessage)
            ).first()
            if taken is not None:
                return taken[0] if isinstance(taken, tuple | Row) else taken
            pacing.release(user_id, sent_at=None)
        return None

    def _finish(self, row_id: int, worker: str, **values: Any) -> bool:
        result = self.session.exec(
            update(OutboxMessage)
            .where(
                col(OutboxMessage.id) == row_id,
                col(OutboxMessage.status) == "sending",
                col(OutboxMessage.claimed_by) == worker,
            )
            .values(claimed_by=None, lease_until=None, **values)
        )
        return (result.rowcount or 0) == 1

    def mark_sent(self, row_id: int, worker: str, now: datetime) -> bool:
        """Sent. When the lease was lost meanwhile (the row was given back as ambiguous), it is
        marked sent if nobody took it again, so it is not sent a second time."""
        if self._finish(
            row_id, worker, status="sent", sent_at=now, attempts=OutboxMessage.attempts + 1, last_error=None
        ):
            return True
        self.session.exec(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == row_id, col(OutboxMessage.status) == "pending")
            .values(status="sent", sent_at=now, ambiguous=True, claimed_by=None, lease_until=None)
        )
        return False

    def mark_failed(self, row_id: int, worker: str, status: str, error: str) -> bool:
        """``failed`` (refused for good, or out of attempts) or ``blocked``."""
        return self._finish(
            row_id, worker, status=status, attempts=OutboxMessage.attempts + 1, last_error=error[:1000]
        )

    def retry_later(self, row_id: int, worker: str, when: datetime, error: str, count_attempt: bool) -> bool:
        attempts = OutboxMessage.attempts + (1 if count_attempt else 0)
        return self._finish(
            row_id, worker, status="pending", next_attempt_at=when, attempts=attempts, last_error=error[:1000]
        )

    def attempts(self, row_id: int) -> int:
        row = self.session.get(OutboxMessage, row_id)
        return row.attempts if row is not None else 0

    def renew(self, ids: list[int], worker: str, until: datetime) -> None:
        if ids:
            self.session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_(ids), col(OutboxMessage.claimed_by) == worker)
                .values(lease_until=until)
            )

    def recover_expired(self, now: datetime, keep: list[int]) -> int:
        """Give back messages whose sender's lease ran out (it died mid-call): they are sent again
        and marked ambiguous, since the platform may already have delivered them."""
        stmt = (
            update(OutboxMessage)
            .where(col(OutboxMessage.status) == "sending", col(OutboxMessage.lease_until) < now)
            .values(status="pending", ambiguous=True, claimed_by=None, lease_until=None, next_attempt_at=now)
        )
        if keep:
            stmt = stmt.where(col(OutboxMessage.id).not_in(keep))
        return self.session.exec(stmt).rowcount or 0

    def last_menu(self, user_id: int, after: datetime, proactive_from: int) -> list[dict[str, Any]]:
        """The buttons (as stored) of the latest proactive message (priority ``proactive_from`` or
        more: a broadcast, a reminder, a notification) sent to this user after ``after``; [] when
        none had buttons. Walks ``ix_outbox_user_sent``: only what was sent since ``after``."""
        stmt = (
            select(OutboxMessage.buttons)
            .where(
                OutboxMessage.user_id == user_id,
                OutboxMessage.status == "sent",
                col(OutboxMessage.sent_at) > after,
                OutboxMessage.priority >= proactive_from,
            )
            .order_by(col(OutboxMessage.sent_at).desc(), col(OutboxMessage.id).desc())
            .limit(LAST_MENU_LOOKBACK)
        )
        for buttons in self.session.exec(stmt):
            if buttons:
                return list(buttons)
        return []

    def statuses_of(self, kind: str, source_ids: list[int]) -> dict[int, str]:
        """Where each source's message stands (sent, pending...), for sources that queued one."""
        if not source_ids:
            return {}
        stmt = select(OutboxMessage.source_id, OutboxMessage.status).where(
            OutboxMessage.kind == kind, col(OutboxMessage.source_id).in_(source_ids)
        )
        return {source_id: status for source_id, status in self.session.exec(stmt).all()}

    def first_of(self, kind: str, source_id: int) -> OutboxMessage | None:
        """The first message queued for a source (a broadcast's text as its first recipient read it)."""
        stmt = (
            select(OutboxMessage)
            .where(OutboxMessage.kind == kind, OutboxMessage.source_id == source_id)
            .order_by(col(OutboxMessage.id))
            .limit(1)
        )
        return self.session.exec(stmt).first()

    def replies_waiting(self, proactive_from: int) -> dict[str, int]:
        """Per channel, the live replies (priority below ``proactive_from``) queued and not yet
        answered by the platform: a range of ``ix_outbox_claim`` however many broadcasts wait."""
        stmt = (
            select(OutboxMessage.channel, func.count())
            .where(
                col(OutboxMessage.status).in_(("pending", "sending")),
                col(OutboxMessage.priority) < proactive_from,
            )
            .group_by(col(OutboxMessage.channel))
        )
        return {channel: int(n) for channel, n in self.session.exec(stmt).all()}

    def counts(self, kind: str, source_id: int) -> dict[str, int]:
        """Delivery counts of one source (a broadcast): sent, unknown, blocked, failed, waiting."""
        rows = self.session.exec(
            select(OutboxMessage.status, OutboxMessage.ambiguous, func.count())
            .where(OutboxMessage.kind == kind, OutboxMessage.source_id == source_id)
            .group_by(col(OutboxMessage.status), col(OutboxMessage.ambiguous))
        ).all()
        result = {"total": 0, "sent": 0, "unknown": 0, "blocked": 0, "failed": 0, "waiting": 0}
        for status, ambiguous, n in rows:
            result["total"] += n
            if status == "sent":
                result["unknown" if ambiguous else "sent"] += n
            elif status in ("blocked", "failed"):
                result[status] += n
            else:
                result["waiting"] += n
        return result


def _outbox_row(
    kind: str,
    source_id: int,
    dedupe_key: str | None,
    user: User,
    text: str,
    buttons: list[dict[str, Any]],
    priority: int,
    next_attempt_at: datetime | None = None,
    *,
    ask_contact: bool = False,
    chat_id: str | None = None,
) -> OutboxMessage:
    """The one builder of outbox rows (to the user's chat unless ``chat_id`` says otherwise)."""
    row = OutboxMessage(
        kind=kind,
        source_id=source_id,
        dedupe_key=dedupe_key,
        user_id=saved_id(user),
        channel=user.channel,
        chat_id=user.external_id if chat_id is None else chat_id,
        text=text,
        buttons=buttons,
        ask_contact=ask_contact,
        priority=priority,
    )
    if next_attempt_at is not None:
        row.next_attempt_at = next_attempt_at
    return row


def _claimable_messages() -> Any:
    """Messages that could be sent now on one channel, in sending order: pending and due, their chat
    free (nothing in flight; for proactive ones, a second since the last message), and no earlier
    message of that chat and priority still waiting. Built once: the sender runs it per message."""
    earlier = aliased(OutboxMessage)
    blocked_by_earlier = (
        select(earlier.id)
        .where(
            earlier.user_id == OutboxMessage.user_id,
            col(earlier.status).in_(("pending", "sending")),
            col(earlier.id) < OutboxMessage.id,
            col(earlier.priority) <= OutboxMessage.priority,
        )
        .exists()
    )
    now_ts = bindparam("now_ts", type_=Float)
    return (
        select(OutboxMessage.id, OutboxMessage.user_id, OutboxMessage.priority)
        .outerjoin(ChatPacing, col(ChatPacing.user_id) == OutboxMessage.user_id)
        .where(
            OutboxMessage.status == "pending",
            OutboxMessage.channel == bindparam("channel"),
            OutboxMessage.next_attempt_at <= bindparam("now"),
            or_(col(ChatPacing.busy_until).is_(None), col(ChatPacing.busy_until) < now_ts),
            or_(
                col(OutboxMessage.priority) < bindparam("proactive_from"),
                col(ChatPacing.last_sent_at).is_(None),
                col(ChatPacing.last_sent_at) <= bindparam("gap_ago", type_=Float),
            ),
            ~blocked_by_earlier,
        )
        .order_by(col(OutboxMessage.priority), col(OutboxMessage.id))
    )


_CLAIMABLE = _claimable_messages()


def _claim_params(
    channel: str, now: datetime, now_ts: float, proactive_from: int, gap: float
) -> dict[str, Any]:
    return {
        "channel": channel,
        "now": now,
        "now_ts": now_ts,
        "proactive_from": proactive_from,
        "gap_ago": now_ts - gap,
    }


@dataclass
class ChatPacingRepo:
    session: Session

    def take(self, user_id: int, now_ts: float, lease_seconds: float, gap: float) -> bool:
        """Mark the chat busy if it is free (nothing in flight, and ``gap`` seconds since the last)."""
        table = table_of(ChatPacing)
        insert = _dialect_insert(self.session)
        stmt = (
            insert(table)
            .values(user_id=user_id, busy_until=now_ts + lease_seconds, last_sent_at=0.0)
            .on_conflict_do_update(
                index_elements=[table.c.user_id],
                set_={"busy_until": now_ts + lease_seconds},
                where=(table.c.busy_until < now_ts) & (table.c.last_sent_at <= now_ts - gap),
            )
            .returning(table.c.user_id)  # rowcount is not reliable for upserts on every driver
        )
        return self.session.execute(stmt).first() is not None

    def release(self, user_id: int, sent_at: float | None) -> None:
        values: dict[str, float] = {"busy_until": 0.0}
        if sent_at is not None:
            values["last_sent_at"] = sent_at
        self.session.exec(update(ChatPacing).where(col(ChatPacing.user_id) == user_id).values(**values))


@dataclass
class SendBudgetRepo:
    """The shared pace of one bot token (see ``storage.models.SendBudget``)."""

    session: Session

    def ensure(self, key: str) -> None:
        insert_ignore(self.session, SendBudget, {"key": key, "next_slot": 0.0, "paused_until": 0.0})

    def reserve(
        self, key: str, interval: float, horizon: float, clock: Callable[[], float] = time.time
    ) -> float | None:
        """Take the next slot if it is at most ``horizon`` seconds ahead and the token is not paused;
        returns the slot's time (wait until then to send), or None.

        The row is locked first and the time read after: a sender that waited for the lock (SQLite's
        single writer, a PostgreSQL row lock) must not reserve a slot from a time already past."""
        self.session.exec(update(SendBudget).where(col(SendBudget.key) == key).values(key=SendBudget.key))
        now = clock()
        start = case((col(SendBudget.next_slot) > now, col(SendBudget.next_slot)), else_=now)
        taken = self.session.execute(
            update(SendBudget)
            .where(
                col(SendBudget.key) == key,
                col(SendBudget.paused_until) <= now,
                col(SendBudget.next_slot) <= now + horizon,
            )
            .values(next_slot=start + interval)
            .returning(col(SendBudget.next_slot))
        ).scalar_one_or_none()
        return None if taken is None else float(taken) - interval

    def give_back(self, key: str, slot: float, interval: float) -> None:
        """Return an unused slot, if it is still the last one taken (nobody reserved after it)."""
        self.session.exec(
            update(SendBudget)
            .where(
                col(SendBudget.key) == key,
                col(SendBudget.next_slot) > slot + interval - 1e-6,
                col(SendBudget.next_slot) < slot + interval + 1e-6,
            )
            .values(next_slot=slot)
        )

    def state(self, key: str) -> tuple[float, float]:
        """(next free slot, paused until)."""
        row = self.session.get(SendBudget, key)
        return (row.next_slot, row.paused_until) if row is not None else (0.0, 0.0)

    def pause(self, key: str, until: float) -> None:
        self.session.exec(
            update(SendBudget)
            .where(col(SendBudget.key) == key, col(SendBudget.paused_until) < until)
            .values(paused_until=until)
        )


@dataclass
class InboxRepo:
    """Platform updates stored before they are acknowledged, handled one chat at a time in order."""

    session: Session

    def add(self, channel: str, update_key: str, chat_key: str, payload: dict[str, Any]) -> bool:
        """Store an update; False when the same update was stored before (a repeated delivery).

        On PostgreSQL the chat is locked until this transaction ends, so a chat's updates become
        visible in the order of their ids even when two processes store them at once: a worker never
        sees a chat's later update while an earlier one is still being stored (it would answer them
        out of order, or both at once). SQLite has a single writer: its ids are in commit order.
        A transaction storing several chats' updates takes their locks first (``lock_chats``)."""
        self.lock_chats([(channel, chat_key)])
        return insert_ignore(
            self.session,
            InboxUpdate,
            {
                "channel": channel,
                "update_key": update_key[:128],
                "chat_key": chat_key[:64],
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": utcnow(),
                "received_at": utcnow(),
            },
        )

    def add_many(self, rows: list[tuple[str, str, str, dict[str, Any]]]) -> list[bool]:
        """Store updates (channel, update key, chat key, payload) in this transaction, their chats
        locked first; for each, whether it was new."""
        self.lock_chats([(channel, chat_key) for channel, _, chat_key, _ in rows])
        return [self.add(channel, key, chat_key, payload) for channel, key, chat_key, payload in rows]

    def lock_chats(self, chats: list[tuple[str, str]]) -> None:
        """On PostgreSQL, lock these chats until the transaction ends (see ``add``), always in one
        order (by lock key), so two processes storing batches of the same chats never deadlock.
        Taking a lock this transaction already holds again is harmless."""
        if _dialect(self.session) != "postgresql":
            return
        for key in sorted({_chat_lock_key(channel, chat_key) for channel, chat_key in chats}):
            self.session.execute(select(func.pg_advisory_xact_lock(INBOX_LOCKS, key)))

    def claim(
        self,
        worker: str,
        now: datetime,
        lease_seconds: float,
        limit: int,
        busy: set[str],
        skip_channels: frozenset[str] = frozenset(),
    ) -> list[InboxUpdate]:
        """Claim up to ``limit`` updates, each the oldest unfinished one of its chat, none of
        ``skip_channels`` (whose replies already fill the send budget's next seconds)."""
        earlier = aliased(InboxUpdate)
        unfinished_before = (
            select(earlier.id)
            .where(
                earlier.channel == InboxUpdate.channel,
                earlier.chat_key == InboxUpdate.chat_key,
                col(earlier.id) < InboxUpdate.id,
                col(earlier.status).in_(("pending", "working")),
            )
            .exists()
        )
        ready = or_(
            and_(col(InboxUpdate.status) == "pending", col(InboxUpdate.next_attempt_at) <= now),
            and_(col(InboxUpdate.status) == "working", col(InboxUpdate.lease_until) < now),
        )
        oldest_ready = (
            select(InboxUpdate.id, InboxUpdate.channel, InboxUpdate.chat_key)
            .where(col(InboxUpdate.status).in_(("pending", "working")), ready, ~unfinished_before)
            .where(col(InboxUpdate.channel).not_in(skip_channels or ("",)))
            .order_by(col(InboxUpdate.id))
        )
        if _dialect(self.session) == "postgresql":
            return self._claim_locked(oldest_ready, worker, now, lease_seconds, limit, busy)
        candidates = self.session.exec(oldest_ready.limit(limit * 4)).all()
        claimed: list[InboxUpdate] = []
        for row_id, channel, chat_key in candidates:
            if len(claimed) >= limit or f"{channel}:{chat_key}" in busy:
                continue
            taken = self.session.exec(
                update(InboxUpdate)
                .where(col(InboxUpdate.id) == row_id, ready)
                .values(
                    status="working",
                    claimed_by=worker,
                    lease_until=now + timedelta(seconds=lease_seconds),
                    attempts=InboxUpdate.attempts + 1,
                )
            )
            if (taken.rowcount or 0) == 1:
                row = self.session.get(InboxUpdate, row_id)
                if row is not None:
                    claimed.append(row)
                    busy.add(f"{channel}:{chat_key}")
        return claimed

    def _claim_locked(
        self,
        oldest_ready: Any,  # the select of (id, channel, chat_key) built by ``claim``
        worker: str,
        now: datetime,
        lease_seconds: float,
        limit: int,
        busy: set[str],
    ) -> list[InboxUpdate]:
        """PostgreSQL, any number of processes: lock the rows to claim, skipping those another worker
        is claiming this moment (``FOR UPDATE SKIP LOCKED``), and claim them in one statement.
        Workers never wait for each other and never take one row twice."""
        rows = self.session.exec(oldest_ready.limit(limit).with_for_update(skip_locked=True)).all()
        ids = [row_id for row_id, channel, chat_key in rows if f"{channel}:{chat_key}" not in busy]
        if not ids:
            return []
        self.session.exec(
            update(InboxUpdate)
            .where(col(InboxUpdate.id).in_(ids))
            .values(
                status="working",
                claimed_by=worker,
                lease_until=now + timedelta(seconds=lease_seconds),
                attempts=InboxUpdate.attempts + 1,
            )
        )
        stmt = select(InboxUpdate).where(col(InboxUpdate.id).in_(ids)).order_by(col(InboxUpdate.id))
        claimed = list(self.session.exec(stmt.execution_options(populate_existing=True)).all())
        busy.update(f"{row.channel}:{row.chat_key}" for row in claimed)
        return claimed

    def finish(
        self, row_id: int, worker: str, now: datetime, status: str = "done", error: str | None = None
    ) -> bool:
        """Mark a claimed update done (or failed); False when this worker no longer holds it."""
        result = self.session.exec(
            update(InboxUpdate)
            .where(
                col(InboxUpdate.id) == row_id,
                col(InboxUpdate.status) == "working",
                col(InboxUpdate.claimed_by) == worker,
            )
            .values(status=status, handled_at=now, lease_until=None, last_error=error)
        )
        return (result.rowcount or 0) == 1

    def retry(self, row_id: int, worker: str, when: datetime, error: str) -> None:
        self.session.exec(
            update(InboxUpdate)
            .where(col(InboxUpdate.id) == row_id, col(InboxUpdate.claimed_by) == worker)
            .values(
                status="pending",
                claimed_by=None,
                lease_until=None,
                next_attempt_at=when,
                last_error=error[:2000],
            )
        )

    def renew(self, ids: list[int], worker: str, until: datetime) -> None:
        if ids:
            self.session.exec(
                update(InboxUpdate)
                .where(col(InboxUpdate.id).in_(ids), col(InboxUpdate.claimed_by) == worker)
                .values(lease_until=until)
            )

    def get(self, row_id: int) -> InboxUpdate | None:
        return self.session.get(InboxUpdate, row_id)

    def waiting(self) -> int:
        return int(
            self.session.exec(
                select(func.count())
                .select_from(InboxUpdate)
                .where(col(InboxUpdate.status).in_(("pending", "working")))
            ).one()
        )

    def backlog(self) -> tuple[int, datetime | None]:
        """The updates not handled yet (pending or in hand) and when the oldest of them arrived
        (None when there are none), over the partial index of unfinished rows."""
        count, oldest = self.session.exec(
            select(func.count(), func.min(InboxUpdate.received_at)).where(
                col(InboxUpdate.status).in_(("pending", "working"))
            )
        ).one()
        return int(count), oldest

    def purge_handled(self, before: datetime) -> int:
        result = self.session.exec(
            delete(InboxUpdate).where(
                col(InboxUpdate.status).in_(("done", "failed")), col(InboxUpdate.received_at) < before
            )
        )
        return result.rowcount or 0


@dataclass
class JobLeaseRepo:
    """Who runs a periodic job now (see ``storage.models.JobLease``): taken by one conditional
    statement, so two processes asking at the same moment never both get it."""

    session: Session

    def take(self, name: str, holder: str, now: datetime, lease_seconds: float, every_seconds: float) -> bool:
        """Take the job if nobody holds it and its last run started ``every_seconds`` ago or more."""
        until = now + timedelta(seconds=lease_seconds)
        values = {"name": name, "holder": holder, "lease_until": until, "last_run_at": now}
        if insert_ignore(self.session, JobLease, values):
            return True
        taken = self.session.execute(
            update(JobLease)
            .where(
                col(JobLease.name) == name,
                col(JobLease.lease_until) < now,
                or_(
                    col(JobLease.last_run_at).is_(None),
                    col(JobLease.last_run_at) <= now - timedelta(seconds=every_seconds),
                ),
            )
            .values(holder=holder, lease_until=until, last_run_at=now)
            .returning(col(JobLease.name))
        ).first()
        return taken is not None

    def renew(self, name: str, holder: str, until: datetime) -> bool:
        """Hold the job longer; False when the lease ran out and another process took it."""
        renewed = self.session.execute(
            update(JobLease)
            .where(col(JobLease.name) == name, col(JobLease.holder) == holder)
            .values(lease_until=until)
            .returning(col(JobLease.name))
        ).first()
        return renewed is not None

    def release(self, name: str, holder: str, now: datetime) -> None:
        """The run is over: the job is free again (its next run still waits for its interval)."""
        self.session.exec(
            update(JobLease)
            .where(col(JobLease.name) == name, col(JobLease.holder) == holder)
            .values(lease_until=now)
        )

    def get(self, name: str) -> JobLease | None:
        return self.session.get(JobLease, name)


def refresh_statistics(session: Session, table: type[SQLModel], rows: int) -> None:
    """After a bulk insert of ``rows`` rows (a broadcast, a deadline planned for everyone), refresh
    PostgreSQL's statistics of the table in the same transaction (it counts its own new rows). With
    stale ones the planner believes the new rows rare and walks an index of a million pending rows
    to update one by its id (the outbox claim took ~300 ms a message until autovacuum caught up)."""
    if rows >= ANALYZE_AFTER_ROWS and _dialect(session) == "postgresql":
        session.execute(text(f"ANALYZE {table_of(table).name}"))


def _dialect(session: Session) -> str:
    """The session's database: "postgresql" or "sqlite"."""
    return session.get_bind().dialect.name


def _dialect_insert(session: Session) -> Any:
    """The INSERT construct of the session's database (for ``ON CONFLICT``)."""
    return postgresql_insert if _dialect(session) == "postgresql" else sqlite_insert


def _chat_lock_key(channel: str, chat_key: str) -> int:
    """A chat's advisory lock key: the same in every process (CRC-32 as a signed 32-bit integer)."""
    key = zlib.crc32(f"{channel}:{chat_key[:64]}".encode())
    return key - (1 << 32) if key >= 1 << 31 else key


def insert_ignore(session: Session, table: type[SQLModel], values: dict[str, Any]) -> bool:
    """INSERT that does nothing when a unique key already holds the row; True when inserted."""
    insert = _dialect_insert(session)
    primary_key = next(iter(table_of(table).primary_key.columns))
    stmt = insert(table).values(**values).on_conflict_do_nothing().returning(primary_key)
    return session.execute(stmt).first() is not None


TableRow = TypeVar("TableRow", bound=SQLModel)


def insert_or_get(session: Session, row: TableRow, *key: str) -> tuple[TableRow, bool]:
    """The stored row with ``row``'s unique ``key``, inserted from ``row`` unless one exists; and
    whether it was inserted now. Race-free across processes: another session inserting the same key
    at this moment makes the insert wait for its commit and do nothing (INSERT ... ON CONFLICT DO
    NOTHING), and the row it committed is read back; never a unique violation."""
    model = type(row)
    table = table_of(model)
    values = {
        c.name: getattr(row, c.name)
        for c in table.columns
        if not (c.primary_key and getattr(row, c.name) is None)
    }
    created = insert_ignore(session, model, values)
    stmt = select(model).where(*(table.c[name] == values[name] for name in key))
    stored = session.exec(stmt.execution_options(populate_existing=True)).first()
    if stored is None:  # nothing inserted, yet nothing under the key: another unique key clashed
        raise LookupError(f"{table.name}: no row for {key} after inserting it")
    return stored, created


def normalise_username(raw: str) -> str:
    """The one form of a username, at creation, login and rate limiting: NFKC, trimmed, case-folded
    (so " canbo1", "canbo1\t", "\u00a0canbo1" and "CanBo1" are all "canbo1")."""
    return unicodedata.normalize("NFKC", raw).strip().casefold()


@dataclass
class StaffRepo:
    session: Session

    def by_username(self, username: str) -> StaffAccount | None:
        name = normalise_username(username)
        return self.session.exec(select(StaffAccount).where(StaffAccount.username == name)).first()

    def get(self, account_id: int) -> StaffAccount | None:
        return self.session.get(StaffAccount, account_id)

    def detach(self, account: StaffAccount) -> None:
        """Keep the account readable after this unit of work ends (even by a rollback)."""
        self.session.expunge(account)

    def touch_login(self, account: StaffAccount, now: datetime) -> None:
        account.last_login_at = now
        self.session.add(account)

    def linked_telegram_ids(self) -> set[str]:
        """Telegram ids that active dashboard accounts linked."""
        return set(self.linked_accounts())

    def linked_accounts(self) -> dict[str, StaffAccount]:
        """Active accounts that linked a Telegram id, by that id (as a string)."""
        stmt = select(StaffAccount).where(
            col(StaffAccount.is_active), col(StaffAccount.telegram_id).is_not(None)
        )
        return {str(a.telegram_id): a for a in self.session.exec(stmt.order_by(col(StaffAccount.id))).all()}

    def upsert(
        self,
        username: str,
        password_hash: str,
        telegram_id: int | None,
        role: str | None = None,
        province: str | None = None,
    ) -> tuple[StaffAccount, bool]:
        """Create the account or update its password (and Telegram id); True when created. A new
        password ends every open session of the account. ``role`` (with its ``province``) is set
        when given; otherwise a new account is an admin and an existing one keeps its role."""
        name = normalise_username(username)
        account = self.by_username(name)
        created = False
        if account is None:
            new = StaffAccount(username=name, password_hash=password_hash)
            account, created = insert_or_get(self.session, new, "username")
        if not created and account.password_hash != password_hash:
            self.end_sessions(account.id)
        account.password_hash = password_hash
        if telegram_id is not None:
            account.telegram_id = telegram_id
        if role is not None:
            account.role = role
            account.province = province
        account.is_active = True
        self.session.add(account)
        self.session.flush()
        return account, created

    # --- sessions (only the token's SHA-256 is stored) ---

    def start_session(self, account_id: int, token: str, now: datetime, lifetime: timedelta) -> None:
        digest = _token_digest(token)
        self.session.add(
            StaffSession(id=digest, staff_id=account_id, created_at=now, expires_at=now + lifetime)
        )

    def by_session(self, token: str, now: datetime) -> StaffAccount | None:
        row = self.session.get(StaffSession, _token_digest(token))
        if row is None or row.expires_at <= now:
            return None
        account = self.session.get(StaffAccount, row.staff_id)
        return account if account is not None and account.is_active else None

    def end_session(self, token: str) -> None:
        stmt = delete(StaffSession).where(col(StaffSession.id) == _token_digest(token))
        self.session.exec(stmt)

    def end_sessions(self, account_id: int | None) -> None:
        self.session.exec(delete(StaffSession).where(col(StaffSession.staff_id) == account_id))

    def purge_expired_sessions(self, now: datetime) -> None:
        self.session.exec(delete(StaffSession).where(col(StaffSession.expires_at) <= now))


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class StaffActionRepo:
    """The staff audit log: added with the change it records, read newest first."""

    session: Session

    def add(self, action: StaffAction) -> None:
        self.session.add(action)

    def newest(self, limit: int, actor: str | None = None) -> list[StaffAction]:
        stmt = select(StaffAction)
        if actor:
            stmt = stmt.where(StaffAction.actor == actor)
        return list(self.session.exec(stmt.order_by(col(StaffAction.id).desc()).limit(limit)).all())

    def actors(self) -> list[str]:
        stmt = select(StaffAction.actor).distinct().order_by(col(StaffAction.actor))
        return list(self.session.exec(stmt).all())


@dataclass
class LearningRepo:
    """The learning queue: items, their open groups (same ``group_key``, not resolved yet) and the
    groups resolved lately."""

    session: Session

    def add(self, item: LearningItem) -> LearningItem:
        self.session.add(item)
        self.session.flush()
        return item

    def open_group_heads(self, limit: int) -> list[tuple[str, str]]:
        """(group key, folded text of its first item) of the newest open groups, oldest first."""
        first = (
            select(LearningItem.group_key, func.min(LearningItem.id).label("first_id"))
            .where(col(LearningItem.resolved_at).is_(None))
            .group_by(col(LearningItem.group_key))
            .order_by(func.min(LearningItem.id).desc())
            .limit(limit)
            .subquery()
        )
        stmt = (
            select(LearningItem.group_key, LearningItem.folded)
            .join(first, col(LearningItem.id) == first.c.first_id)
            .order_by(col(LearningItem.id))
        )
        return [(key, folded) for key, folded in self.session.exec(stmt).all()]

    def open_items(self, province: str | None = None, limit: int = 5000) -> list[LearningItem]:
        """Open items, newest first (only those of one province's producers, when given)."""
        stmt = select(LearningItem).where(col(LearningItem.resolved_at).is_(None))
        if province is not None:
            stmt = stmt.where(LearningItem.province == province)
        return list(self.session.exec(stmt.order_by(col(LearningItem.id).desc()).limit(limit)).all())

    def open_group(self, group_key: str, province: str | None = None) -> list[LearningItem]:
        """The open items of one group, oldest first (of one province only, when given)."""
        stmt = select(LearningItem).where(
            LearningItem.group_key == group_key, col(LearningItem.resolved_at).is_(None)
        )
        if province is not None:
            stmt = stmt.where(LearningItem.province == province)
        return list(self.session.exec(stmt.order_by(col(LearningItem.id))).all())

    def recently_resolved(self, limit: int, province: str | None = None) -> list[LearningItem]:
        stmt = select(LearningItem).where(col(LearningItem.resolved_at).is_not(None))
        if province is not None:
            stmt = stmt.where(LearningItem.province == province)
        stmt = stmt.order_by(col(LearningItem.resolved_at).desc(), col(LearningItem.id)).limit(limit)
        return list(self.session.exec(stmt).all())

    def resolve(self, items: list[LearningItem], resolution: str, by: str, now: datetime) -> None:
        for item in items:
            item.resolved_at, item.resolution, item.resolved_by = now, resolution, by
            self.session.add(item)
        self.session.flush()


@dataclass
class FeedbackRepo:
    """The producers' 👍 / 👎 under answers."""

    session: Session

    def find(self, user_id: int, entry_id: str, question: str) -> AnswerFeedback | None:
        stmt = select(AnswerFeedback).where(
            AnswerFeedback.user_id == user_id,
            AnswerFeedback.entry_id == entry_id,
            AnswerFeedback.question == question,
        )
        return self.session.exec(stmt.order_by(col(AnswerFeedback.id).desc())).first()

    def save(self, feedback: AnswerFeedback) -> AnswerFeedback:
        self.session.add(feedback)
        self.session.flush()
        return feedback

    def for_entry(self, entry_id: str) -> list[AnswerFeedback]:
        stmt = select(AnswerFeedback).where(AnswerFeedback.entry_id == entry_id)
        return list(self.session.exec(stmt.order_by(col(AnswerFeedback.id))).all())


@dataclass
class LoginFailureRepo:
    """Failed logins per key (``ip:<address>``, ``user:<normalised name>``) within a time window."""

    session: Session

    def recent(self, keys: tuple[str, ...], since: datetime) -> dict[str, list[datetime]]:
        rows = self.session.exec(
            select(LoginFailure.key, LoginFailure.failed_at)
            .where(col(LoginFailure.key).in_(keys), col(LoginFailure.failed_at) > since)
            .order_by(col(LoginFailure.failed_at))
        ).all()
        found: dict[str, list[datetime]] = {key: [] for key in keys}
        for key, at in rows:
            found[key].append(at)
        return found

    def add(self, keys: tuple[str, ...], now: datetime) -> None:
        for key in keys:
            self.session.add(LoginFailure(key=key[:160], failed_at=now))

    def clear(self, keys: tuple[str, ...]) -> None:
        self.session.exec(delete(LoginFailure).where(col(LoginFailure.key).in_(keys)))

    def purge(self, before: datetime) -> None:
        self.session.exec(delete(LoginFailure).where(col(LoginFailure.failed_at) < before))


@dataclass
class SubscriptionRepo:
    session: Session

    def active(self, user_id: int) -> list[Subscription]:
        stmt = select(Subscription).where(Subscription.user_id == user_id, col(Subscription.is_active))
        return list(self.session.exec(stmt.order_by(col(Subscription.id))).all())

    def has_active(self, user_id: int) -> bool:
        stmt = select(Subscription.id).where(Subscription.user_id == user_id, col(Subscription.is_active))
        return self.session.exec(stmt).first() is not None

    def newest_id(self) -> int:
        """The highest subscription id (0: none yet)."""
        return int(self.session.exec(select(func.max(Subscription.id))).one() or 0)

    def settled_id(self, before: datetime) -> int:
        """The highest id among subscriptions created before ``before`` (0: none): every
        subscription up to it is committed by now, whatever the order transactions committed in."""
        stmt = (
            select(Subscription.id)
            .where(col(Subscription.created_at) < before)
            .order_by(col(Subscription.id).desc())
            .limit(1)
        )
        return int(self.session.exec(stmt).first() or 0)

    def add(self, subscription: Subscription) -> Subscription:
        self.session.add(subscription)
        self.session.flush()
        return subscription

    def end(self, subscription: Subscription, now: datetime) -> None:
        subscription.is_active = False
        subscription.cancelled_at = now
        self.session.add(subscription)

    def end_all(self, user_id: int, now: datetime) -> None:
        self.session.exec(
            update(Subscription)
            .where(col(Subscription.user_id) == user_id, col(Subscription.is_active))
            .values(is_active=False, cancelled_at=now)
        )


@dataclass
class ReminderRepo:
    session: Session

    def planned(self, deadline_ids: list[int]) -> set[tuple[int, int, int]]:
        """(user, deadline, offset) of every reminder already planned for these deadlines."""
        stmt = select(Reminder.user_id, Reminder.deadline_id, Reminder.offset_days).where(
            col(Reminder.deadline_id).in_(deadline_ids)
        )
        return {(u, d, o) for u, d, o in self.session.exec(stmt).all()}

    def plan(
        self,
        deadline_id: int,
        audience: DeadlineAudience,
        offsets: list[tuple[int, datetime]],
        now: datetime,
        *,
        channels: tuple[str, ...] | None = None,
        user_id: int | None = None,
        after_subscription: int | None = None,
    ) -> int:
        """Add the missing (user, deadline, offset) rows for the active subscriptions ``audience``
        selects (on ``channels``; of one user; or newer than ``after_subscription``) at the given
        (offset, due at) pairs, in one ``INSERT ... SELECT ... WHERE NOT EXISTS``; how many."""
        if not offsets:
            return 0
        table = table_of(Reminder)
        due_type = table.c.due_at.type
        pairs = [
            select(literal(o, Integer).label("offset_days"), literal(t, due_type).label("due_at"))
            for o, t in offsets
        ]
        wanted = (pairs[0] if len(pairs) == 1 else union_all(*pairs)).subquery("wanted")
        planned = aliased(Reminder)
        exists_already = (
            select(planned.id)
            .where(
                planned.user_id == Subscription.user_id,
                planned.deadline_id == deadline_id,
                planned.offset_days == wanted.c.offset_days,
            )
            .exists()
        )
        rows = (
            sql_select(
                col(Subscription.user_id),
                literal(deadline_id, Integer),
                wanted.c.offset_days,
                wanted.c.due_at,
                literal("pending", String),
                literal(now, table.c.created_at.type),
            )
            .distinct()
            .select_from(Subscription)
            .join(User, col(User.id) == Subscription.user_id)
            .join(Profile, col(Profile.user_id) == Subscription.user_id, isouter=True)
            .join(wanted, true())
            .where(col(Subscription.is_active), audience.where(_dialect(self.session)), ~exists_already)
        )
        if channels is not None:
            rows = rows.where(col(User.channel).in_(channels))
        if user_id is not None:
            rows = rows.where(col(Subscription.user_id) == user_id)
        if after_subscription is not None:
            rows = rows.where(col(Subscription.id) > after_subscription)
        names = ["user_id", "deadline_id", "offset_days", "due_at", "status", "created_at"]
        stmt = _dialect_insert(self.session)(table).from_select(names, rows).on_conflict_do_nothing()
        return int(self.session.exec(stmt.execution_options(preserve_rowcount=True)).rowcount or 0)

    def bulk_added(self, rows: int) -> None:
        """``rows`` were just planned in bulk (see ``refresh_statistics``)."""
        refresh_statistics(self.session, Reminder, rows)

    def plan_marks(self, deadline_ids: list[int]) -> dict[int, tuple[str, int]]:
        """(fingerprint, planned through subscription id) of these deadlines, when planned before."""
        if not deadline_ids:
            return {}
        stmt = select(
            ReminderPlan.deadline_id, ReminderPlan.fingerprint, ReminderPlan.through_subscription_id
        ).where(col(ReminderPlan.deadline_id).in_(deadline_ids))
        return {d: (f, t) for d, f, t in self.session.exec(stmt).all()}

    def mark_planned(self, deadline_id: int, fingerprint: str, through: int, now: datetime) -> None:
        table = table_of(ReminderPlan)
        values = {"fingerprint": fingerprint, "through_subscription_id": through, "planned_at": now}
        stmt = (
            _dialect_insert(self.session)(table)
            .values(deadline_id=deadline_id, **values)
            .on_conflict_do_update(index_elements=[table.c.deadline_id], set_=values)
        )
        self.session.execute(stmt)

    def _due(self, now: datetime) -> list[Any]:
        return [col(Reminder.status) == "pending", col(Reminder.due_at) <= now]

    def due_deadlines(self, now: datetime) -> list[int]:
        """The deadlines with reminders pending and due by ``now`` (walks the due range only)."""
        stmt = select(Reminder.deadline_id).where(*self._due(now)).distinct()
        return sorted(int(d) for d in self.session.exec(stmt).all())

    def skip_superseded(self, now: datetime) -> int:
        """Skip every due reminder that a more recent due one of the same (user, deadline) makes
        pointless ("còn 3 ngày" after "còn 14 ngày"); how many. One pass over the due range ranks
        each (user, deadline)'s due rows by offset, whatever the planner believes of the range (its
        statistics of ``due_at`` always lag behind the clock)."""
        each = (col(Reminder.user_id), col(Reminder.deadline_id))
        rank = func.row_number().over(partition_by=each, order_by=col(Reminder.offset_days))
        ranked = select(col(Reminder.id).label("id"), rank.label("rank")).where(*self._due(now)).subquery()
        older = select(ranked.c.id).where(ranked.c.rank > 1)
        stmt = update(Reminder).where(col(Reminder.id).in_(older)).values(status="skipped", processed_at=now)
        return int(self.session.exec(stmt).rowcount or 0)

    def skip_useless(self, now: datetime, today: date) -> int:
        """Skip every due reminder whose deadline is gone, withdrawn or past (``today``: the local
        date), whose user is gone or blocked the bot, or who follows nothing any more; how many."""
        deadline_ahead = (
            select(Deadline.id)
            .where(
                col(Deadline.id) == Reminder.deadline_id, col(Deadline.is_active), Deadline.due_on >= today
            )
            .exists()
        )
        reachable = (
            select(User.id).where(col(User.id) == Reminder.user_id, col(User.is_blocked).is_(False)).exists()
        )
        following = (
            select(Subscription.id)
            .where(col(Subscription.user_id) == Reminder.user_id, col(Subscription.is_active))
            .exists()
        )
        stmt = (
            update(Reminder)
            .where(*self._due(now), or_(~deadline_ahead, ~reachable, ~following))
            .values(status="skipped", processed_at=now)
        )
        return int(self.session.exec(stmt).rowcount or 0)

    def due(self, now: datetime) -> list[Reminder]:
        """Pending reminders due by ``now``: per (user, deadline) the most recent offset first."""
        stmt = (
            select(Reminder)
            .where(*self._due(now))
            .order_by(col(Reminder.user_id), col(Reminder.deadline_id), col(Reminder.offset_days))
        )
        return list(self.session.exec(stmt).all())

    def claim_due(self, deadline_id: int, now: datetime) -> list[int]:
        """Move one deadline's due reminders to ``queued`` and return their ids: a row another
        process claimed first is no longer pending, so it is never returned twice."""
        stmt = (
            update(Reminder)
            .where(col(Reminder.deadline_id) == deadline_id, *self._due(now))
            .values(status="queued", processed_at=now)
            .returning(col(Reminder.id))
        )
        return [int(i) for i in self.session.execute(stmt).scalars().all()]

    def skip_pending(self, user_id: int, now: datetime) -> None:
        self.session.exec(
            update(Reminder)
            .where(col(Reminder.user_id) == user_id, col(Reminder.status) == "pending")
            .values(status="skipped", processed_at=now)
        )


@dataclass
class BroadcastRepo:
    session: Session

    def get(self, broadcast_id: int) -> Broadcast | None:
        return self.session.get(Broadcast, broadcast_id)

    def newest(self, limit: int) -> list[Broadcast]:
        return list(
            self.session.exec(select(Broadcast).order_by(col(Broadcast.id).desc()).limit(limit)).all()
        )

    def sending(self) -> list[Broadcast]:
        return list(self.session.exec(select(Broadcast).where(Broadcast.status == "sending")).all())

    def add(self, broadcast: Broadcast) -> Broadcast:
        self.session.add(broadcast)
        self.session.flush()
        return broadcast

    def save(self, broadcast: Broadcast) -> None:
        self.session.add(broadcast)

    def take_draft(self, broadcast: Broadcast, now: datetime) -> bool:
        """Draft -> sending with a conditional update: only one confirmation ever wins."""
        taken = self.session.exec(
            update(Broadcast)
            .where(col(Broadcast.id) == broadcast.id, col(Broadcast.status) == "draft")
            .values(status="sending", confirmed_at=now)
        )
        self.session.refresh(broadcast)
        return (taken.rowcount or 0) == 1

    def return_to_draft(self, broadcast: Broadcast) -> None:
        """Back to a draft (a confirmation that found nobody to send to): nothing was queued."""
        self.session.exec(
            update(Broadcast)
            .where(col(Broadcast.id) == broadcast.id, col(Broadcast.status) == "sending")
            .values(status="draft", confirmed_at=None)
        )
        self.session.refresh(broadcast)

    def _audience(self, audience: BroadcastAudience, *columns: Any) -> Any:
        return (
            select(*columns)
            .select_from(User)
            .join(Profile, col(Profile.user_id) == User.id, isouter=True)
            .where(*audience.where(_dialect(self.session)))
        )

    def count_by_channel(self, audience: BroadcastAudience) -> dict[str, int]:
        """How many the audience reaches on each of its channels (one ``GROUP BY``)."""
        stmt = self._audience(audience, User.channel, func.count()).group_by(col(User.channel))
        found = {str(channel): int(n) for channel, n in self.session.exec(stmt).all()}
        return {channel: found.get(channel, 0) for channel in audience.channels}

    def recipients(
        self, audience: BroadcastAudience, limit: int | None = None
    ) -> list[tuple[User, Profile | None]]:
        """The audience's users with their profiles, in id order (``limit``: the first ones only)."""
        stmt = self._audience(audience, User, Profile).order_by(col(User.id))
        if limit is not None:
            stmt = stmt.limit(limit)
        return [(user, profile) for user, profile in self.session.exec(stmt).all()]

    def recipient_fields(
        self, audience: BroadcastAudience, after_id: int, limit: int
    ) -> list[tuple[int, str, str, dict[str, str]]]:
        """The next ``limit`` recipients after user ``after_id`` (keyset order): id, channel, chat id
        and the template fields (``storage.bulk.FIELDS``), for templates SQL cannot render."""
        columns = [field_column(name) for name in FIELDS]
        stmt = (
            self._audience(audience, User.id, User.channel, User.external_id, *columns)
            .where(col(User.id) > after_id)
            .order_by(col(User.id))
            .limit(limit)
        )
        found = []
        for row in self.session.exec(stmt).all():
            fields = {name: value or "" for name, value in zip(FIELDS, row[3:], strict=True)}
            found.append((int(row[0]), str(row[1]), str(row[2]), fields))
        return found

    def queue(
        self,
        broadcast_id: int,
        audience: BroadcastAudience,
        parts: tuple[MessagePart, ...],
        buttons: list[dict[str, Any]],
        priority: int,
        now: datetime,
    ) -> int:
        """One outbox row per recipient, in one ``INSERT ... SELECT``: the text rendered in SQL from
        the template's parts, the key (kind, source, user) as ``OutboxRepo.add`` gives it."""
        kind = "broadcast"
        values = _bulk_outbox_values(kind, broadcast_id, buttons, priority, now)
        key = literal(f"{kind}:{broadcast_id}:", String).op("||")(id_text(User.id))
        select_list = {
            **values,
            "dedupe_key": key,
            "user_id": User.id,
            "channel": User.channel,
            "chat_id": User.external_id,
            "text": rendered(parts, _dialect(self.session)),
        }
        stmt = sql_insert(table_of(OutboxMessage)).from_select(
            list(select_list), self._audience(audience, *select_list.values())
        )
        queued = int(self.session.exec(stmt.execution_options(preserve_rowcount=True)).rowcount or 0)
        refresh_statistics(self.session, OutboxMessage, queued)
        return queued


def _bulk_outbox_values(
    kind: str, source_id: int, buttons: list[dict[str, Any]], priority: int, now: datetime
) -> dict[str, Any]:
    """The columns every row of a set-based outbox insert shares, as SQL literals."""
    table = table_of(OutboxMessage)
    return {
        "kind": literal(kind, String),
        "source_id": literal(source_id, Integer),
        "buttons": literal(buttons, table.c.buttons.type),
        "ask_contact": literal(False, Boolean),
        "status": literal("pending", String),
        "priority": literal(priority, Integer),
        "attempts": literal(0, Integer),
        "next_attempt_at": literal(now, table.c.next_attempt_at.type),
        "ambiguous": literal(False, Boolean),
        "ephemeral": literal(False, Boolean),
        "created_at": literal(now, table.c.created_at.type),
    }


@dataclass
class KnowledgeRepo:
    session: Session

    def newest_id(self) -> int | None:
        return self.session.exec(select(func.max(KnowledgeVersion.id))).one()

    def newest(self) -> KnowledgeVersion | None:
        stmt = select(KnowledgeVersion).order_by(col(KnowledgeVersion.id).desc()).limit(1)
        return self.session.exec(stmt).first()

    def newest_files(self) -> tuple[int, dict[str, str]] | None:
        """The newest version's id and files, not kept in the session (a national knowledge base
        is tens of megabytes of text: the caller alone decides how long it lives)."""
        stmt = select(KnowledgeVersion.id, KnowledgeVersion.files).order_by(col(KnowledgeVersion.id).desc())
        row = self.session.exec(stmt.limit(1)).first()
        return None if row is None or row[0] is None else (row[0], dict(row[1]))

    def get(self, version_id: int) -> KnowledgeVersion | None:
        return self.session.get(KnowledgeVersion, version_id)

    def before(self, version_id: int) -> KnowledgeVersion | None:
        """The version published just before this one (None for the first)."""
        stmt = (
            select(KnowledgeVersion)
            .where(col(KnowledgeVersion.id) < version_id)
            .order_by(col(KnowledgeVersion.id).desc())
            .limit(1)
        )
        return self.session.exec(stmt).first()

    def history(self, limit: int) -> list[KnowledgeVersion]:
        stmt = select(KnowledgeVersion).order_by(col(KnowledgeVersion.id).desc()).limit(limit)
        return list(self.session.exec(stmt).all())

    def add(self, files: dict[str, str], created_by: str, reason: str) -> KnowledgeVersion:
        version = KnowledgeVersion(files=files, created_by=created_by[:128], reason=reason)
        self.session.add(version)
        self.session.flush()
        return version


@dataclass(frozen=True)
class StatsPeriod:
    """The instants ``[start, end)`` (UTC) of a statistics period and the offset of its local days
    from UTC (seconds), by which rows are counted per local day."""

    start: datetime
    end: datetime
    utc_offset_seconds: int = 0


# Outbox statuses as the statistics show them: a row not yet sent (pending, or claimed) is waiting.
_DELIVERY_STATUS = {"pending": "waiting", "sending": "waiting"}
PROACTIVE_KINDS = ("broadcast", "reminder")
STATS_GROUPS_FETCHED = 500


@dataclass
class StatsRepo:
    """The statistics page's aggregates, each one ``GROUP BY`` / ``COUNT`` query over a period and,
    optionally, one province (the producer's profile province for messages and deliveries, the
    lead's for leads, the question's for questions). Identical on SQLite and PostgreSQL."""

    session: Session

    def _local_day(self, column: Any, period: StatsPeriod) -> Any:
        """``column`` (a UTC instant) as the local date 'YYYY-MM-DD' of the period's offset."""
        offset = int(period.utc_offset_seconds)
        if _dialect(self.session) == "postgresql":
            shifted = func.timezone("UTC", column) + literal_column(f"interval '{offset} seconds'")
            return func.to_char(shifted, "YYYY-MM-DD")
        return func.strftime("%Y-%m-%d", column, f"{offset:+d} seconds")

    @staticmethod
    def _in(column: Any, period: StatsPeriod) -> Any:
        return and_(col(column) >= period.start, col(column) < period.end)

    @staticmethod
    def _user_in_province(user_id: Any, province: str | None) -> list[Any]:
        if province is None:
            return []
        profiles = select(Profile.user_id).where(Profile.province == province)
        return [col(user_id).in_(profiles)]

    def _asking(self, period: StatsPeriod, province: str | None) -> list[Any]:
        """Typed text messages from producers in the period (commands and buttons are not questions)."""
        return [
            MessageLog.direction == "in",
            MessageLog.kind == "text",
            self._in(MessageLog.created_at, period),
            *self._user_in_province(MessageLog.user_id, province),
        ]

    def questions_per_day(self, period: StatsPeriod, province: str | None) -> dict[str, int]:
        day = self._local_day(MessageLog.created_at, period)
        stmt = select(day, func.count()).where(*self._asking(period, province)).group_by(day)
        return {str(d): int(n) for d, n in self.session.exec(stmt).all()}

    def staff_questions_per_day(self, period: StatsPeriod, province: str | None) -> dict[str, int]:
        day = self._local_day(StaffQuestion.created_at, period)
        where = [self._in(StaffQuestion.created_at, period)]
        if province is not None:
            where.append(StaffQuestion.province == province)
        stmt = select(day, func.count()).where(*where).group_by(day)
        return {str(d): int(n) for d, n in self.session.exec(stmt).all()}

    def _leads(self, period: StatsPeriod, province: str | None) -> list[Any]:
        where = [self._in(Lead.created_at, period)]
        if province is not None:
            where.append(Lead.province == province)
        return where

    def leads_by(self, field: str, period: StatsPeriod, province: str | None) -> list[tuple[str, int]]:
        """Leads created in the period per ``field`` (province, programme_id, category, status),
        most first; a missing value is the key ""."""
        if field not in ("province", "programme_id", "category", "status"):
            raise ValueError(field)
        column = getattr(Lead, field)
        stmt = select(column, func.count()).where(*self._leads(period, province)).group_by(column)
        counted = [(str(key or ""), int(n)) for key, n in self.session.exec(stmt).all()]
        # Ties in one order on every database (collations and NULLs sort differently).
        return sorted(counted, key=lambda group: (-group[1], group[0]))

    def unanswered_groups(
        self, period: StatsPeriod, province: str | None, limit: int
    ) -> list[tuple[str, int]]:
        """Open groups of the learning queue (``/unanswered``) with items from the period: an example
        wording of each (its first) and how many, most first."""
        where = [col(LearningItem.resolved_at).is_(None), self._in(LearningItem.created_at, period)]
        if province is not None:
            where.append(LearningItem.province == province)
        count = func.count()
        first = func.min(LearningItem.id)
        grouped = (
            select(LearningItem.group_key, count.label("n"), first.label("first"))
            .where(*where)
            .group_by(col(LearningItem.group_key))
            .order_by(count.desc(), col(LearningItem.group_key))
            .limit(limit)
            .subquery()
        )
        stmt = (
            select(LearningItem.text, grouped.c.n)
            .join(grouped, col(LearningItem.id) == grouped.c.first)
            .order_by(grouped.c.n.desc(), col(LearningItem.group_key))
        )
        return [(str(t), int(n)) for t, n in self.session.exec(stmt).all()]

    def funnel(self, period: StatsPeriod, province: str | None) -> dict[str, int]:
        """Distinct producers at each step in the period (see ``services.stats`` for the proxies):
        ``asked`` typed a question; ``checked`` answered the eligibility questions (their profile
        holds a legal form or an activity) and wrote in the period, or submitted; ``started`` has an
        application draft in a conversation that moved in the period, or submitted; ``submitted``
        sent a lead; ``approved`` has a lead now approved."""
        leads = select(Lead.user_id).where(*self._leads(period, province))
        active = select(MessageLog.user_id).where(
            MessageLog.direction == "in",
            self._in(MessageLog.created_at, period),
            *self._user_in_province(MessageLog.user_id, province),
        )
        answered = select(Profile.user_id).where(
            or_(col(Profile.legal_form).is_not(None), col(Profile.activity).is_not(None)),
            col(Profile.user_id).in_(active),
        )
        drafts = select(Conversation.user_id).where(
            col(Conversation.data)["_draft"].as_string().is_not(None),
            self._in(Conversation.updated_at, period),
            *self._user_in_province(Conversation.user_id, province),
        )

        def distinct(stmt: Any) -> int:
            return int(self.session.exec(select(func.count()).select_from(stmt.subquery())).one())

        asked = select(MessageLog.user_id).where(*self._asking(period, province)).distinct()
        approved = leads.where(Lead.status == "approved").distinct()
        return {
            "asked": distinct(asked),
            "checked": distinct(union(answered, leads)),
            "started": distinct(union(drafts, leads)),
            "submitted": distinct(leads.distinct()),
            "approved": distinct(approved),
        }

    def deliveries(self, period: StatsPeriod, province: str | None) -> dict[str, dict[str, int]]:
        """Broadcast and reminder messages queued in the period, per kind and status (sent, blocked,
        failed, waiting)."""
        count = func.count()
        stmt = (
            select(OutboxMessage.kind, OutboxMessage.status, count)
            .where(
                col(OutboxMessage.kind).in_(PROACTIVE_KINDS),
                self._in(OutboxMessage.created_at, period),
                *self._user_in_province(OutboxMessage.user_id, province),
            )
            .group_by(OutboxMessage.kind, OutboxMessage.status)
        )
        result: dict[str, dict[str, int]] = {kind: {} for kind in PROACTIVE_KINDS}
        for kind, status, n in self.session.exec(stmt).all():
            shown = _DELIVERY_STATUS.get(status, status)
            result[kind][shown] = result[kind].get(shown, 0) + int(n)
        return result


class Repos:
    """Every repository over one session (one unit of work)."""

    def __init__(self, session: Session):
        self.session = session
        self.users = UserRepo(session)
        self.profiles = ProfileRepo(session)
        self.conversations = ConversationRepo(session)
        self.messages = MessageLogRepo(session)
        self.leads = LeadRepo(session)
        self.deadlines = DeadlineRepo(session)
        self.staff_questions = StaffQuestionRepo(session)
        self.outbox = OutboxRepo(session)
        self.staff = StaffRepo(session)
        self.inbox = InboxRepo(session)
        self.job_leases = JobLeaseRepo(session)
        self.login_failures = LoginFailureRepo(session)
        self.staff_actions = StaffActionRepo(session)
        self.personal_data = PersonalDataRepo(session)
        self.budget = SendBudgetRepo(session)
        self.pacing = ChatPacingRepo(session)
        self.subscriptions = SubscriptionRepo(session)
        self.reminders = ReminderRepo(session)
        self.broadcasts = BroadcastRepo(session)
        self.learning = LearningRepo(session)
        self.feedback = FeedbackRepo(session)
        self.knowledge = KnowledgeRepo(session)
        self.stats = StatsRepo(session)
        self.metrics = MetricsRepo(session)
