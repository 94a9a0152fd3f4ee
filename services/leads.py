"""The lead workflow: a producer's application becomes a lead (once, however often it is submitted),
staff move it along the statuses (mới → đã liên hệ → đủ / không đủ điều kiện → kế hoạch → duyệt /
từ chối) and add notes; every change is recorded with who made it, and the producer is told."""

from __future__ import annotations

from dataclasses import dataclass

from knowledge.models import Programme
from services import audit, notifications
from services.messages import Messages
from services.staff_directory import StaffDirectory
from services.staff_scope import Scope
from storage.models import Lead, LeadEvent, saved_id, utcnow
from storage.repositories import Repos

OPEN_STATUSES = ("new", "contacted", "eligible", "planned")
# A decision: leaving one reopens the lead, which needs a reason (a note, recorded and sent).
FINAL_STATUSES = ("not_eligible", "approved", "rejected")
# Which status may follow which.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("contacted", "eligible", "not_eligible"),
    "contacted": ("eligible", "not_eligible"),
    "eligible": ("planned", "not_eligible"),
    "not_eligible": ("contacted", "eligible"),
    "planned": ("approved", "rejected"),
    "approved": ("planned",),
    "rejected": ("planned",),
}
MAX_ACTOR = 128
MAX_NOTE = 2000


class TransitionError(ValueError):
    """The lead cannot move to that status from where it is."""


class ReasonNeeded(TransitionError):
    """Reopening a decided lead (leaving a final status) needs a reason."""


def next_statuses(status: str) -> tuple[str, ...]:
    return TRANSITIONS.get(status, ())


def is_reopening(from_status: str) -> bool:
    """Leaving a final status reopens the lead: allowed only with a reason."""
    return from_status in FINAL_STATUSES


@dataclass(frozen=True)
class LeadService:
    messages: Messages
    staff: StaffDirectory

    def submit(self, repos: Repos, lead: Lead, programme: Programme | None, year: int) -> tuple[Lead, bool]:
        """Store a submitted application and tell staff; the same submission twice (a double tap,
        two processes) gives the first lead back, unannounced. Returns the lead and whether it is new."""
        stored, new = repos.leads.add_once(lead, year)
        if new:
            assert stored.id is not None
            message = self.messages.new_lead(stored, programme)
            notifications.to_staff(repos, self.staff, "lead_new", stored.id, message, stored.province)
        return stored, new

    def change_status(
        self, repos: Repos, lead: Lead, to_status: str, actor: str, note: str | None = None
    ) -> LeadEvent:
        """Move a lead along the workflow, record who did it, and tell the producer. Reopening a
        decided lead needs a ``note``: the reason, recorded with the change and sent with it."""
        if to_status not in next_statuses(lead.status):
            raise TransitionError(f"{lead.status} -> {to_status}")
        if is_reopening(lead.status) and not (note or "").strip():
            raise ReasonNeeded(f"{lead.status} -> {to_status}")
        event = LeadEvent(
            lead_id=saved_id(lead),
            actor=actor[:MAX_ACTOR],
            from_status=lead.status,
            to_status=to_status,
            note=(note or "").strip()[:MAX_NOTE] or None,
        )
        lead.status = to_status
        lead.updated_at = utcnow()
        repos.leads.save(lead, event)
        assert event.id is not None
        # The log says what happened, never what was written: the note itself (which may name the
        # producer) lives in the lead's history, which erasure anonymises.
        details = f"{event.from_status} -> {to_status} (lịch sử #{event.id})"
        audit.record(repos, actor, audit.LEAD_STATUS, "lead", lead.id, details)
        notifications.to_user(
            repos, lead.user_id, "lead_status", event.id, self.messages.lead_status(lead, event)
        )
        return event

    @staticmethod
    def add_note(repos: Repos, lead: Lead, actor: str, note: str) -> LeadEvent:
        event = repos.leads.add_event(
            LeadEvent(lead_id=saved_id(lead), actor=actor[:MAX_ACTOR], note=note.strip()[:MAX_NOTE])
        )
        audit.record(repos, actor, audit.LEAD_NOTE, "lead", lead.id, f"ghi chú #{event.id}")
        return event

    @staticmethod
    def open_leads(repos: Repos, limit: int, scope: Scope | None = None) -> list[Lead]:
        """The newest leads still being worked on (those ``scope`` sees, when given)."""
        province = scope.province if scope is not None else None
        return repos.leads.newest_with_status(OPEN_STATUSES, limit, province)
