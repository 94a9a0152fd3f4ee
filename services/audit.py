"""The staff audit log: every staff action (a lead's status or note, an answer, a deadline added or
withdrawn, a broadcast created, confirmed or cancelled, a login or logout) is recorded by the service
that does it, in the same unit of work, so the log and the change are committed together or not at all."""

from __future__ import annotations

from storage.models import StaffAction
from storage.repositories import Repos

MAX_ACTOR = 128
MAX_DETAILS = 500

LEAD_STATUS = "lead_status"
LEAD_NOTE = "lead_note"
QUESTION_ANSWER = "question_answer"
DEADLINE_ADD = "deadline_add"
DEADLINE_WITHDRAW = "deadline_withdraw"
BROADCAST_CREATE = "broadcast_create"
BROADCAST_CONFIRM = "broadcast_confirm"
BROADCAST_CANCEL = "broadcast_cancel"
LEARNING_RESOLVE = "learning_resolve"
LOGIN = "login"
KNOWLEDGE_PUBLISH = "knowledge_publish"
LOGOUT = "logout"


def record(
    repos: Repos,
    actor: str,
    action: str,
    object_type: str | None = None,
    object_id: int | None = None,
    details: str = "",
) -> None:
    repos.staff_actions.add(
        StaffAction(
            actor=actor[:MAX_ACTOR],
            action=action,
            object_type=object_type,
            object_id=object_id,
            details=details.strip()[:MAX_DETAILS],
        )
    )


def login(repos: Repos, actor: str) -> None:
    record(repos, actor, LOGIN)


def logout(repos: Repos, actor: str) -> None:
    record(repos, actor, LOGOUT)
