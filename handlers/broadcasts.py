"""Broadcasts composed by staff: an audience filter, a message template with variables, a preview
with the exact number of recipients per channel, a confirmation that queues one outbox row per
recipient, and a delivery report (sent, blocked, failed, waiting).

Templates are plain text with Jinja2 variables: ``{{ ten }}`` (name), ``{{ tinh }}`` (province),
``{{ co_so }}`` (establishment); ``name``, ``province`` and ``establishment`` work too. What staff
write is shown literally (escaped), so a stray "<" can never break a message.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import update
from sqlmodel import col, select

from handlers import callbacks as cb
from handlers.notify import PRIORITY_BROADCAST, buttons_to_rows
from handlers.texts import Texts
from handlers.types import Button
from knowledge.loader import KnowledgeBase
from storage.models import Broadcast, OutboxMessage, Profile, Subscription, User, utcnow
from storage.repositories import Repos

# The channels broadcasts and reminders go to, unless a deployment names its own (the console chat
# when no bot token is set: see ``bot.services``).
CHANNELS = ("telegram", "zalo")
MAX_TEMPLATE_CHARS = 3000
# Buttons a broadcast may carry: each opens a flow of the bot.
ACTIONS = {"apply": cb.APPLY, "check": cb.CHECK, "reminders": cb.REMINDERS, "browse": cb.BROWSE}


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
    """The staff's message template cannot be used; the message says why (in Vietnamese)."""


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


def recipients(
    repos: Repos,
    kb: KnowledgeBase,
    audience: Audience,
    staff_ids: set[str],
    channels: tuple[str, ...] = CHANNELS,
) -> list[tuple[User, Profile | None]]:
    """Everyone the audience filter selects: chat users not blocked, staff chats left out."""
    s = repos.session
    rows = s.exec(
        select(User, Profile)
        .join(Profile, col(Profile.user_id) == User.id, isouter=True)
        .where(col(User.is_blocked).is_(False), col(User.channel).in_(channels))
        .order_by(col(User.id))
    ).all()
    subscriptions: dict[int, list[Subscription]] = {}
    for sub in s.exec(select(Subscription).where(Subscription.is_active)).all():
        subscriptions.setdefault(sub.user_id, []).append(sub)
    staff = {(u, "telegram") for u in staff_ids}
    chosen = []
    for user, profile in rows:
        if (user.external_id, user.channel) in staff:
            continue
        if audience.province and (profile is None or profile.province != audience.province):
            continue
        if audience.legal_form and (profile is None or profile.legal_form != audience.legal_form):
            continue
        subs = subscriptions.get(user.id, [])
        if audience.subscribers_only and not subs:
            continue
        if audience.category and not _interested(audience.category, profile, subs, kb):
            continue
        chosen.append((user, profile))
    return chosen


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


def count_by_channel(
    chosen: list[tuple[User, Profile | None]], channels: tuple[str, ...] = CHANNELS
) -> dict[str, int]:
    counts = Counter(user.channel for user, _ in chosen)
    return {channel: counts.get(channel, 0) for channel in channels}


def broadcast_buttons(texts: Texts, action: str | None, label: str | None) -> list[dict[str, Any]]:
    if not action:
        return []
    data = ACTIONS.get(action) or (cb.build(cb.PROGRAMME, action[2:]) if action.startswith("p:") else None)
    if data is None:
        raise TemplateProblem(f"unknown button action {action}")
    text = (label or "").strip()[:40] or texts.label(
        "broadcast_buttons", action if action in ACTIONS else "programme"
    )
    return buttons_to_rows([[Button(text, data)]])


def create(
    repos: Repos, template: str, audience: Audience, buttons: list[dict[str, Any]], created_by: str
) -> Broadcast:
    check_template(template)
    broadcast = Broadcast(
        template=template, audience=audience.to_dict(), buttons=buttons, created_by=created_by[:128]
    )
    repos.session.add(broadcast)
    repos.session.flush()
    return broadcast


def confirm(
    repos: Repos,
    kb: KnowledgeBase,
    broadcast: Broadcast,
    staff_ids: set[str],
    channels: tuple[str, ...] = CHANNELS,
) -> int:
    """Queue one outbox row per recipient, once: the draft is taken with a conditional update, so a
    second confirmation (a double click, two staff at once) queues nobody and changes nothing."""
    now = utcnow()
    taken = repos.session.exec(  # type: ignore[call-overload]
        update(Broadcast)
        .where(col(Broadcast.id) == broadcast.id, col(Broadcast.status) == "draft")
        .values(status="sending", confirmed_at=now)
    )
    if (taken.rowcount or 0) != 1:
        repos.session.refresh(broadcast)
        return 0
    chosen = recipients(repos, kb, Audience.from_dict(broadcast.audience), staff_ids, channels)
    rows = [
        OutboxMessage(
            kind="broadcast",
            source_id=broadcast.id,
            dedupe_key=f"broadcast:{broadcast.id}:{user.id}",
            user_id=user.id,
            channel=user.channel,
            chat_id=user.external_id,
            text=render(broadcast.template, user, profile),
            buttons=list(broadcast.buttons),
            priority=PRIORITY_BROADCAST,
            next_attempt_at=now,
        )
        for user, profile in chosen
    ]
    repos.session.add_all(rows)
    repos.session.flush()
    return len(rows)


def cancel(repos: Repos, broadcast: Broadcast) -> None:
    if broadcast.status == "draft":
        broadcast.status = "cancelled"
        repos.session.add(broadcast)


def report(repos: Repos, broadcast: Broadcast) -> dict[str, int]:
    """Delivery counts (sent; unknown: sent again after a crash, maybe twice; blocked; failed;
    waiting); marks the broadcast done once nothing is waiting any more."""
    assert broadcast.id is not None
    result = repos.outbox.counts("broadcast", broadcast.id)
    if broadcast.status == "sending" and result["waiting"] == 0:
        broadcast.status = "done"
        broadcast.finished_at = utcnow()
        repos.session.add(broadcast)
    return result
