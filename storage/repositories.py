"""Small repositories, one per table family, behind one ``Repos`` aggregator over a single session.

Repositories add, read and change rows; they never commit (the unit of work in ``storage.db`` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.models import (
    Conversation,
    Deadline,
    Lead,
    LeadEvent,
    MessageLog,
    OutboxMessage,
    Profile,
    StaffAccount,
    StaffQuestion,
    User,
    utcnow,
)


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
            user = User(
                channel=channel, external_id=external_id, display_name=display_name[:256], username=username
            )
            self.session.add(user)
            self.session.flush()
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
            profile = Profile(user_id=user_id)
            self.session.add(profile)
            self.session.flush()
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
            conversation = Conversation(user_id=user_id)
            self.session.add(conversation)
            self.session.flush()
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


@dataclass
class LeadRepo:
    session: Session

    def get(self, lead_id: int) -> Lead | None:
        return self.session.get(Lead, lead_id)

    def by_submission_key(self, key: str) -> Lead | None:
        return self.session.exec(select(Lead).where(Lead.submission_key == key)).first()

    def by_ref(self, ref_code: str) -> Lead | None:
        return self.session.exec(select(Lead).where(Lead.ref_code == ref_code)).first()

    def for_user(self, user_id: int) -> list[Lead]:
        stmt = select(Lead).where(Lead.user_id == user_id).order_by(col(Lead.id).desc())
        return list(self.session.exec(stmt).all())

    def add(self, lead: Lead, year: int) -> Lead:
        """Insert a lead and give it its reference code (KC-<year>-<6-digit id>)."""
        self.session.add(lead)
        self.session.flush()
        lead.ref_code = f"KC-{year}-{lead.id:06d}"
        self.session.add(lead)
        self.session.add(LeadEvent(lead_id=lead.id, actor="producer", to_status=lead.status))
        return lead

    def events(self, lead_id: int) -> list[LeadEvent]:
        stmt = select(LeadEvent).where(LeadEvent.lead_id == lead_id).order_by(col(LeadEvent.id))
        return list(self.session.exec(stmt).all())


@dataclass
class DeadlineRepo:
    session: Session

    def upcoming(self, today: date, province: str | None = None) -> list[Deadline]:
        stmt = select(Deadline).where(Deadline.is_active, Deadline.due_on >= today)
        if province is not None:
            stmt = stmt.where((Deadline.province == province) | (col(Deadline.province).is_(None)))
        return list(self.session.exec(stmt.order_by(col(Deadline.due_on))).all())

    def upsert_by_key(self, key: str, **fields: Any) -> Deadline:
        deadline = self.session.exec(select(Deadline).where(Deadline.source_key == key)).first()
        if deadline is None:
            deadline = Deadline(source_key=key, **fields)
        else:
            for name, value in fields.items():
                setattr(deadline, name, value)
        self.session.add(deadline)
        self.session.flush()
        return deadline


@dataclass
class StaffQuestionRepo:
    session: Session

    def add(self, user_id: int, text: str) -> StaffQuestion:
        question = StaffQuestion(user_id=user_id, text=text)
        self.session.add(question)
        self.session.flush()
        return question

    def get(self, question_id: int) -> StaffQuestion | None:
        return self.session.get(StaffQuestion, question_id)

    def open_questions(self) -> list[StaffQuestion]:
        stmt = select(StaffQuestion).where(StaffQuestion.status == "open").order_by(col(StaffQuestion.id))
        return list(self.session.exec(stmt).all())

    def for_user(self, user_id: int) -> list[StaffQuestion]:
        stmt = select(StaffQuestion).where(StaffQuestion.user_id == user_id).order_by(col(StaffQuestion.id))
        return list(self.session.exec(stmt).all())


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
    ) -> OutboxMessage | None:
        """Queue one message for one user; None when that (kind, source, user) is already queued."""
        exists = self.session.exec(
            select(OutboxMessage.id).where(
                OutboxMessage.kind == kind,
                OutboxMessage.source_id == source_id,
                OutboxMessage.user_id == user.id,
            )
        ).first()
        if exists is not None:
            return None
        message = OutboxMessage(
            kind=kind,
            source_id=source_id,
            user_id=user.id,
            channel=user.channel,
            chat_id=user.external_id,
            text=text,
            buttons=buttons or [],
            priority=priority,
        )
        self.session.add(message)
        return message

    def for_source(self, kind: str, source_id: int) -> list[OutboxMessage]:
        stmt = select(OutboxMessage).where(OutboxMessage.kind == kind, OutboxMessage.source_id == source_id)
        return list(self.session.exec(stmt).all())


@dataclass
class StaffRepo:
    session: Session

    def by_username(self, username: str) -> StaffAccount | None:
        return self.session.exec(select(StaffAccount).where(StaffAccount.username == username)).first()

    def get(self, account_id: int) -> StaffAccount | None:
        return self.session.get(StaffAccount, account_id)

    def upsert(self, username: str, password_hash: str, telegram_id: int | None) -> tuple[StaffAccount, bool]:
        """Create the account or update its password (and Telegram id); True when created."""
        account = self.by_username(username)
        created = account is None
        if account is None:
            account = StaffAccount(username=username, password_hash=password_hash)
        account.password_hash = password_hash
        if telegram_id is not None:
            account.telegram_id = telegram_id
        account.is_active = True
        self.session.add(account)
        self.session.flush()
        return account, created


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
