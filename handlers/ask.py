"""Free-text questions: the best knowledge entry when the search is confident, otherwise the
closest topics as buttons plus the handoff to staff. A message with two questions gets the first
answered and the second offered as a button."""

from __future__ import annotations

import re
import unicodedata

from handlers import callbacks as cb
from handlers.cards import entry_button, entry_reply
from handlers.context import Ctx
from handlers.types import Reply
from knowledge.text import fold_letters

MAX_QUERY_CHARS = 500
MAX_STORED_QUESTION_CHARS = 4000
_HARD_BREAK = re.compile(r"[?\n;]+")


def split_questions(text: str, joiners: list[str]) -> list[str]:
    """The separate questions in one message (at most two, each with at least two words).

    Questions are split at "?", ";" and line breaks, and at a comma followed by one of ``joiners``
    (folded words such as "nop ho so", "o dau", "con").
    """
    text = unicodedata.normalize("NFC", text)
    folded = fold_letters(text)
    cuts = [m.span() for m in _HARD_BREAK.finditer(folded)]
    if len(folded) == len(text) and joiners:
        pattern = re.compile(r",\s*(?=(?:" + "|".join(re.escape(j) for j in joiners) + r")\b)")
        cuts += [m.span() for m in pattern.finditer(folded)]
    parts, start = [], 0
    for begin, end in sorted(cuts):
        parts.append(text[start:begin])
        start = end
    parts.append(text[start:])
    parts = [p.strip(" ,.!") for p in parts if len(p.strip(" ,.!").split()) >= 2]
    return parts[:2] or [text.strip()]


def answer(ctx: Ctx, text: str) -> list[Reply]:
    question = text.strip()
    ctx.state.data["_last_question"] = question[:MAX_STORED_QUESTION_CHARS]
    parts = split_questions(question[:MAX_QUERY_CHARS], ctx.texts.labels["words"]["question_joiners"])
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
