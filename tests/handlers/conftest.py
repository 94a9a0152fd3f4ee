"""A dialogue on a fresh database and a tiny driver to talk to it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from handlers.dialogue import Dialogue
from handlers.types import Incoming, Kind, Reply
from knowledge.catalog import Catalog
from storage.db import Database
from storage.repositories import Repos

# A sentence end glued to the next sentence ("...nào.Em hỏi"): a template lost its line break.
GLUED = re.compile(r"[.!?…)][A-ZĐÀ-Ỹ]")


def _checked(replies: list[Reply]) -> list[Reply]:
    for reply in replies:
        assert not GLUED.search(reply.text), reply.text
    return replies


@dataclass
class Chat:
    """One user talking to a dialogue; keeps the last replies."""

    dialogue: Dialogue
    chat_id: str = "100"
    name: str = "Nguyễn Văn An"
    channel: str = "telegram"
    last: list[Reply] = field(default_factory=list)

    def send(self, text: str) -> list[Reply]:
        self.last = _checked(
            self.dialogue.handle(Incoming.text_message(self.channel, self.chat_id, text, self.name))
        )
        return self.last

    def press(self, data: str) -> list[Reply]:
        self.last = _checked(
            self.dialogue.handle(
                Incoming(self.channel, self.chat_id, Kind.CHOICE, user_name=self.name, choice=data)
            )
        )
        return self.last

    def media(self, media: str) -> list[Reply]:
        self.last = self.dialogue.handle(
            Incoming(self.channel, self.chat_id, Kind.UNSUPPORTED, user_name=self.name, media=media)
        )
        return self.last

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
            user = repos.users.find(self.channel, self.chat_id)
            return repos.conversations.get(user.id), repos.profiles.get(user.id)


@pytest.fixture
def dialogue(database: Database, catalog: Catalog) -> Dialogue:
    return Dialogue(database, catalog)


@pytest.fixture
def chat(dialogue: Dialogue) -> Chat:
    return Chat(dialogue)
