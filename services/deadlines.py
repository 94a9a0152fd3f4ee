"""Registration deadlines staff add by hand (the dashboard and ``deadline add``): what makes one
valid, adding it, and withdrawing it (its pending reminders are then skipped by the sweep)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from knowledge.loader import KnowledgeBase
from knowledge.models import Category
from services import audit
from storage.models import Deadline
from storage.repositories import Repos

MIN_ACTION_CHARS = 10
MAX_ACTION = 2000
MAX_PLACE = 500
MAX_NOTE = 1000
MAX_ACTOR = 128


class DeadlineProblem(ValueError):
    """Why a deadline cannot be added: ``code`` is one of past, action, province, category, programme."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class NewDeadline:
    due_on: date
    action: str
    place: str = ""
    note: str = ""
    province: str | None = None
    category: str | None = None
    programme_id: str | None = None


def problem_with(deadline: NewDeadline, kb: KnowledgeBase, today: date) -> str | None:
    """The first thing wrong with a new deadline, or None."""
    if deadline.due_on < today:
        return "past"
    if len(deadline.action.strip()) < MIN_ACTION_CHARS:
        return "action"
    if deadline.province and deadline.province not in kb.provinces.names():
        return "province"
    if deadline.category and deadline.category not in {str(c) for c in Category}:
        return "category"
    if deadline.programme_id and deadline.programme_id not in kb.by_id:
        return "programme"
    return None


def add(repos: Repos, kb: KnowledgeBase, new: NewDeadline, today: date, created_by: str) -> Deadline:
    """Store a valid deadline (the sweep plans its reminders); DeadlineProblem when it is not."""
    problem = problem_with(new, kb, today)
    if problem is not None:
        raise DeadlineProblem(problem)
    deadline = repos.deadlines.add(
        Deadline(
            due_on=new.due_on,
            action=new.action.strip()[:MAX_ACTION],
            place=new.place.strip()[:MAX_PLACE],
            note=new.note.strip()[:MAX_NOTE],
            province=new.province or None,
            category=new.category or None,
            programme_id=new.programme_id or None,
            created_by=created_by[:MAX_ACTOR],
        )
    )
    details = f"{deadline.due_on:%d/%m/%Y} {deadline.province or ''} {deadline.action}"
    audit.record(repos, created_by, audit.DEADLINE_ADD, "deadline", deadline.id, details)
    return deadline


def withdraw(repos: Repos, deadline: Deadline, by: str, now: datetime) -> bool:
    """Withdraw an active deadline; False when it was withdrawn already."""
    if not deadline.is_active:
        return False
    repos.deadlines.withdraw(deadline, by, now)
    audit.record(repos, by, audit.DEADLINE_WITHDRAW, "deadline", deadline.id, deadline.action)
    return True
