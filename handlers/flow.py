"""What a multi-step flow answers to, so the dialogue can route to any flow the same way.

A flow is registered once in ``handlers.dialogue.FLOWS`` (its name, as stored in the conversation,
to its ``Flow``). While it is the current flow, the dialogue hands it:

- ``on_text``: typed text that is not a menu pick or a word that works everywhere;
- ``on_choice``: the value of an answer button of the current question (``s:<version>:<value>``),
  already checked to be current;
- ``on_contact``: a shared phone number;
- ``resume``: re-show the pending step (after a restart, media, a stale button, an empty message);
- ``back``: one step back (the "Quay lại" button or the typed word).

Each returns the replies, or None: "not mine" (typed text then goes on as a free question, a choice
is stale, a contact or a resume shows the main menu, back shows the main menu). A flow leaves out
what it does not answer to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from handlers.context import Ctx
from handlers.types import Reply

Answer = Callable[[Ctx, str], list[Reply] | None]
Contact = Callable[[Ctx, str | None], list[Reply] | None]
Step = Callable[[Ctx], list[Reply] | None]


def _not_mine(ctx: Ctx, value: str | None = None) -> list[Reply] | None:
    return None


@dataclass(frozen=True)
class Flow:
    """The entry points of one flow; what it leaves out answers "not mine" (None)."""

    name: str
    on_text: Answer = _not_mine
    on_choice: Answer = _not_mine
    on_contact: Contact = _not_mine
    resume: Step = _not_mine
    back: Step = _not_mine
