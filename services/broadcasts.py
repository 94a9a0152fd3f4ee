"""Broadcasts composed by staff: an audience filter, a message template with variables, the exact
recipients per channel, a confirmation that queues one outbox row per recipient (once, however often
it is confirmed), a delivery report, and the sweep that marks a delivered broadcast done.

Templates are plain text with Jinja2 variables: ``{{ ten }}`` (name), ``{{ tinh }}`` (province),
``{{ co_so }}`` (establishment); ``name``, ``province`` and ``establishment`` work too. What staff
write is shown literally (escaped), so a stray "<" can never break a message.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from knowledge.loader import KnowledgeBase
from services import audit
from services.notifications import PRIORITY_BROADCAST
from services.staff_directory import STAFF_CHANNEL, StaffDirectory
from storage.models import Broadcast, Profile, Subscription, User, utcnow
from storage.repositories import Repos

# The channels broadcasts and reminders go to, unless a deployment names its own (the console chat
# when no bot token is set: see ``bot.services``).
CHANNELS = ("telegram", "zalo")
MAX_TEMPLATE_CHARS = 3000
MAX_ACTOR = 128
Recipient = tuple[User, Profile | None]


@dataclass(frozen=True)
class Audience:
    province: str | None = None
    category: str | None = None
    legal_form: str | None = None
    subscribers_only: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Audience:
        return cls(
            **{k: data.get(k) for k in ("province", "category", "legal_form")},
            subscribers_only=bool(data.get("subscribers_only")),
        )


class TemplateProblem(ValueError):
    """The staff's message template cannot be used; the message says why."""


@dataclass(frozen=True)
class Report:
    """Delivery counts (sent; unknown: sent again after a crash, maybe twice; blocked; failed;
    waiting) and the status to show (``done`` once nothing is waiting, even before the sweep)."""

    counts: dict[str, int]
    status: str


_ENV = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)


def _variables(user: User, profile: Profile | None) -> dict[str, str]:
    name = user.display_name or ""
    province = (profile.province if profile else None) or ""
    establishment = (profile.establishment_name if profile else None) or ""
    return {
        "ten": name,
        "name": name,
        "tinh": province,
        "province": province,
        "co_so": establishment,
        "establishment": establishment,
    }


def render(template: str, user: User, profile: Profile | None) -> str:
    """The message for one recipient (HTML-safe: the template's own text is escaped too)."""
    try:
        return _ENV.from_string(html.escape(template, quote=False)).render(_variables(user, profile)).strip()
    except TemplateError as exc:
        raise TemplateProblem(str(exc)) from exc


def check_template(template: str) -> None:
    if not template.strip():
        raise TemplateProblem("empty")
    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem("too long")
    render(
        template,
        User(channel="telegram", external_id="0", display_name="Nguyễn Văn A"),
        Profile(user_id=0, province="Nghệ An", establishment_name="Cơ sở A"),
    )


def count_by_channel(chosen: list[Recipient], channels: tuple[str, ...] = CHANNELS) -> dict[str, int]:
    counts = Counter(user.channel for user, _ in chosen)
    return {channel: counts.get(channel, 0) for channel in channels}


def _interested(category: str, profile: Profile | None, subs: list[Subscription], kb: KnowledgeBase) -> bool:
    if profile is not None and category in (profile.interests or []):
        return True
    for sub in subs:
        if sub.programme_id:
            entry = kb.by_id.get(sub.programme_id)
            if entry is not None and str(entry.category) == category:
                return True
        elif not sub.categories or category in sub.categories:
            return True
    return False


