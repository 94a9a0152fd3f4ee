"""Free-text questions: the best knowledge entry when the search is confident, otherwise the
closest topics as buttons plus the handoff to staff. A message with two questions gets the first
answered and the second offered as a button."""

from __future__ import annotations

import re

from handlers import callbacks as cb
from handlers.cards import entry_button, entry_reply
from handlers.context import Ctx
from handlers.types import Reply

MAX_QUERY_CHARS = 500
MAX_STORED_QUESTION_CHARS = 4000
_SPLIT = re.compile(r"[?\n;]+|,\s*(?=(?:con|va|còn|và|nop|nộp|hs|ho so|hồ sơ|khi nao|khi nào|o dau|ở đâu)\b)")


def split_questions(text: str) -> list[str]:
    """The separate questions in one message (at most two, each with at least two words)."""
    parts = [p.strip(" ,.!") for p in _SPLIT.split(text) if p and p.strip(" ,.!")]
    parts = [p for p in parts if len(p.split()) >= 2]
    return parts[:2] or [text.strip()]


def answer(ctx: Ctx, text: str) -> list[Reply]:
    question = text.strip()
    ctx.state.data["_last_question"] = question[:MAX_STORED_QUESTION_CHARS]
    parts = split_questions(question[:MAX_QUERY_CHARS])
    index = ctx.catalog.index
    result = index.search(parts[0], province=ctx.profile.province)
    if not result.confident or not result.matches:
        return [_not_sure(ctx, result.matches, too_long=len(question) > MAX_QUERY_CHARS)]
    best = ctx.catalog.kb.by_id[result.matches[0].id]
    ctx.state.data["_last_entry"] = best.id
    replies = [entry_reply(ctx, best)]
    if len(parts) > 1:
        second = index.search(parts[1], province=ctx.profile.province)
        if second.confident and second.matches and second.matches[0].id != best.id:
            other = ctx.catalog.kb.by_id[second.matches[0].id]
            replies.append(ctx.reply("second_question", [[entry_button(other)]], question=parts[1]))
    return replies


def _not_sure(ctx: Ctx, matches, too_long: bool) -> Reply:
    seen: set[str] = set()
    buttons = []
    for match in matches:
        if match.id not in seen and len(buttons) < 3:
            seen.add(match.id)
            buttons.append([entry_button(ctx.catalog.kb.by_id[match.id])])
    buttons.append([ctx.button("ask_staff", cb.SEND_LAST_QUESTION)])
    buttons.append([ctx.button("other_topics", cb.BROWSE), ctx.button("main_menu", cb.MAIN_MENU)])
    return ctx.reply("not_sure", buttons, has_topics=len(buttons) > 2, too_long=too_long)
