"""Set-based SQL for the messages that go to many producers at once: who a broadcast reaches (its
audience as one ``WHERE``), a broadcast's text rendered in SQL from its compiled template (literal
pieces and recipient fields, HTML-escaped with ``replace()``), and who a deadline concerns (the
reminder rule of ``services.reminders.deadline_matches`` reduced for one deadline).

The repositories (``BroadcastRepo``, ``ReminderRepo``) build their statements from these, so a
broadcast to a million producers is counted with one ``GROUP BY`` and queued with one
``INSERT ... SELECT``, never with a Python object per recipient. Identical on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, case, cast, exists, false, func, literal, not_, or_
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from storage.models import Profile, Subscription, User

# The characters Python's ``str.strip()`` removes (``str.isspace``), so that SQL trims a rendered
# message exactly as the Python rendering does.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# What Jinja2's autoescape (markupsafe) turns each character into, "&" first.
HTML_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;"), ("'", "&#39;"))
# The recipient fields a broadcast template may name, and the columns they come from.
FIELDS = ("name", "province", "establishment")


@dataclass(frozen=True)
class MessagePart:
    """One piece of a compiled broadcast template: literal text (already HTML-safe) or a recipient
    field (``FIELDS``), escaped when it is put in."""

    text: str = ""
    field: str | None = None


@dataclass(frozen=True)
class BroadcastAudience:
    """Who a broadcast reaches, as SQL selects it (``services.broadcasts`` builds it from the staff's
    filter): chat users on ``channels``, not blocked, the staff's own Telegram chats left out; then
    the producer's profile province and legal form; an active subscription (``subscribers_only``);
    an interest in ``category`` (in the profile's interests, or an active subscription to the
    category, to every category, or to one of ``category_entries``: the knowledge entries of it)."""

    channels: tuple[str, ...]
    staff_channel: str = "telegram"
    staff_chats: tuple[str, ...] = ()
    province: str | None = None
    legal_form: str | None = None
    subscribers_only: bool = False
    category: str | None = None
    category_entries: tuple[str, ...] = ()

    def where(self, dialect: str) -> list[ColumnElement[bool]]:
        """The filter over ``users`` left-joined to ``profiles``."""
        clauses: list[ColumnElement[bool]] = [
            col(User.is_blocked).is_(False),
            col(User.channel).in_(self.channels) if self.channels else false(),
        ]
        if self.staff_chats:
            clauses.append(
                not_(
                    and_(col(User.channel) == self.staff_channel, col(User.external_id).in_(self.staff_chats))
                )
            )
        if self.province:
            clauses.append(col(Profile.province) == self.province)
        if self.legal_form:
            clauses.append(col(Profile.legal_form) == self.legal_form)
        if self.subscribers_only:
            clauses.append(_active_subscription())
        if self.category:
            clauses.append(self._interested(self.category, dialect))
        return clauses

    def _interested(self, category: str, dialect: str) -> ColumnElement[bool]:
        named = and_(col(Subscription.programme_id).is_not(None), col(Subscription.programme_id) != "")
        by_entry = and_(named, col(Subscription.programme_id).in_(self.category_entries))
        by_category = and_(
            not_(named),
            or_(
                json_list_empty(col(Subscription.categories), dialect),
                json_list_has(col(Subscription.categories), category, dialect),
            ),
        )
        return or_(
            json_list_has(col(Profile.interests), category, dialect),
            _active_subscription(or_(by_entry, by_category) if self.category_entries else by_category),
        )


@dataclass(frozen=True)
class DeadlineAudience:
    """Which active subscriptions one deadline concerns: ``services.reminders.deadline_matches``
    with the deadline (and what the knowledge base says of its programme) fixed.

    - ``province``: only subscribers of it (the subscription's province, else the profile's).
    - ``programmes``: a subscription to one programme matches when it names one of these (None:
      any programme).
    - ``category``: a subscription to categories matches when it lists this one or none at all
      (None: every such subscription)."""

    province: str | None
    programmes: tuple[str, ...] | None
    category: str | None

    def where(self, dialect: str) -> ColumnElement[bool]:
        """The filter over ``subscriptions`` left-joined to ``profiles``."""
        named = and_(col(Subscription.programme_id).is_not(None), col(Subscription.programme_id) != "")
        by_programme = named
        if self.programmes is not None:
            by_programme = and_(named, col(Subscription.programme_id).in_(self.programmes))
        by_category: ColumnElement[bool] = not_(named)
        if self.category is not None:
            categories = col(Subscription.categories)
            by_category = and_(
                not_(named),
                or_(json_list_empty(categories, dialect), json_list_has(categories, self.category, dialect)),
            )
        matches = or_(by_programme, by_category)
        if self.province is None:
            return matches
        province = func.coalesce(func.nullif(Subscription.province, ""), Profile.province)
        return and_(province == self.province, matches)


def _active_subscription(*where: ColumnElement[bool]) -> ColumnElement[bool]:
    """The user (of the outer query) has an active subscription (meeting ``where``)."""
    return exists(
        select(Subscription.id).where(
            col(Subscription.user_id) == User.id, col(Subscription.is_active), *where
        )
    )


def json_list_has(column: Any, value: str, dialect: str) -> ColumnElement[bool]:
    """The JSON list in ``column`` holds the string ``value`` (false for a JSON null)."""
    if dialect == "postgresql":
        return cast(column, JSONB).op("@>")(cast(literal(json.dumps([value])), JSONB))
    items = func.json_each(column).table_valued("value")
    return exists(select(literal(1)).select_from(items).where(items.c.value == value))


def json_list_empty(column: Any, dialect: str) -> ColumnElement[bool]:
    """The JSON list in ``column`` is empty (or a JSON null, which Python reads as falsy too)."""
    if dialect == "postgresql":
        length = case((func.json_typeof(column) == "array", func.json_array_length(column)), else_=0)
        return length == 0
    return func.coalesce(func.json_array_length(column), 0) == 0


def escaped(value: Any) -> Any:
    """``value`` (a text column, NULL read as "") HTML-escaped as Jinja2's autoescape does."""
    expr: Any = func.coalesce(value, "")
    for raw, safe in HTML_ESCAPES:
        expr = func.replace(expr, raw, safe)
    return expr


def field_column(field: str) -> Any:
    """The column of a recipient field (over ``users`` left-joined to ``profiles``)."""
    columns = {
        "name": User.display_name,
        "province": Profile.province,
        "establishment": Profile.establishment_name,
    }
    return columns[field]


def rendered(parts: tuple[MessagePart, ...], dialect: str) -> Any:
    """The message of each row, in SQL: the parts concatenated, fields escaped, then trimmed of
    whitespace at both ends (as ``str.strip`` does)."""
    pieces: list[Any] = []
    for part in parts:
        if part.field is not None:
            pieces.append(escaped(field_column(part.field)))
        elif part.text:
            pieces.append(literal(part.text, String))
    if not pieces:
        return literal("", String)
    expr = pieces[0]
    for piece in pieces[1:]:
        expr = expr.op("||")(piece)
    trim = func.btrim if dialect == "postgresql" else func.trim
    return trim(cast(expr, String), WHITESPACE)


def id_text(column: Any) -> Any:
    """An integer id as text (for dedupe keys built in SQL)."""
    return cast(column, String)
