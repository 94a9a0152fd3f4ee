"""The neutral shapes channels and the dialogue exchange: an incoming event, replies and buttons.

Channels (``bot/channels``) turn platform updates into ``Incoming`` and render ``Reply`` objects;
the dialogue never sees a platform type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_COMMAND = re.compile(r"/([A-Za-z0-9_@]+)(?:\s+(.*))?$", re.DOTALL)
# Control characters (NUL included: PostgreSQL text cannot hold it), bidirectional overrides and
# zero-width marks: never meaningful in a producer's message, sometimes used to disguise one.
_UNWANTED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def clean_text(text: str) -> str:
    """``text`` without control and invisible formatting characters (line breaks and tabs kept)."""
    return _UNWANTED.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


class Kind(StrEnum):
    TEXT = "text"
    COMMAND = "command"
    CHOICE = "choice"
    CONTACT = "contact"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class Incoming:
    """One thing a user did: typed text, a /command, a button press, a shared contact, or other media."""

    channel: str
    chat_id: str
    kind: Kind
    text: str = ""
    user_name: str = ""
    username: str | None = None
    command: str | None = None
    choice: str | None = None
    contact_phone: str | None = None
    media: str | None = None

    def __post_init__(self) -> None:
        for name in ("text", "user_name", "username", "choice", "contact_phone"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, clean_text(value))

    @classmethod
    def text_message(cls, channel: str, chat_id: str, text: str, user_name: str = "") -> Incoming:
        stripped = text.strip()
        if stripped.startswith("/") and len(stripped) > 1:
            head, _, rest = stripped[1:].partition(" ")
            return cls(
                channel, chat_id, Kind.COMMAND, rest.strip(), user_name, command=head.split("@")[0].lower()
            )
        return cls(channel, chat_id, Kind.TEXT, text, user_name)


@dataclass(frozen=True)
class Button:
    """A choice: what the user sees and the short ASCII data that comes back (at most 64 bytes)."""

    label: str
    data: str

    def __post_init__(self) -> None:
        if not self.data.isascii() or not 0 < len(self.data.encode()) <= 64:
            raise ValueError(f"button data must be 1-64 ASCII bytes: {self.data!r}")


@dataclass(frozen=True)
class Reply:
    """A message to send. ``text`` is Telegram-style HTML (user text already escaped).

    ``buttons`` are rows of choices; ``ask_contact`` asks the channel for its "share phone number"
    button where it has one.
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    ask_contact: bool = False

    @property
    def flat_buttons(self) -> list[Button]:
        return [b for row in self.buttons for b in row]


@dataclass(frozen=True)
class Receipt:
    """Proof that an inbox worker holds an update; the dialogue marks it done with its own writes."""

    inbox_id: int
    worker_id: str


class LeaseLost(RuntimeError):
    """The worker no longer holds the inbox row (its lease ran out and another worker took it)."""
