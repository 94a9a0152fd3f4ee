"""What the bot says outside a conversation, and how replies and buttons are stored in the outbox.

``ChatMessages`` words the messages the services send on their own (new leads and questions to
staff, status changes, answers and reminders to producers) from the staff-editable texts; the
services decide who gets them and queue them in the same transaction as the change they announce.
``queue_replies`` stores the dialogue's answers to one update as outbox rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from handlers import callbacks as cb
from handlers.texts import Texts
from handlers.types import Button, Reply
from knowledge.models import Programme
from services.messages import Message
from services.notifications import PRIORITY_REPLY
from storage.models import Deadline, Lead, LeadEvent, StaffQuestion, User
from storage.repositories import Repos

# Status buttons under a new lead in the staff chat.
QUICK_STATUSES = ("contacted", "eligible", "not_eligible")


def buttons_to_rows(rows: Iterable[Iterable[Button]]) -> list[dict[str, Any]]:
    return [{"row": r, "label": b.label, "data": b.data} for r, row in enumerate(rows) for b in row]


def rows_to_buttons(stored: list[dict[str, Any]]) -> tuple[tuple[Button, ...], ...]:
    rows: dict[int, list[Button]] = {}
    for item in stored:
        rows.setdefault(int(item.get("row", 0)), []).append(Button(item["label"], item["data"]))
    return tuple(tuple(rows[k]) for k in sorted(rows))


def as_reply(text: str, stored_buttons: list[dict[str, Any]], ask_contact: bool = False) -> Reply:
    return Reply(text=text, buttons=rows_to_buttons(stored_buttons), ask_contact=ask_contact)


def queue_replies(repos: Repos, user: User, replies: list[Reply], inbox_id: int, suffix: str = "") -> None:
    """The answers to one inbox update, as outbox rows sent first and in order."""
    for i, reply in enumerate(r for r in replies if r.text.strip()):
        repos.outbox.add(
            "reply",
            inbox_id,
            user,
            reply.text,
            buttons_to_rows(reply.buttons),
            PRIORITY_REPLY,
            dedupe_key=f"reply:{inbox_id}:{suffix or i}",
            ask_contact=reply.ask_contact,
        )


def lead_staff_buttons(texts: Texts, lead: Lead) -> list[list[Button]]:
    names = texts.labels["lead_status"]
    quick = [
        Button(names[s], cb.build(cb.LEAD_STATUS, f"{lead.id}:{s}"))
        for s in QUICK_STATUSES
        if s != lead.status
    ]
    return [quick, [Button(texts.label("staff", "lead_detail"), cb.build(cb.LEAD_DETAIL, str(lead.id)))]]


class ChatMessages:
    """The ``services.messages.Messages`` port, worded from the texts."""

    def __init__(self, texts: Texts):
        self.texts = texts

    def new_lead(self, lead: Lead, programme: Programme | None) -> Message:
        texts = self.texts
        text = texts.render(
            "staff_new_lead", lead=lead, programme=programme, statuses=texts.labels["lead_status"]
        )
        return Message(text, buttons_to_rows(lead_staff_buttons(texts, lead)))

    def lead_status(self, lead: Lead, event: LeadEvent) -> Message:
        texts = self.texts
        text = texts.render(
            "lead_status_changed", lead=lead, event=event, statuses=texts.labels["lead_status"]
        )
        buttons = [[Button(texts.label("apply", "my_applications"), cb.MY_APPLICATIONS)]]
        return Message(text, buttons_to_rows(buttons))

    def new_question(self, question: StaffQuestion, asker: User, province: str | None) -> Message:
        texts = self.texts
        text = texts.render("staff_new_question", question=question, asker=asker, province=province)
        buttons = [[Button(texts.label("staff", "answer"), cb.build(cb.ANSWER_QUESTION, str(question.id)))]]
        return Message(text, buttons_to_rows(buttons))

    def question_answer(self, question: StaffQuestion) -> Message:
        texts = self.texts
        buttons = [
            [
                Button(texts.label("buttons", "ask_staff"), cb.ASK_STAFF),
                Button(texts.label("buttons", "main_menu"), cb.MAIN_MENU),
            ]
        ]
        return Message(texts.render("question_answered", question=question), buttons_to_rows(buttons))

    def reminder(self, deadline: Deadline, days_left: int) -> Message:
        texts = self.texts
        buttons = [
            [Button(texts.label("menu", "apply"), cb.APPLY)],
            [Button(texts.label("reminders", "stop"), cb.REMINDERS_OFF)],
        ]
        return Message(
            texts.render("reminder", deadline=deadline, days_left=days_left), buttons_to_rows(buttons)
        )
