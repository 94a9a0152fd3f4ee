"""Deadline reminders and the subscriptions behind them.

- ``sync_deadlines`` turns the yearly calendar of the knowledge base into dated deadline rows.
- ``plan`` creates one ``reminders`` row per (subscriber, matching deadline, offset) whose time
  (``offset`` days before the deadline at ``hour`` local time) is still ahead.
- ``queue_due`` moves due rows to the outbox. A row is claimed with a conditional update, so two
  processes never queue it twice, and the outbox's unique (kind, source, user) key backs that up.
  Reminders missed while the bot was down are still sent if the deadline has not passed (only the
  most recent one of a deadline: "còn 3 ngày" makes "còn 14 ngày" pointless) and skipped if it has.
- ``subscribe`` and ``stop``: a producer opts in (everything that concerns them, some categories, or
  one programme) and out with one tap, which also cancels what was planned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from knowledge.deadlines import DeadlineSpec
from knowledge.loader import KnowledgeBase
from services import notifications
from services.messages import Messages
from storage.models import Deadline, Reminder, Subscription
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


@dataclass(frozen=True)
class ReminderService:
    messages: Messages
    settings: ReminderSettings = field(default_factory=ReminderSettings)
    channels: tuple[str, ...] | None = None

    def plan(self, repos: Repos, kb: KnowledgeBase, now: datetime, user_id: int | None = None) -> int:
        """Add the reminder rows still missing for active subscribers on the delivery channels (or for
        one user, whatever their channel); returns how many."""
        channels = self.channels if user_id is None else None
        deadlines = repos.deadlines.active_from(now.astimezone(self.settings.tz).date())
        if not deadlines:
            return 0
        existing = repos.reminders.planned([d.id for d in deadlines if d.id is not None])
        added = 0
        for subscription, user, profile in repos.subscriptions.subscribers(user_id, channels):
            province = profile.province if profile is not None else None
            for deadline in deadlines:
                if not deadline_matches(deadline, subscription, province, kb):
                    continue
                for offset in self.settings.offsets_days:
                    assert user.id is not None and deadline.id is not None
                    key = (user.id, deadline.id, offset)
                    due_at = self.settings.due_at(deadline.due_on, offset)
                    if key in existing or due_at < now:
                        continue
                    repos.reminders.add(user.id, deadline.id, offset, due_at)
                    existing.add(key)
                    added += 1
        repos.session.flush()
        return added

    def queue_due(self, repos: Repos, now: datetime) -> int:
        """Move due reminders to the outbox (once each); returns how many were queued."""
        today = now.astimezone(self.settings.tz).date()
        newest: dict[tuple[int, int], Reminder] = {}
        for reminder in repos.reminders.due(now):  # by offset: the first of each is the most recent one
            assert reminder.id is not None
            key = (reminder.user_id, reminder.deadline_id)
            if key in newest:
                repos.reminders.claim(reminder.id, "skipped", now)  # an older one, superseded
            else:
                newest[key] = reminder
        queued = 0
        for reminder in newest.values():
            assert reminder.id is not None
            deadline = repos.deadlines.get(reminder.deadline_id)
            user = repos.users.get(reminder.user_id)
            useful = deadline is not None and deadline.is_active and deadline.due_on >= today
            subscribed = repos.subscriptions.has_active(reminder.user_id)
            if deadline is None or not useful or user is None or user.is_blocked or not subscribed:
                repos.reminders.claim(reminder.id, "skipped", now)
                continue
            if not repos.reminders.claim(reminder.id, "queued", now):
                continue  # another process took it
            message = self.messages.reminder(deadline, (deadline.due_on - today).days)
            if notifications.to_user(
                repos, user.id or 0, "reminder", reminder.id, message, notifications.PRIORITY_REMINDER
            ):
                queued += 1
        repos.session.flush()
        return queued

    @staticmethod
    def upcoming_for(
        repos: Repos, kb: KnowledgeBase, user_id: int, province: str | None, today: date
    ) -> list[Deadline]:
        """The active deadlines ahead that concern this user's active subscriptions, soonest first."""
        subscriptions = repos.subscriptions.active(user_id)
        return [
            d
            for d in repos.deadlines.active_from(today)
            if any(deadline_matches(d, sub, province, kb) for sub in subscriptions)
        ]

    @staticmethod
    def active(repos: Repos, user_id: int) -> list[Subscription]:
        return repos.subscriptions.active(user_id)

    def subscribe(
        self,
        repos: Repos,
        kb: KnowledgeBase,
        user_id: int,
        province: str | None,
        categories: list[str],
        programme_id: str | None,
        now: datetime,
    ) -> Subscription | None:
        """Follow some categories (one such subscription at a time: a new choice replaces the old
        one) or one programme (None when already followed), and plan its reminders at once."""
        current = repos.subscriptions.active(user_id)
        if programme_id is None:
            for old in current:
                if not old.programme_id:
                    repos.subscriptions.end(old, now)
        elif any(s.programme_id == programme_id for s in current):
            return None
        subscription = repos.subscriptions.add(
            Subscription(user_id=user_id, programme_id=programme_id, categories=categories, province=province)
        )
        self.plan(repos, kb, now, user_id=user_id)
        return subscription

    @staticmethod
    def stop(repos: Repos, user_id: int, now: datetime) -> bool:
        """End every subscription and cancel the pending reminders; True when there was one."""
        had = repos.subscriptions.has_active(user_id)
        repos.subscriptions.end_all(user_id, now)
        repos.reminders.skip_pending(user_id, now)
        return had
