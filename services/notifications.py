"""Messages to other chats, queued in the outbox in the same unit of work as the change they announce
(so a crash can neither lose one nor send it twice), with the priorities the outbox sends them by."""

from __future__ import annotations

from services.messages import Message
from services.staff_directory import StaffDirectory
from storage.repositories import Repos

# Lower goes first. Below PROACTIVE_FROM: answers to what the producer just did (sent at once, several
# in a row); from it on: messages the producer did not ask for (one per second per chat at most).
PRIORITY_REPLY = -10
PROACTIVE_FROM = 0
PRIORITY_NOTIFY = 0
PRIORITY_REMINDER = 10
PRIORITY_BROADCAST = 20


def to_staff(
    repos: Repos, staff: StaffDirectory, kind: str, source_id: int, message: Message, province: str | None
) -> int:
    """The message to the administrators' chats and those of ``province``'s staff (a lead's or a
    question's province), once each; returns how many were queued."""
    queued = 0
    for user in staff.chats(repos, province):
        if repos.outbox.add(kind, source_id, user, message.text, message.buttons, PRIORITY_NOTIFY):
            queued += 1
    return queued


def to_user(
    repos: Repos,
    user_id: int,
    kind: str,
    source_id: int,
    message: Message,
    priority: int = PRIORITY_NOTIFY,
    *,
    repeatable: bool = False,
) -> bool:
    """The message to one chat user; False when the user is gone or it was queued already. A
    ``repeatable`` message (a second answer to one question) is queued every time."""
    user = repos.users.get(user_id)
    if user is None:
        return False
    queued = repos.outbox.add(
        kind,
        source_id,
        user,
        message.text,
        message.buttons,
        priority,
        dedupe_key=None if repeatable else "",
    )
    return queued is not None
