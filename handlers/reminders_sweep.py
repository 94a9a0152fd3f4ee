"""Deadline reminders as database rows, planned and queued by a periodic sweep.

- ``sync_deadlines`` turns the yearly calendar of the knowledge base into dated deadline rows.
- ``plan_reminders`` creates one ``reminders`` row per (subscriber, matching deadline, offset) whose
  time (``offset`` days before the deadline at ``hour`` local time) is still ahead.
- ``queue_due_reminders`` moves due rows to the outbox. A row is claimed with a conditional update,
  so two processes never queue it twice, and the outbox's unique (kind, source, user) key backs that
  up. Reminders missed while the bot was down are still sent if the deadline has not passed (only
  the most recent one of a deadline: "còn 3 ngày" makes "còn 14 ngày" pointless) and skipped if it
  has.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import col, select

from handlers import callbacks as cb
from handlers.notify import PRIORITY_REMINDER, buttons_to_rows
from handlers.texts import Texts
from handlers.types import Button
from knowledge.deadlines import DeadlineSpec
from knowledge.loader import KnowledgeBase
from storage.models import Deadline, Profile, Reminder, Subscription, User
from storage.repositories import Repos


@dataclass(frozen=True)
class ReminderSettings:
    offsets_days: tuple[int, ...] = (14, 3, 1)
    hour: int = 8
    timezone: str = "Asia/Ho_Chi_Minh"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def due_at(self, due_on: date, offset: int) -> datetime:
        local = datetime.combine(due_on - timedelta(days=offset), time(self.hour), tzinfo=self.tz)
        return local.astimezone(ZoneInfo("UTC"))


def sync_deadlines(repos: Repos, specs: Iterable[DeadlineSpec], today: date) -> int:
    """Create or refresh the dated rows of the knowledge-base calendar; returns how many. A row staff
    withdrew stays withdrawn: the calendar refreshes its words, never its ``is_active``."""
    count = 0
    for spec in specs:
        for due_on in spec.dates(today):
            repos.deadlines.upsert_by_key(
                f"{spec.key}:{due_on.isoformat()}",
                due_on=due_on,
                action=spec.action,
                place=spec.place,
                note=spec.note,
                basis=spec.basis,
                province=spec.province,
                category=str(spec.category) if spec.category else None,
                programme_id=spec.programme,
                created_by="knowledge",
            )
            count += 1
    return count


def deadline_matches(
    deadline: Deadline, subscription: Subscription, province: str | None, kb: KnowledgeBase
) -> bool:
    """Does this deadline concern this subscriber (their province, their categories or programme)?"""
    if deadline.province is not None and deadline.province != (subscription.province or province):
        return False
    if subscription.programme_id:
        if deadline.programme_id:
            return deadline.programme_id == subscription.programme_id
        programme = kb.by_id.get(subscription.programme_id)
        return deadline.category is None or (
            programme is not None and deadline.category == programme.category
        )
    if deadline.programme_id:
        programme = kb.by_id.get(deadline.programme_id)
        category = str(programme.category) if programme is not None else None
    else:
        category = deadline.category
    return category is None or not subscription.categories or category in subscription.categories


def plan_reminders(
    repos: Repos,
    kb: KnowledgeBase,
    settings: ReminderSettings,
    now: datetime,
    user_id: int | None = None,
    channels: tuple[str, ...] | None = None,
) -> int:
    """Add the reminder rows still missing for active subscribers (or one user) on ``channels``
    (every channel when None); returns how many."""
    today = now.astimezone(settings.tz).date()
    s = repos.session
    deadlines = list(s.exec(select(Deadline).where(Deadline.is_active, Deadline.due_on >= today)).all())
    if not deadlines:
        return 0
    rows = s.exec(
        select(Subscription, User, Profile)
        .join(User, col(User.id) == Subscription.user_id)
        .join(Profile, col(Profile.user_id) == Subscription.user_id, isouter=True)
        .where(Subscription.is_active, col(User.is_blocked).is_(False))
        .where(True if user_id is None else Subscription.user_id == user_id)
        .where(True if channels is None else col(User.channel).in_(channels))
    ).all()
    existing = {
        (r.user_id, r.deadline_id, r.offset_days)
        for r in s.exec(
            select(Reminder).where(col(Reminder.deadline_id).in_([d.id for d in deadlines]))
        ).all()
    }
    added = 0
    for subscription, user, profile in rows:
        province = profile.province if profile is not None else None
        for deadline in deadlines:
            if not deadline_matches(deadline, subscription, province, kb):
                continue
            for offset in settings.offsets_days:
                key = (user.id, deadline.id, offset)
                due_at = settings.due_at(deadline.due_on, offset)
                if key in existing or due_at < now:
                    continue
                s.add(Reminder(user_id=user.id, deadline_id=deadline.id, offset_days=offset, due_at=due_at))
                existing.add(key)
                added += 1
    s.flush()
    return added


def upcoming_for(
    repos: Repos, kb: KnowledgeBase, user_id: int, province: str | None, today: date
) -> list[Deadline]:
    """The active deadlines ahead that concern this user's active subscriptions, soonest first."""
    s = repos.session
    subscriptions = list(
        s.exec(select(Subscription).where(Subscription.user_id == user_id, Subscription.is_active))
    )
    deadlines = s.exec(
        select(Deadline).where(Deadline.is_active, Deadline.due_on >= today).order_by(col(Deadline.due_on))
    ).all()
    return [d for d in deadlines if any(deadline_matches(d, sub, province, kb) for sub in subscriptions)]


