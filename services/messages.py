"""What the services need said, and in which form they queue it: the ``Messages`` port (implemented
by the dialogue layer from its texts) and the ``Message`` it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from knowledge.models import Programme
from storage.models import Deadline, Lead, LeadEvent, StaffQuestion, User


@dataclass(frozen=True)
class Message:
    """One chat message as the outbox stores it: HTML text and buttons in stored form
    (``handlers.notify.buttons_to_rows``)."""

    text: str
    buttons: list[dict[str, Any]] = field(default_factory=list)


class Messages(Protocol):
    """The wording of every message a service sends on its own."""

    def new_lead(self, lead: Lead, programme: Programme | None) -> Message: ...

    def lead_status(self, lead: Lead, event: LeadEvent) -> Message: ...

    def new_question(self, question: StaffQuestion, asker: User, province: str | None) -> Message: ...

    def question_answer(self, question: StaffQuestion) -> Message: ...

    def reminder(self, deadline: Deadline, days_left: int) -> Message: ...
