"""Messages to other chats: new leads and questions to staff, status changes and answers to
producers. Each is an outbox row written in the same transaction as the change it announces, so a
crash can neither lose it nor send it twice; the outbox sender delivers it (``bot/outbox.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import select

from handlers import callbacks as cb
from handlers.texts import Texts
from handlers.types import Button, Reply
from knowledge.models import Programme
from storage.models import Lead, LeadEvent, StaffAccount, StaffQuestion, User
from storage.repositories import Repos

# Lower goes first. Below PROACTIVE_FROM: answers to what the producer just did (sent at once, several
# in a row); from it on: messages the producer did not ask for (one per second per chat at most).
PRIORITY_REPLY = -10
PROACTIVE_FROM = 0
PRIORITY_NOTIFY = 0
PRIORITY_REMINDER = 10
PRIORITY_BROADCAST = 20
STAFF_CHANNEL = "telegram"
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


def staff_telegram_ids(repos: Repos, configured: Iterable[int | str]) -> set[str]:
    """Telegram ids of staff: STAFF_TELEGRAM_IDS plus active dashboard accounts that linked one."""
    ids = {str(i) for i in configured}
    accounts = repos.session.exec(
        select(StaffAccount.telegram_id).where(StaffAccount.is_active, StaffAccount.telegram_id.is_not(None))  # type: ignore[union-attr]
    ).all()
    ids.update(str(i) for i in accounts)
    return ids


def _staff_users(repos: Repos, configured: Iterable[int | str]) -> list[User]:
    return [
        repos.users.get_or_create(STAFF_CHANNEL, i) for i in sorted(staff_telegram_ids(repos, configured))
    ]


def lead_staff_buttons(texts: Texts, lead: Lead) -> list[list[Button]]:
    names = texts.labels["lead_status"]
    quick = [
        Button(names[s], cb.build(cb.LEAD_STATUS, f"{lead.id}:{s}"))
        for s in QUICK_STATUSES
        if s != lead.status
    ]
    return [quick, [Button(texts.label("staff", "lead_detail"), cb.build(cb.LEAD_DETAIL, str(lead.id)))]]


def new_lead_to_staff(
    repos: Repos, texts: Texts, lead: Lead, programme: Programme | None, staff_ids: Iterable[int | str]
) -> None:
    text = texts.render(
        "staff_new_lead", lead=lead, programme=programme, statuses=texts.labels["lead_status"]
    )
    buttons = buttons_to_rows(lead_staff_buttons(texts, lead))
    for user in _staff_users(repos, staff_ids):
        repos.outbox.add("lead_new", lead.id, user, text, buttons, PRIORITY_NOTIFY)


def lead_status_to_producer(repos: Repos, texts: Texts, lead: Lead, event: LeadEvent) -> None:
    producer = repos.users.get(lead.user_id)
    if producer is None:
        return
    text = texts.render("lead_status_changed", lead=lead, event=event, statuses=texts.labels["lead_status"])
    buttons = buttons_to_rows([[Button(texts.label("apply", "my_applications"), cb.MY_APPLICATIONS)]])
    repos.outbox.add("lead_status", event.id, producer, text, buttons, PRIORITY_NOTIFY)


def question_to_staff(
    repos: Repos,
    texts: Texts,
    question: StaffQuestion,
    asker: User,
    province: str | None,
    staff_ids: Iterable[int | str],
) -> None:
    text = texts.render("staff_new_question", question=question, asker=asker, province=province)
    buttons = buttons_to_rows(
        [[Button(texts.label("staff", "answer"), cb.build(cb.ANSWER_QUESTION, str(question.id)))]]
    )
    for user in _staff_users(repos, staff_ids):
        repos.outbox.add("question_new", question.id, user, text, buttons, PRIORITY_NOTIFY)


def answer_to_producer(repos: Repos, texts: Texts, question: StaffQuestion) -> None:
    producer = repos.users.get(question.user_id)
    if producer is None:
        return
    text = texts.render("question_answered", question=question)
    buttons = buttons_to_rows(
        [
            [
                Button(texts.label("buttons", "ask_staff"), cb.ASK_STAFF),
                Button(texts.label("buttons", "main_menu"), cb.MAIN_MENU),
            ]
        ]
    )
    # Every answer is its own message: a second answer to the same question is delivered too.
    repos.outbox.add(
        "question_answer", question.id, producer, text, buttons, PRIORITY_NOTIFY, dedupe_key=None
    )
