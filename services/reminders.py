"""Deadline reminders and the subscriptions behind them.

- ``sync_deadlines`` turns the yearly calendar of the knowledge base into dated deadline rows.
- ``plan`` creates one ``reminders`` row per (subscriber, matching deadline, offset) whose time
  (``offset`` days before the deadline at ``hour`` local time) is still ahead.
- ``queue_due`` moves due rows to the outbox. A row is claimed with a conditional update, so two
  processes never queue it twice, and the outbox's unique (kind, source, user) key backs that up.
  Reminders missed while the bot was down are still sent if the deadline has not passed (only the
  most recent one of a deadline: "còn 3 ngày" makes "còn 14 ngày" pointless) and skipped if it has.

Both are set-based, so a sweep every minute keeps up with a million producers. ``deadline_matches``
is the rule of who a deadline concerns; ``deadline_audience`` reduces it for one deadline to what
SQL selects (``storage.bulk.DeadlineAudience``; a test checks the two agree), and ``plan`` inserts
each deadline's missing rows with one ``INSERT ... SELECT ... WHERE NOT EXISTS``. A deadline
planned once is not planned again for everyone: ``reminder_plans`` keeps how far (up to which
subscription) and under which rules (a fingerprint of the deadline's audience and date, the
offsets, the hour, the channels); the next sweep plans only the subscriptions added since, or
everyone again when the fingerprint changed. Blocked users are planned too and skipped when due (a
producer who writes again is unblocked without the sweep hearing of it). ``queue_due`` skips
superseded and useless rows with two ``UPDATE`` statements, then per deadline renders the message
once (it depends only on the deadline and the days left), claims its due rows with
``UPDATE ... RETURNING`` and queues them with ``INSERT ... SELECT``. With nothing due and nobody new,
a sweep is a handful of indexed queries that read no producer row.
- ``subscribe`` and ``stop``: a producer opts in (everything that concerns them, some categories, or
  one programme) and out with one tap, which also cancels what was planned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from time import monotonic
from zoneinfo import ZoneInfo

from knowledge.deadlines import DeadlineSpec
from knowledge.loader import KnowledgeBase
from services import notifications
from services.messages import Messages
from storage.bulk import DeadlineAudience
from storage.models import Deadline, Subscription, saved_id
from storage.repositories import Repos

# Subscriptions younger than this are planned again at every sweep (cheaply: the newest ones only), so
# one whose transaction committed after a newer one's is never passed over.
SETTLE = timedelta(minutes=10)
# A sweep starts no new "plan everyone" of a deadline after this long (each is one scan of the
# subscriptions, seconds at national size): the rest wait for the next sweeps, so no sweep holds a
# transaction for minutes (a long transaction also slows the outbox: PostgreSQL cannot prune).
FULL_PLANS_SECONDS = 5.0


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


def deadline_audience(deadline: Deadline, kb: KnowledgeBase) -> DeadlineAudience:
    """``deadline_matches`` with the deadline fixed, as SQL selects it: the subscriptions to a
    programme it concerns (its own programme; any, when it names neither programme nor category;
    else every entry of its category) and the category a subscription to categories must list (or
    list none)."""
    if deadline.programme_id:
        programme = kb.by_id.get(deadline.programme_id)
        programmes: tuple[str, ...] | None = (deadline.programme_id,)
        category = str(programme.category) if programme is not None else None
    else:
        category = deadline.category
        programmes = None
        if deadline.category is not None:
            programmes = tuple(sorted(i for i, e in kb.by_id.items() if e.category == deadline.category))
    return DeadlineAudience(province=deadline.province, programmes=programmes, category=category)


@dataclass(frozen=True)
class ReminderService:
    messages: Messages
    settings: ReminderSettings = field(default_factory=ReminderSettings)
    channels: tuple[str, ...] | None = None

    def plan(self, repos: Repos, kb: KnowledgeBase, now: datetime, user_id: int | None = None) -> int:
        """Add the reminder rows still missing for active subscribers on the delivery channels (or for
        one user, whatever their channel); returns how many. The sweep (no ``user_id``) plans a
        deadline for everyone once, then only for subscriptions added since (``reminder_plans``)."""
        deadlines = repos.deadlines.active_from(now.astimezone(self.settings.tz).date())
        if not deadlines:
            return 0
        if user_id is not None:
            return sum(
                repos.reminders.plan(
                    saved_id(d), deadline_audience(d, kb), self._offsets(d, now), now, user_id=user_id
                )
                for d in deadlines
            )
        marks = repos.reminders.plan_marks([saved_id(d) for d in deadlines])
        newest = repos.subscriptions.newest_id()
        settled = repos.subscriptions.settled_id(now - SETTLE)
        added, began, full_plans = 0, monotonic(), 0
        for deadline in deadlines:  # soonest first
            audience = deadline_audience(deadline, kb)
            fingerprint = self._fingerprint(deadline, audience)
            fingerprint_was, through = marks.get(saved_id(deadline), ("", 0))
            after: int | None = through if fingerprint_was == fingerprint else None
            if after is not None and newest <= after:
                continue  # nobody new since it was planned
            if after is None:
                if full_plans and monotonic() - began > FULL_PLANS_SECONDS:
                    continue  # planning everyone: the next sweeps go on, so this one stays short
                full_plans += 1
            added += repos.reminders.plan(
                saved_id(deadline),
                audience,
                self._offsets(deadline, now),
                now,
                channels=self.channels,
                after_subscription=after,
            )
            if settled != through or after is None:
                repos.reminders.mark_planned(saved_id(deadline), fingerprint, max(settled, after or 0), now)
        repos.reminders.bulk_added(added)
        return added

    def _offsets(self, deadline: Deadline, now: datetime) -> list[tuple[int, datetime]]:
        """(offset, due at) of the reminders of a deadline whose time is still ahead."""
        pairs = [(o, self.settings.due_at(deadline.due_on, o)) for o in self.settings.offsets_days]
        return [(o, at) for o, at in pairs if at >= now]

    def _fingerprint(self, deadline: Deadline, audience: DeadlineAudience) -> str:
        """What planning a deadline depends on, besides the subscriptions: when it changes (a new
        province or programme for it, other offsets, another hour, other channels), everyone is
        planned again."""
        settings = self.settings
        basis = (
            deadline.due_on.isoformat(),
            audience,
            sorted(settings.offsets_days),
            settings.hour,
            settings.timezone,
            sorted(self.channels) if self.channels is not None else None,
        )
        return hashlib.sha256(repr(basis).encode()).hexdigest()

    def queue_due(self, repos: Repos, now: datetime) -> int:
        """Move due reminders to the outbox (once each); returns how many were queued."""
        if not repos.reminders.due_deadlines(now):
            return 0
        today = now.astimezone(self.settings.tz).date()
        repos.reminders.skip_superseded(now)
        repos.reminders.skip_useless(now, today)
        queued = 0
        for deadline_id in repos.reminders.due_deadlines(now):
            deadline = repos.deadlines.get(deadline_id)
            if deadline is None:  # gone since (skip_useless skipped its rows otherwise)
                continue
            message = self.messages.reminder(deadline, (deadline.due_on - today).days)
            claimed = repos.reminders.claim_due(deadline_id, now)
            queued += repos.outbox.add_reminders(
                claimed, message.text, message.buttons, notifications.PRIORITY_REMINDER, now
            )
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