def _claim(repos: Repos, reminder_id: int, status: str, now: datetime) -> bool:
    result = repos.session.exec(  # type: ignore[call-overload]
        update(Reminder)
        .where(col(Reminder.id) == reminder_id, col(Reminder.status) == "pending")
        .values(status=status, processed_at=now)
    )
    return (result.rowcount or 0) == 1


def queue_due_reminders(repos: Repos, texts: Texts, settings: ReminderSettings, now: datetime) -> int:
    """Move due reminders to the outbox (once each); returns how many were queued."""
    today = now.astimezone(settings.tz).date()
    s = repos.session
    due = list(
        s.exec(
            select(Reminder)
            .where(Reminder.status == "pending", Reminder.due_at <= now)
            .order_by(col(Reminder.user_id), col(Reminder.deadline_id), col(Reminder.offset_days))
        ).all()
    )
    newest: dict[tuple[int, int], Reminder] = {}
    for reminder in due:  # ordered by offset: the first of each (user, deadline) is the most recent one
        key = (reminder.user_id, reminder.deadline_id)
        if key in newest:
            _claim(repos, reminder.id, "skipped", now)  # an older one, superseded
        else:
            newest[key] = reminder
    queued = 0
    for reminder in newest.values():
        deadline = s.get(Deadline, reminder.deadline_id)
        user = s.get(User, reminder.user_id)
        subscribed = s.exec(
            select(Subscription.id).where(Subscription.user_id == reminder.user_id, Subscription.is_active)
        ).first()
        useful = deadline is not None and deadline.is_active and deadline.due_on >= today
        if not useful or user is None or user.is_blocked or subscribed is None:
            _claim(repos, reminder.id, "skipped", now)
            continue
        if not _claim(repos, reminder.id, "queued", now):
            continue  # another process took it
        days_left = (deadline.due_on - today).days
        text = texts.render("reminder", deadline=deadline, days_left=days_left)
        buttons = buttons_to_rows(
            [
                [Button(texts.label("menu", "apply"), cb.APPLY)],
                [Button(texts.label("reminders", "stop"), cb.REMINDERS_OFF)],
            ]
        )
        if repos.outbox.add("reminder", reminder.id, user, text, buttons, PRIORITY_REMINDER) is not None:
            queued += 1
    s.flush()
    return queued
