"""👍 / 👎 under the answer to a free question: recorded per answer (the entry and the question it
answered, the producer), a 👎 puts the question in the learning queue (``services.learning``); both
are thanked briefly. The answer's own menu stays the one its numbers pick (Zalo, console)."""

from __future__ import annotations

from handlers.context import Ctx
from handlers.types import Reply
from services import learning

# How many answers back a 👍 / 👎 still knows its question.
ANSWERS_REMEMBERED = 5


def remember_answer(ctx: Ctx, entry_id: str, question: str) -> None:
    """The question ``entry_id`` answered, kept for the buttons under that answer."""
    answered = dict(ctx.state.memory.answered or {})
    answered.pop(entry_id, None)
    answered[entry_id] = question
    ctx.state.memory.answered = dict(list(answered.items())[-ANSWERS_REMEMBERED:])


def on_feedback(ctx: Ctx, arg: str | None) -> list[Reply] | None:
    """``arg`` is "<entry id>:1" or "<entry id>:0"; None (stale) when it does not parse."""
    entry_id, _, vote = (arg or "").rpartition(":")
    if vote not in ("0", "1") or entry_id not in ctx.catalog.kb.by_id:
        return None
    helpful = vote == "1"
    question = (ctx.state.memory.answered or {}).get(entry_id) or ctx.state.memory.last_question or ""
    learning.feedback(ctx.repos, ctx.user_id, entry_id, question, helpful, ctx.profile.province)
    return [ctx.reply("feedback_thanks", helpful=helpful)]
