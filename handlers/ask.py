"""Free-text questions: the best knowledge entry when the search is confident, otherwise the
closest topics as buttons plus the handoff to staff. A message with two questions gets the first
answered and the second offered as a button."""

from __future__ import annotations

import re
import unicodedata

from handlers import answers
from handlers import callbacks as cb
from handlers.cards import entry_button
from handlers.context import Ctx
from handlers.types import Reply
from knowledge.models import Faq, Programme
from knowledge.search import SearchResult
from knowledge.text import fold_letters
from knowledge.understand import MessageFacts

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
    """Answer what was asked (see ``handlers.answers``): the first question in full, a second one
    briefly under it; a topic khuyến công does not cover gets who handles it; otherwise the closest
    topics and the handoff to staff."""
    question = text.strip()
    ctx.state.data["_last_question"] = question[:MAX_STORED_QUESTION_CHARS]
    parts = split_questions(question[:MAX_QUERY_CHARS], ctx.texts.labels["words"]["question_joiners"])
    facts = answers.read(ctx, question[:MAX_QUERY_CHARS])
    answers.remember(ctx, facts)
    province = facts.province or ctx.profile.province
    index = ctx.catalog.index
    result = index.search(parts[0], province=province)
    if result.out_of_scope is not None:
        topic = next(t for t in ctx.catalog.kb.out_of_scope if t.id == result.out_of_scope.id)
        return [answers.answer_out_of_scope(ctx, topic, facts)]
    best = _entry_said(ctx, result, facts, parts[0])
    if best is None:
        return [_not_sure(ctx, result.matches, facts, too_long=len(question) > MAX_QUERY_CHARS)]
    ctx.note_interest(str(best.category))
    replies = [answers.answer_entry(ctx, best, facts, question[:MAX_QUERY_CHARS])]
    if len(parts) > 1:
        second = index.search(parts[1], province=province)
        covered = {answers.facet_faq(ctx, name) for name in facts.asks}  # answered in the first reply
        if (
            second.confident
            and second.matches
            and second.matches[0].id not in {best.id, *covered}
            and not second.out_of_scope
        ):
            other = ctx.catalog.kb.by_id[second.matches[0].id]
            brief = answers.answer_entry(ctx, other, answers.read(ctx, parts[1]), parts[1], compact=True)
            replies.append(Reply(brief.text, ((entry_button(other),),)))
    return replies


def _entry_said(ctx: Ctx, result: SearchResult, facts: MessageFacts, question: str) -> Programme | Faq | None:
    """The entry to answer with: the confident best match, unless the message itself says which.
    A machine or a whole line with its price is the machinery programme (of the producer's province
    when it has its own), whatever else the words resemble and however unsure the search is."""
    kb = ctx.catalog.kb
    says_model = "mo hinh" in f" {ctx.catalog.index.normalise(question).text} "
    if facts.technology_line is not None and facts.amount_vnd and not says_model:
        for match in result.matches[:5]:
            if match.category == "machinery":
                return kb.by_id[match.id]
        province = facts.province or ctx.profile.province
        machinery = [e for e in kb.entries if e.category == "machinery" and isinstance(e, Programme)]
        own = [e for e in machinery if e.scope == province] or [e for e in machinery if e.scope == "national"]
        if own:
            return own[0]
    if result.confident and result.matches:
        return kb.by_id[result.matches[0].id]
    return None


def _not_sure(ctx: Ctx, matches, facts, too_long: bool) -> Reply:  # type: ignore[no-untyped-def]
    seen: set[str] = set()
    buttons = []
    for match in matches:
        if match.id not in seen and len(buttons) < 3:
            seen.add(match.id)
            buttons.append([entry_button(ctx.catalog.kb.by_id[match.id])])
    has_topics = bool(buttons)
    buttons.append([ctx.button("ask_staff", cb.SEND_LAST_QUESTION)])
    buttons.append([ctx.button("other_topics", cb.BROWSE), ctx.button("main_menu", cb.MAIN_MENU)])
    notes = answers.place_notes(ctx, facts)[:2]
    return ctx.reply("not_sure", buttons, has_topics=has_topics, too_long=too_long, notes=notes)
