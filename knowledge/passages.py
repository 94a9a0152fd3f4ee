"""The passages of a knowledge entry, and the ones that answer a specific question about it.

A passage is one sentence of a summary or an answer, one supported item, one condition, one
document, one step, the place to apply or the timing. Search finds the entry ("hội chợ nước
ngoài"); the passages answer the detail asked about it: "mấy lần một năm" finds "tối đa 2 lần mỗi
năm", "máy cũ có được không" finds "máy phải là máy mới", "mấy tấm ảnh" finds "3 ảnh màu".

A passage scores the rarity (idf) of the question's words and word pairs it contains, as the search
reads them (typos repaired, synonyms added; no pair across a comma or a full stop). Words of the
entry's own title, aliases and keywords count a quarter: they say which entry, not which detail. A
question asking "how many, how much, how long" favours passages with a number in them.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from knowledge.models import Faq, OutOfScopeTopic, Programme
from knowledge.search import SearchIndex
from knowledge.text import fold

TOPIC_WEIGHT = 0.25  # a word of the entry's title, aliases or keywords
BIGRAM_WEIGHT = 1.5  # as in the search
NUMBER_BONUS = 1.5  # the factor for a passage with a number, when the question asks for a quantity
_DIGIT = re.compile(r"\d")
_CLAUSE_BREAK = re.compile(r"[,.;:!?\n]+")
_BREAK = re.compile(r"\n+|\s*•\s*|(?<=[.!?;])\s+")


@dataclass(frozen=True)
class Passage:
    kind: str  # summary, supported, condition, level, history, document, step, where, timing; answer, item
    text: str


@dataclass(frozen=True)
class ScoredPassage:
    passage: Passage
    score: float


def sentences(text: str) -> list[str]:
    """The sentences and bullet items of ``text``, stripped. A sentence ends at ". ", "! ", "? "
    or "; " before a capital letter, at a line break and at a bullet."""
    merged: list[str] = []
    glue = False
    for part in _BREAK.split(text.strip()):
        part = part.strip(" -\t")
        if not part:
            continue
        if glue and merged and not (part[0].isupper() or part[0] in '“"('):
            merged[-1] += " " + part
        else:
            merged.append(part)
        glue = part[-1] in ".!?;"
    return [p for p in merged if len(p) > 3]


def passages(entry: Programme | Faq) -> list[Passage]:
    """Every passage of ``entry``, in the order the card shows them."""
    if isinstance(entry, Faq):  # a bulleted line of an answer is one case ("Mua máy: ứng 70%...")
        found = []
        for line in entry.answer.splitlines():
            bullet = line.strip().startswith(("•", "- "))
            found += [Passage("item" if bullet else "answer", s) for s in sentences(line)]
        return found
    found = [Passage("summary", s) for s in sentences(entry.summary)]
    found += [Passage("supported", item) for item in entry.what_is_supported]
    found += [Passage("condition", item) for item in entry.conditions]
    if entry.level_note:
        found += [Passage("level", s) for s in sentences(entry.level_note)]
    found += [
        Passage("history", f"Trước đây (giai đoạn {h.years}): {h.text}; nay không còn áp dụng.")
        for h in entry.historical_levels
    ]
    found += [Passage("document", d.text) for d in entry.documents]
    found += [Passage("step", step) for step in entry.how_to_apply]
    found.append(Passage("where", entry.where_to_apply))
    found += [Passage("timing", s) for s in sentences(entry.timing)]
    return found


def _grams(words: list[str]) -> list[str]:
    return [*words, *(f"{a}_{b}" for a, b in itertools.pairwise(words))]


def _topic_terms(entry: Programme | Faq | OutOfScopeTopic) -> set[str]:
    terms: set[str] = set()
    for text in [entry.title, *getattr(entry, "aliases", []), *entry.keywords]:
        terms.update(_grams(fold(text).split()))
    return terms


def _across_breaks(text: str) -> set[str]:
    """The word pairs that straddle a comma or a full stop in ``text`` ("miến dong, mua máy")."""
    clauses = [fold(c).split() for c in _CLAUSE_BREAK.split(text)]
    clauses = [c for c in clauses if c]
    return {f"{a[-1]}_{b[0]}" for a, b in itertools.pairwise(clauses)}


def _idf(index: SearchIndex, gram: str, default: float) -> float:
    known = index.term_idf(gram)
    if known is not None:
        return known
    if "_" in gram:  # a pair the index never saw: as rare as its words together, no more
        return sum(_or(index.term_idf(w), default) for w in gram.split("_")) / 2
    return default


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def rank(
    index: SearchIndex,
    entry: Programme | Faq,
    question: str,
    kinds: tuple[str, ...] = (),
    wants_number: bool = False,
) -> list[ScoredPassage]:
    """The passages of ``entry`` (only of ``kinds`` when given) by how well they answer
    ``question``, best first; ties keep the card's order."""
    query = index.normalise(question)
    topic = _topic_terms(entry)
    default_idf = index.max_idf
    broken = _across_breaks(question)
    # Every word counts, filler too ("mấy tấm ảnh": "ảnh" folds like the filler "anh"); the rarity
    # of a word, not a filler list, keeps "anh/chị" from mattering.
    terms = dict(query.weighted_terms)
    for gram in _grams(list(query.repaired)):
        terms.setdefault(gram, BIGRAM_WEIGHT if "_" in gram else 1.0)
    weights = {
        gram: weight * _idf(index, gram, default_idf) * (TOPIC_WEIGHT if gram in topic else 1.0)
        for gram, weight in terms.items()
        if gram not in broken
    }
    scored = []
    for passage in passages(entry):
        if kinds and passage.kind not in kinds:
            continue
        grams = set(_grams(fold(passage.text).split()))
        score = sum(w for g, w in weights.items() if g in grams)
        if wants_number and _DIGIT.search(passage.text):
            score *= NUMBER_BONUS
        scored.append(ScoredPassage(passage, score))
    return sorted(scored, key=lambda s: -s.score)
