"""Everything stored about one producer, in one place: a summary for ``/dulieu``, erasure for
``/xoadulieu`` and the retention sweep, and the anonymisation of applications when consent is
withdrawn (Decree 13/2023/NĐ-CP).

Where personal data lives (also in the README): ``users`` (chat id, display name, username),
``profiles`` (name, phone, establishment, address, sector, amounts), ``conversations`` (a draft
application), ``leads`` and ``lead_events`` (applications and staff notes), ``staff_questions``,
``subscriptions`` and ``reminders``, ``learning_items`` and ``answer_feedback`` (the learning
queue), ``message_log`` (every message in and out), ``inbox`` (raw
updates, 7 days), ``outbox`` (messages sent), ``chat_pacing`` (send times only).

Erasure deletes rows; it never only flags them. Applications already in the centre's hands are
kept without anything that identifies the producer (programme, province, status, amount), with an
entry in their history saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from storage.models import (
    AnswerFeedback,
    ChatPacing,
    Conversation,
    InboxUpdate,
    Lead,
    LeadEvent,
    LearningItem,
    MessageLog,
    OutboxMessage,
    Profile,
    Reminder,
    StaffQuestion,
    Subscription,
    User,
    saved_id,
)

ANONYMISED_NAME = "(đã xóa theo yêu cầu)"
ERASED_NOTE = "Người dân yêu cầu xóa dữ liệu cá nhân (Nghị định 13/2023/NĐ-CP): hồ sơ đã được ẩn danh."
WITHDRAWN_NOTE = "Người dân rút lại sự đồng ý xử lý dữ liệu (Nghị định 13/2023/NĐ-CP): hồ sơ đã được ẩn danh."
# What a conversation row keeps of the producer's words (a draft application, the last questions).
_QUESTION_KEYS = ("_draft", "_last_question", "_answered")
CONTACT_FIELDS = ("full_name", "phone", "establishment_name", "commune", "sector", "products")


@dataclass(frozen=True)
class DataSummary:
    leads: list[Lead]
    subscribed: bool
    questions: int
    messages: int


@dataclass
class PersonalDataRepo:
    session: Session

    def summary(self, user_id: int) -> DataSummary:
        s = self.session
        leads = list(s.exec(select(Lead).where(Lead.user_id == user_id).order_by(col(Lead.id))).all())
        subscribed = s.exec(
            select(Subscription.id).where(Subscription.user_id == user_id, Subscription.is_active)
        ).first()
        questions = s.exec(
            select(func.count()).select_from(StaffQuestion).where(StaffQuestion.user_id == user_id)
        )
        messages = s.exec(select(func.count()).select_from(MessageLog).where(MessageLog.user_id == user_id))
        return DataSummary(leads, subscribed is not None, int(questions.one()), int(messages.one()))

    def anonymise_leads(self, user_id: int, now: datetime, note: str) -> int:
        """Strip everything identifying from the producer's applications; how many there were."""
        leads = self.session.exec(
            select(Lead).where(Lead.user_id == user_id, Lead.full_name != ANONYMISED_NAME)
        ).all()
        for lead in leads:
            lead.full_name, lead.phone, lead.establishment_name = ANONYMISED_NAME, "", ""
            lead.commune = lead.sector = lead.products = lead.plan = None
            lead.search_text = ""
            lead.updated_at = now
            self.session.add(lead)
            self.session.add(LeadEvent(lead_id=saved_id(lead), actor="producer", note=note, created_at=now))
        # Staff notes may quote the producer; the history keeps who changed what, not the words.
        lead_ids = [lead.id for lead in leads]
        self._forget_notifications("lead_new", lead_ids)
        if lead_ids:
            self.session.exec(
                update(LeadEvent)
                .where(col(LeadEvent.lead_id).in_(lead_ids), col(LeadEvent.note).is_not(None))
                .where(col(LeadEvent.note).not_in([note]))
                .values(note="(ghi chú đã xóa cùng dữ liệu cá nhân)")
            )
        return len(leads)

    def _forget_notifications(self, kind: str, source_ids: list[int | None]) -> None:
        """Messages to staff that quoted this producer (a new lead, a question) leave the outbox too."""
        if source_ids:
            self.session.exec(
                delete(OutboxMessage).where(
                    col(OutboxMessage.kind) == kind, col(OutboxMessage.source_id).in_(source_ids)
                )
            )

    def withdraw_consent(self, user_id: int, now: datetime) -> int:
        """Consent withdrawn: applications anonymised, contact details dropped from the profile."""
        count = self.anonymise_leads(user_id, now, WITHDRAWN_NOTE)
        profile = self.session.get(Profile, user_id)
        if profile is not None:
            for field in CONTACT_FIELDS:
                setattr(profile, field, None)
            profile.updated_at = now
            self.session.add(profile)
        return count

    def erase(self, user_id: int, now: datetime) -> int:
        """Delete the producer from every table; applications are anonymised and kept with a
        tombstone user (no chat id, no name). Returns how many applications were kept."""
        s = self.session
        user = s.get(User, user_id)
        if user is None:
            return 0
        self.anonymise_leads(user_id, now, ERASED_NOTE)
        questions = s.exec(select(StaffQuestion.id).where(StaffQuestion.user_id == user_id)).all()
        self._forget_notifications("question_new", list(questions))
        for model in (
            MessageLog,
            Reminder,
            Subscription,
            StaffQuestion,
            ChatPacing,
            OutboxMessage,
            LearningItem,
            AnswerFeedback,
        ):
            s.exec(delete(model).where(col(model.user_id) == user_id))
        s.exec(delete(Conversation).where(col(Conversation.user_id) == user_id))
        s.exec(delete(Profile).where(col(Profile.user_id) == user_id))
        s.exec(
            delete(InboxUpdate).where(
                col(InboxUpdate.channel) == user.channel, col(InboxUpdate.chat_key) == user.external_id
            )
        )
        kept = int(s.exec(select(func.count()).select_from(Lead).where(Lead.user_id == user_id)).one())
        # A tombstone: nothing that identifies the producer (the anonymised applications and the
        # last answer still in the outbox point to it). Writing again starts as a new user.
        user.external_id = f"erased:{user.id}"
        user.display_name, user.username, user.is_blocked = "", None, True
        s.add(user)
        s.flush()
        return kept

    def purge_older_than(self, cutoff: datetime, batch: int = 1000) -> int:
        """Retention: the message log and delivered messages before ``cutoff`` are deleted, and
        application drafts untouched since then are dropped. Returns how many rows went."""
        s = self.session
        removed = s.exec(delete(MessageLog).where(col(MessageLog.created_at) < cutoff)).rowcount or 0
        removed += (
            s.exec(
                delete(OutboxMessage).where(
                    col(OutboxMessage.status).in_(("sent", "failed", "blocked")),
                    col(OutboxMessage.created_at) < cutoff,
                )
            ).rowcount
            or 0
        )
        stale = s.exec(
            select(Conversation)
            .where(col(Conversation.updated_at) < cutoff)
            .order_by(col(Conversation.user_id))
            .limit(batch)
        ).all()
        for conversation in stale:
            if conversation.data.keys() & set(_QUESTION_KEYS):
                data = {k: v for k, v in conversation.data.items() if k not in _QUESTION_KEYS}
                conversation.data = data
                s.add(conversation)
                removed += 1
        return removed
