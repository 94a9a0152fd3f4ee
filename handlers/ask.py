"""Free-text questions: the best knowledge entry when the search is confident, otherwise the
closest topics as buttons plus the handoff to staff. A message with two questions gets the first
answered and the second offered as a button."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import replace

from handlers import answers, feedback
from handlers import callbacks as cb
from handlers.cards import entry_button
from handlers.context import Ctx
from handlers.types import Button, Reply
from knowledge.models import Faq, OutOfScopeTopic, Programme
from knowledge.search import Match, SearchResult
from knowledge.text import fold, fold_letters
from knowledge.understand import MessageFacts
from services import learning

MAX_QUERY_CHARS = 500
# A programme named in a question about a facet ("quyết toán máy móc cần giấy tờ gì") is answered
# instead of the facet's general FAQ when it scores at least this share of that FAQ's score.
PROGRAMME_OVER_FACET = 0.8
# Words that lead a place name and go with it: "ở huyện Gia Lâm", "tỉnh Thái Bình".
_PLACE_LEAD = frozenset(
    {"o", "tai", "tinh", "thanh", "pho", "tp", "huyen", "quan", "thi", "xa", "tx", "dac", "khu"}
)
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
    ctx.state.memory.last_question = question[:MAX_STORED_QUESTION_CHARS]
    asked = question[:MAX_QUERY_CHARS]
    parts = split_questions(asked, ctx.texts.labels["words"]["question_joiners"])
    facts = answers.read(ctx, asked)
    answers.remember(ctx, facts)
    province = facts.province or ctx.profile.province
    second = _second_topic(ctx, parts[1], province) if len(parts) > 1 else None
    if second is not None:  # the second question is its own: what it asks is not about the first
        facts = replace(facts, asks=answers.read(ctx, parts[0]).asks)
    result = ctx.catalog.index.search(_without_place(parts[0], facts), province=province)
    first: Programme | Faq | OutOfScopeTopic | None = _out_of_scope(ctx, result, facts)
    if isinstance(first, OutOfScopeTopic):
        replies = [answers.answer_out_of_scope(ctx, first, facts)]
    else:
        first = _entry_said(ctx, result, facts)
        if not result.confident:  # the learning queue: staff see what the search was unsure of
            shown = first.id if first is not None else None
            learning.note(ctx.repos, question, learning.NOT_CONFIDENT, ctx.user_id, province, shown)
        if first is None:
            return [_not_sure(ctx, result.matches, facts, too_long=len(question) > MAX_QUERY_CHARS)]
        ctx.note_interest(str(first.category))
        feedback.remember_answer(ctx, first.id, question[:MAX_STORED_QUESTION_CHARS])
        replies = [answers.answer_entry(ctx, first, facts, asked)]
    if second is not None and second.id != first.id:
        part_facts = answers.read(ctx, parts[1])
        if isinstance(second, OutOfScopeTopic):
            replies.append(answers.answer_out_of_scope(ctx, second, part_facts, compact=True))
        else:
            brief = answers.answer_entry(ctx, second, part_facts, parts[1], compact=True)
            replies.append(Reply(brief.text, ((entry_button(second),),)))
    return replies


def _second_topic(ctx: Ctx, part: str, province: str | None) -> Programme | Faq | OutOfScopeTopic | None:
    """What the second question of a message is about, when it is a question of its own; None when
    it only asks a facet of the first ("nộp hồ sơ ở đâu": where to apply for that programme)."""
    facts = answers.read(ctx, part)
    result = ctx.catalog.index.search(_without_place(part, facts), province=province)
    topic = _out_of_scope(ctx, result, facts)
    if topic is not None:
        return topic
    if not result.confident or not result.matches:
        return None
    entry = ctx.catalog.kb.by_id[result.matches[0].id]
    if entry.id in {answers.facet_faq(ctx, name) for name in facts.asks}:
        return None
    return entry


def _without_place(question: str, facts: MessageFacts) -> str:
    """The question without the place it names ("thai binh cu", "huyen Gia Lam"): the place was read
    already, and its words only dilute the search for the topic."""
    said = facts.place.said if facts.place is not None else ""
    folded = f" {fold(question)} "
    if not said or f" {said} " not in folded:
        return question
    before, after = folded.split(f" {said} ", 1)
    words = before.split()
    while words and words[-1] in _PLACE_LEAD:
        words.pop()
    rest = after.split()
    if rest[:1] == ["cu"]:
        rest = rest[1:]  # "Thái Bình cũ"
    remaining = " ".join([*words, *rest])
    return remaining if len(remaining.split()) >= 2 else question


def _machinery_intent(ctx: Ctx, facts: MessageFacts, question: str) -> bool:
    """A machine or a whole line with its price, and not a demonstration model."""
    says_model = "mo hinh" in f" {ctx.catalog.index.normalise(question).text} "
    return facts.technology_line is not None and bool(facts.amount_vnd) and not says_model


def _out_of_scope(ctx: Ctx, result: SearchResult, facts: MessageFacts) -> OutOfScopeTopic | None:
    """The out-of-scope topic the search found. A message buying a machine or a line with its price
    keeps the machinery programme unless the topic is about that very machine: "máy cày 300tr" is
    farm machinery, "dây chuyền 2 tỷ làm giấy vệ sinh" is not food safety."""
    if result.out_of_scope is None:
        return None
    topic = next(t for t in ctx.catalog.kb.out_of_scope if t.id == result.out_of_scope.id)
    if _machinery_intent(ctx, facts, result.query) and not _names_its_machine(ctx, topic, result.query):
        return None
    return topic


def _names_its_machine(ctx: Ctx, topic: OutOfScopeTopic, question: str) -> bool:
    """Whether the question names a machine the topic is about (a keyword like "máy cày")."""
    words = ctx.texts.labels["words"]
    starts = tuple(f"{fold(w)} " for w in [*words["machines"], *words["lines"]])
    said = f" {ctx.catalog.index.normalise(question).repaired_text} "
    return any(
        phrase.startswith(starts) and f" {phrase} " in said
        for phrase in (fold(k) for k in [topic.title, *topic.keywords])
    )


def _entry_said(ctx: Ctx, result: SearchResult, facts: MessageFacts) -> Programme | Faq | None:
    """The entry to answer with: the confident best match, unless the message itself says which.

    - A machine or a whole line with its price is the machinery programme (of the producer's
      province when it has its own), however unsure the search is.
    - What the producer says about themselves ("chỉ buôn bán", "chưa đăng ký", "công ty lớn", "HTX
      có được không") is answered by the FAQ about it (``answers.fact_faqs``) when the search is
      unsure, or when it found a programme that this fact rules out.
    - A general FAQ about one facet ("hồ sơ cần gì") gives way to the programme the question also
      names ("quyết toán máy móc cần giấy tờ gì": the machinery programme and its documents).
    """
    kb = ctx.catalog.kb
    if _machinery_intent(ctx, facts, result.query):
        for match in result.matches[:5]:
            if match.category == "machinery":
                return kb.by_id[match.id]
        province = facts.province or ctx.profile.province
        machinery = [e for e in kb.entries if e.category == "machinery" and isinstance(e, Programme)]
        own = [e for e in machinery if e.scope == province] or [e for e in machinery if e.scope == "national"]
        if own:
            return own[0]
    best = kb.by_id[result.matches[0].id] if result.confident and result.matches else None
    about_producer = answers.fact_faq(ctx, facts)
    if about_producer is not None and (best is None or answers.fit_notes(ctx, best, facts)):
        return about_producer
    if best is not None and best.id in {answers.facet_faq(ctx, name) for name in facts.asks}:
        for match in result.matches[1:3]:
            entry = kb.by_id[match.id]
            if isinstance(entry, Programme) and match.score >= PROGRAMME_OVER_FACET * result.matches[0].score:
                return entry
    return best


def _not_sure(ctx: Ctx, matches: Iterable[Match], facts: MessageFacts, too_long: bool) -> Reply:
    seen: set[str] = set()
    buttons: list[list[Button]] = []
    for match in matches:
        if match.id not in seen and len(buttons) < 3:
            seen.add(match.id)
            buttons.append([entry_button(ctx.catalog.kb.by_id[match.id])])
    has_topics = bool(buttons)
    buttons.append([ctx.button("ask_staff", cb.SEND_LAST_QUESTION)])
    buttons.append([ctx.button("other_topics", cb.BROWSE), ctx.button("main_menu", cb.MAIN_MENU)])
    notes = answers.place_notes(ctx, facts)[:2]
    return ctx.reply("not_sure", buttons, has_topics=has_topics, too_long=too_long, notes=notes)