@dataclass(frozen=True)
class BroadcastService:
    staff: StaffDirectory
    channels: tuple[str, ...] = CHANNELS

    def recipients(self, repos: Repos, kb: KnowledgeBase, audience: Audience) -> list[Recipient]:
        """Everyone the audience filter selects: chat users not blocked, staff chats left out."""
        staff = {(i, STAFF_CHANNEL) for i in self.staff.telegram_ids(repos)}
        subscriptions = repos.subscriptions.active_by_user()
        chosen = []
        for user, profile in repos.broadcasts.audience(self.channels):
            if (user.external_id, user.channel) in staff:
                continue
            if audience.province and (profile is None or profile.province != audience.province):
                continue
            if audience.legal_form and (profile is None or profile.legal_form != audience.legal_form):
                continue
            subs = subscriptions.get(user.id or 0, [])
            if audience.subscribers_only and not subs:
                continue
            if audience.category and not _interested(audience.category, profile, subs, kb):
                continue
            chosen.append((user, profile))
        return chosen

    def counts(self, chosen: list[Recipient]) -> dict[str, int]:
        return count_by_channel(chosen, self.channels)

    @staticmethod
    def create(
        repos: Repos, template: str, audience: Audience, buttons: list[dict[str, Any]], created_by: str
    ) -> Broadcast:
        """A draft (nothing is sent before it is confirmed); TemplateProblem when it cannot be used."""
        check_template(template)
        broadcast = Broadcast(
            template=template, audience=audience.to_dict(), buttons=buttons, created_by=created_by[:MAX_ACTOR]
        )
        repos.broadcasts.add(broadcast)
        details = f"{audience.to_dict()} {template}"
        audit.record(repos, created_by, audit.BROADCAST_CREATE, "broadcast", broadcast.id, details)
        return broadcast

    def confirm(self, repos: Repos, kb: KnowledgeBase, broadcast: Broadcast, actor: str = "") -> int:
        """Queue one outbox row per recipient, once: the draft is taken with a conditional update, so a
        second confirmation (a double click, two staff at once) queues nobody and changes nothing, and
        neither does one whose audience matches nobody (it stays a draft). ``actor``: who confirmed it,
        for the audit log (by default whoever composed it)."""
        now = utcnow()
        chosen = self.recipients(repos, kb, Audience.from_dict(broadcast.audience))
        if not chosen:  # nobody to send to: the draft stays a draft, nothing is queued
            return 0
        if not repos.broadcasts.take_draft(broadcast, now):
            return 0
        assert broadcast.id is not None
        messages = [(user, render(broadcast.template, user, profile)) for user, profile in chosen]
        queued = repos.outbox.add_many(
            "broadcast", broadcast.id, messages, broadcast.buttons, PRIORITY_BROADCAST, now
        )
        who = actor or broadcast.created_by
        audit.record(repos, who, audit.BROADCAST_CONFIRM, "broadcast", broadcast.id, f"{queued}")
        return queued

    @staticmethod
    def cancel(repos: Repos, broadcast: Broadcast, actor: str = "") -> bool:
        if broadcast.status != "draft":
            return False
        broadcast.status = "cancelled"
        repos.broadcasts.save(broadcast)
        audit.record(repos, actor or broadcast.created_by, audit.BROADCAST_CANCEL, "broadcast", broadcast.id)
        return True

    @staticmethod
    def report(repos: Repos, broadcast: Broadcast) -> Report:
        """Read only: what was delivered so far."""
        assert broadcast.id is not None
        counts = repos.outbox.counts("broadcast", broadcast.id)
        done = broadcast.status == "sending" and counts["waiting"] == 0
        return Report(counts, "done" if done else broadcast.status)

    @staticmethod
    def finish_delivered(repos: Repos, now: datetime) -> int:
        """Mark done every sending broadcast with nothing left waiting (the periodic sweep)."""
        finished = 0
        for broadcast in repos.broadcasts.sending():
            assert broadcast.id is not None
            if repos.outbox.counts("broadcast", broadcast.id)["waiting"] == 0:
                broadcast.status = "done"
                broadcast.finished_at = now
                repos.broadcasts.save(broadcast)
                finished += 1
        return finished
