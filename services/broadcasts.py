"""Broadcasts composed by staff: an audience filter, a message template with variables, the exact
recipients per channel, a confirmation that queues one outbox row per recipient (once, however often
it is confirmed), a delivery report, and the sweep that marks a delivered broadcast done.

Templates are plain text with Jinja2 variables: ``{{ ten }}`` (name), ``{{ tinh }}`` (province),
``{{ co_so }}`` (establishment); ``name``, ``province`` and ``establishment`` work too. What staff
write is shown literally (escaped), so a stray "<" can never break a message.

At national size (a million producers) nothing here holds a Python object per recipient: the
audience filter is one SQL ``WHERE`` (``storage.bulk.BroadcastAudience``), the counts per channel
one ``GROUP BY``, the preview renders the first recipient (``LIMIT 1``), and confirming queues every
row with one ``INSERT ... SELECT``. The text is rendered in SQL, not at send time: the template is
compiled once (``compile_template``) into literal pieces and variable references, concatenated in
SQL with each variable escaped by ``replace()`` exactly as Jinja2's autoescape does, then trimmed as
``str.strip`` trims. So every outbox row keeps its final text, as every other message does: the
sender, the delivery report, the dashboard's "as it was sent" sample and a resend after a crash read
one row and need no template or profile (a producer who edits their profile after the confirmation
still gets the text staff previewed), and the dedupe key (kind, source, user) and the unique index
keep "sends nothing twice". A template that uses more than plain variables (a filter, an ``if``) is
rendered in Python instead, by the same compiled template, a thousand recipients at a time (bounded
memory, slower); ``tests/services/test_broadcast_sql.py`` checks that both give the same text.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment

from knowledge.loader import KnowledgeBase
from services import audit
from services.notifications import PRIORITY_BROADCAST
from services.staff_directory import STAFF_CHANNEL, StaffDirectory
from storage.bulk import BroadcastAudience, MessagePart
from storage.models import Broadcast, Profile, User, saved_id, utcnow
from storage.repositories import Repos

# The channels broadcasts and reminders go to, unless a deployment names its own (the console chat
# when no bot token is set: see ``bot.services``).
CHANNELS = ("telegram", "zalo")
MAX_TEMPLATE_CHARS = 3000
MAX_ACTOR = 128
# Recipients rendered in Python per batch, for templates SQL cannot render.
RENDER_BATCH = 1000
Recipient = tuple[User, Profile | None]
# The template's variables and the recipient field (``storage.bulk.FIELDS``) each one names.
VARIABLES = {
    "ten": "name",
    "name": "name",
    "tinh": "province",
    "province": "province",
    "co_so": "establishment",
    "establishment": "establishment",
}


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
class Preview:
    """What staff see before confirming: the recipients per channel and the text as the first of
    them will read it (None when nobody matches)."""

    counts: dict[str, int]
    sample: str | None
    sample_for: User | None


@dataclass(frozen=True)
class Report:
    """Delivery counts (sent; unknown: sent again after a crash, maybe twice; blocked; failed;
    waiting) and the status to show (``done`` once nothing is waiting, even before the sweep)."""

    counts: dict[str, int]
    status: str


_ENV = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)


def fields_of(user: User, profile: Profile | None) -> dict[str, str]:
    """The recipient fields (``storage.bulk.FIELDS``) of one user."""
    return {
        "name": user.display_name or "",
        "province": (profile.province if profile else None) or "",
        "establishment": (profile.establishment_name if profile else None) or "",
    }


@dataclass(frozen=True)
class CompiledTemplate:
    """A staff template compiled once: the Jinja2 template, and, when it is plain text and
    variables only, its parts for SQL to render (``parts`` None: rendered in Python)."""

    template: Template
    parts: tuple[MessagePart, ...] | None

    def render_fields(self, fields: dict[str, str]) -> str:
        values = {variable: fields[field] for variable, field in VARIABLES.items()}
        try:
            return self.template.render(values).strip()
        except TemplateError as exc:
            raise TemplateProblem(str(exc)) from exc

    def render(self, user: User, profile: Profile | None) -> str:
        return self.render_fields(fields_of(user, profile))


def _parts(tree: nodes.Template) -> tuple[MessagePart, ...] | None:
    """The literal pieces and variable references of a parsed template, or None when it uses
    anything else (filters, conditions, attributes, expressions)."""
    parts: list[MessagePart] = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                parts.append(MessagePart(text=child.data))
            elif isinstance(child, nodes.Name) and child.ctx == "load" and child.name in VARIABLES:
                parts.append(MessagePart(field=VARIABLES[child.name]))
            else:
                return None
    return tuple(parts)


@lru_cache(maxsize=64)
def compile_template(template: str) -> CompiledTemplate:
    """Compile once (the template's own text is escaped first, so it shows literally)."""
    source = html.escape(template, quote=False)
    try:
        return CompiledTemplate(_ENV.from_string(source), _parts(_ENV.parse(source)))
    except TemplateError as exc:
        raise TemplateProblem(str(exc)) from exc


def render(template: str, user: User, profile: Profile | None) -> str:
    """The message for one recipient (HTML-safe: the template's own text is escaped too)."""
    return compile_template(template).render(user, profile)


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


@dataclass(frozen=True)
class BroadcastService:
    staff: StaffDirectory
    channels: tuple[str, ...] = CHANNELS

    def selection(self, repos: Repos, kb: KnowledgeBase, audience: Audience) -> BroadcastAudience:
        """The staff's filter as SQL selects it: chat users on the delivery channels, not blocked,
        staff chats left out; an interest in a category is one in the profile or an active
        subscription to it, to every category, or to one of its entries."""
        entries: tuple[str, ...] = ()
        if audience.category:
            entries = tuple(sorted(i for i, e in kb.by_id.items() if str(e.category) == audience.category))
        return BroadcastAudience(
            channels=self.channels,
            staff_channel=STAFF_CHANNEL,
            staff_chats=tuple(sorted(self.staff.telegram_ids(repos))),
            province=audience.province,
            legal_form=audience.legal_form,
            subscribers_only=audience.subscribers_only,
            category=audience.category,
            category_entries=entries,
        )

    def recipients(
        self, repos: Repos, kb: KnowledgeBase, audience: Audience, limit: int | None = None
    ) -> list[Recipient]:
        """The users the audience filter selects, in id order (``limit``: only the first ones; the
        whole list is for small audiences and tests, never a broadcast to everyone)."""
        return repos.broadcasts.recipients(self.selection(repos, kb, audience), limit)

    def count(self, repos: Repos, kb: KnowledgeBase, audience: Audience) -> dict[str, int]:
        """How many the audience reaches per delivery channel, counted in SQL."""
        return repos.broadcasts.count_by_channel(self.selection(repos, kb, audience))

    def counts(self, chosen: list[Recipient]) -> dict[str, int]:
        return count_by_channel(chosen, self.channels)

    def preview(self, repos: Repos, kb: KnowledgeBase, broadcast: Broadcast) -> Preview:
        """The counts per channel and the text as the first recipient will read it."""
        audience = Audience.from_dict(broadcast.audience)
        counts = self.count(repos, kb, audience)
        first = self.recipients(repos, kb, audience, limit=1) if sum(counts.values()) else []
        if not first:
            return Preview(counts, None, None)
        user, profile = first[0]
        return Preview(counts, render(broadcast.template, user, profile), user)

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
        """Queue one outbox row per recipient, once: the draft is taken with a conditional update
        first, so a second confirmation (a double click, two staff at once) selects nobody and
        changes nothing; one whose audience matches nobody gives the draft back (it stays a draft).
        ``actor``: who confirmed it, for the audit log (by default whoever composed it)."""
        now = utcnow()
        if not repos.broadcasts.take_draft(broadcast, now):
            return 0
        queued = self._queue(repos, kb, broadcast, now)
        if not queued:  # nobody to send to: the draft stays a draft, nothing is queued
            repos.broadcasts.return_to_draft(broadcast)
            return 0
        who = actor or broadcast.created_by
        audit.record(repos, who, audit.BROADCAST_CONFIRM, "broadcast", broadcast.id, f"{queued}")
        return queued

    def _queue(self, repos: Repos, kb: KnowledgeBase, broadcast: Broadcast, now: datetime) -> int:
        """The outbox rows of every recipient: one ``INSERT ... SELECT`` rendering the text in SQL, or,
        for a template SQL cannot render, batches rendered by the compiled template."""
        broadcast_id = saved_id(broadcast)
        selection = self.selection(repos, kb, Audience.from_dict(broadcast.audience))
        compiled = compile_template(broadcast.template)
        buttons = list(broadcast.buttons)
        if compiled.parts is not None:
            return repos.broadcasts.queue(
                broadcast_id, selection, compiled.parts, buttons, PRIORITY_BROADCAST, now
            )
        queued, after = 0, 0
        while batch := repos.broadcasts.recipient_fields(selection, after, RENDER_BATCH):
            rows = [(i, channel, chat, compiled.render_fields(f)) for i, channel, chat, f in batch]
            queued += repos.outbox.add_rendered(
                "broadcast", broadcast_id, rows, buttons, PRIORITY_BROADCAST, now
            )
            after = batch[-1][0]
        repos.outbox.bulk_added(queued)
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
        """Mark done every sending broadcast with nothing left waiting (the periodic sweep: one
        indexed look per sending broadcast, not a count of its rows)."""
        finished = 0
        for broadcast in repos.broadcasts.sending():
            if not repos.outbox.has_waiting("broadcast", saved_id(broadcast)):
                broadcast.status = "done"
                broadcast.finished_at = now
                repos.broadcasts.save(broadcast)
                finished += 1
        return finished
