"""The console chat (``python -m bot chat``, and ``python -m bot run`` with no token): the same
dialogue in a terminal, no token needed. Buttons are shown as a numbered list; type the number (or
the words) to choose. What staff send (status changes, answers, broadcasts, reminders) reaches the
terminal through the outbox, over ``ConsoleTransport``."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import TextIO

from bot.channels.plaintext import render
from bot.outbox import Pace
from handlers.dialogue import Dialogue
from handlers.types import Incoming, Reply

CHANNEL = "console"


def chat(
    dialogue: Dialogue,
    hint: str,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    chat_id: str | None = None,
    user_name: str | None = None,
    hint_one: str | None = None,
) -> None:
    """Read lines until end of input; print each reply. Starts with /start."""
    chat_id = chat_id or getpass.getuser()
    name = user_name or ""  # the login name is not the producer's name: greet without one
    say: Callable[[str], None] = lambda text: print(text, file=stdout, flush=True)  # noqa: E731
    for reply in dialogue.handle(Incoming.text_message(CHANNEL, chat_id, "/start", name)):
        say(render(reply, hint, hint_one) + "\n")
    while True:
        stdout.write("> ")
        stdout.flush()
        line = stdin.readline()
        if not line:
            say("")
            return
        for reply in dialogue.handle(Incoming.text_message(CHANNEL, chat_id, line.rstrip("\n"), name)):
            say(render(reply, hint, hint_one) + "\n")


class ConsoleTransport:
    """The outbox's way to the terminal: messages for console users are printed between prompts."""

    channel = CHANNEL
    native_buttons = False

    def __init__(self, hint: str, stdout: TextIO = sys.stdout, hint_one: str | None = None):
        self._hint = hint
        self._hint_one = hint_one
        self._stdout = stdout

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def deliver(self, chat_id: str, reply: Reply, pace: Pace) -> None:
        self._stdout.write(f"\n{render(reply, self._hint, self._hint_one)}\n\n> ")
        self._stdout.flush()
