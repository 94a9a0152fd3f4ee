"""A dialogue on a fresh database and a tiny driver to talk to it.

The dialogue's `Texts` record every template they render with its values, so a test can assert
the step a reply belongs to and the facts it was given (``chat.shown("apply_done")["again"]``)
instead of its Vietnamese wording, which belongs to the templates and their own tests."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from handlers.dialogue import Dialogue
from handlers.texts import Texts
from handlers.types import Incoming, Kind, Reply
from knowledge.catalog import Catalog
from storage.db import Database
from storage.models import saved_id
from storage.repositories import Repos
from tests.support.checks import one

# A sentence end glued to the next sentence ("...nào.Em hỏi"): a template lost its line break.
GLUED = re.compile(r"[.!?…)][A-ZĐÀ-Ỹ]")


def _checked(replies: list[Reply]) -> list[Reply]:
    for reply in replies:
        assert not GLUED.search(reply.text), reply.text
    return replies


class RecordingTexts(Texts):
    """`Texts` that remember each template rendered (name and values), in order."""

    def __init__(self) -> None:
        super().__init__()
        self.rendered: list[tuple[str, dict[str, Any]]] = []

    def render(self, template: str, /, **context: Any) -> str:
        self.rendered.append((template, context))
        return super().render(template, **context)


def recording_dialogue(database: Database, catalog: Catalog, **options: Any) -> Dialogue:
    """A dialogue whose templates can be asserted on through `Chat.shown`."""
    return Dialogue(database, catalog, RecordingTexts(), **options)


@dataclass
class Chat:
    """One user talking to a dialogue; keeps the last replies."""

    dialogue: Dialogue
    chat_id: str = "100"
    name: str = "Nguyễn Văn An"
    channel: str = "telegram"
    last: list[Reply] = field(default_factory=list)
    rendered: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def _handle(self, incoming: Incoming) -> list[Reply]:
        texts = self.dialogue.texts
        mark = len(texts.rendered) if isinstance(texts, RecordingTexts) else 0
        self.last = self.dialogue.handle(incoming)
        self.rendered = texts.rendered[mark:] if isinstance(texts, RecordingTexts) else []
        return self.last

    def send(self, text: str) -> list[Reply]:
        return _checked(self._handle(Incoming.text_message(self.channel, self.chat_id, text, self.name)))

    def press(self, data: str) -> list[Reply]:
        return _checked(
            self._handle(Incoming(self.channel, self.chat_id, Kind.CHOICE, user_name=self.name, choice=data))
        )

    def media(self, media: str | None) -> list[Reply]:
        return self._handle(
            Incoming(self.channel, self.chat_id, Kind.UNSUPPORTED, user_name=self.name, media=media)
        )

    @property
    def templates(self) -> list[str]:
        """The templates rendered while the last message was handled (notifications to others too)."""
        return [name for name, _ in self.rendered]

    def shown(self, template: str) -> dict[str, Any]:
        """The values ``template`` was last rendered with while the last message was handled."""
        assert isinstance(self.dialogue.texts, RecordingTexts), "use recording_dialogue() for this chat"
        found = [values for name, values in self.rendered if name == template]
        assert found, f"{template!r} was not shown; the templates were {self.templates}"
        return found[-1]

    @property
    def buttons(self) -> list[str]:
        return [b.data for r in self.last for b in r.flat_buttons]

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.last)

    def button_for(self, prefix: str) -> str:
        found = [d for d in self.buttons if d.startswith(prefix)]
        assert found, f"no button starting with {prefix!r} in {self.buttons}"
        return found[0]

    def answer(self, value: str) -> list[Reply]:
        """Press the answer button with this value on the current question."""
        version = self.button_for("s:").split(":")[1]
        return self.press(f"s:{version}:{value}")

    def state(self):
        with self.dialogue.db.session() as s:
            repos = Repos(s)
            user_id = saved_id(one(repos.users.find(self.channel, self.chat_id)))
            return repos.conversations.get(user_id), repos.profiles.get(user_id)


@pytest.fixture
def dialogue(database: Database, catalog: Catalog) -> Dialogue:
    return recording_dialogue(database, catalog)


@pytest.fixture
def chat(dialogue: Dialogue) -> Chat:
    return Chat(dialogue)
