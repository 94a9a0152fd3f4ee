"""The passages of a knowledge entry, and the ones that answer a specific question about it.

A passage is one sentence of a summary or an answer, one supported item, one condition, one
document, one step, the place to apply or the timing. Search finds the entry ("hội chợ nước
ngoài"); the passages answer the detail asked about it: "mấy lần một năm" finds "tối đa 2 lần mỗi
năm", "máy cũ có được không" finds "máy phải là máy mới", "mấy tấm ảnh" finds "3 ảnh màu".

A passage scores the rarity (idf) of the question's words and word pairs it contains, as the search
reads them (typos repaired, synonyms added). Words of the entry's own title, aliases and keywords
count a quarter: they say which entry, not which detail.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from knowledge.models import Faq, OutOfScopeTopic, Programme
from knowledge.search import SearchIndex
from knowledge.text import fold

TOPIC_WEIGHT = 0.25  # a word of the entry's title, aliases or keywords
BIGRAM_WEIGHT = 1.5
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZĐÀ-Ỹ0-9“\"(])|\n+|\s*•\s*|;\s+(?=[A-ZĐÀ-Ỹ])")


@dataclass(frozen=True)
class Passage:
    kind: str  # summary, supported, condition, level, document, step, where, timing, answer
    text: str


@dataclass(frozen=True)
class ScoredPassage:
    passage: Passage
    score: float


def sentences(text: str) -> list[str]:
    """The sentences and bullet items of ``text``, stripped; a lead ending in ":" stays with none."""
    parts = [p.strip(" -\t") for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if len(p) > 3]


def passages(entry: Programme | Faq) -> list[Passage]:
    """Every passage of ``entry``, in the order the card shows them."""
    if isinstance(entry, Faq):
        return [Passage("answer", s) for s in sentences(entry.answer)]
    found = [Passage("summary", s) for s in sentences(entry.summary)]
    found += [Passage("supported", item) for item in entry.what_is_supported]
    found += [Passage("condition", item) for item in entry.conditions]
    if entry.level_note:
        found += [Passage("level", s) for s in sentences(entry.level_note)]
    found += [Passage("document", d.text) for d in entry.documents]
    found += [Passage("step", step) for step in entry.how_to_apply]
    found.append(Passage("where", entry.where_to_apply))
    found += [Passage("timing", s) for s in sentences(entry.timing)]
    return found


def _grams(words: list[str]) -> set[str]:
    return set(words) | {f"{a}_{b}" for a, b in itertools.pairwise(words)}


def _topic_terms(entry: Programme | Faq | OutOfScopeTopic) -> set[str]:
    terms: set[str] = set()
    for text in [entry.title, *getattr(entry, "aliases", []), *entry.keywords]:
        terms |= _grams(fold(text).split())
    return terms


def rank(
    index: SearchIndex,
    entry: Programme | Faq,
    question: str,
    kinds: tuple[str, ...] = (),
) -> list[ScoredPassage]:
    """The passages of ``entry`` (only of ``kinds`` when given) by how well they answer
    ``question``, best first; ties keep the card's order."""
    query = index.normalise(question)
    topic = _topic_terms(entry)
    default_idf = max(index.idf.values(), default=1.0)
    weights = {
        gram: weight * index.idf.get(gram, default_idf) * (TOPIC_WEIGHT if gram in topic else 1.0)
        for gram, weight in query.weighted_terms.items()
    }
    scored = []
    for passage in passages(entry):
        if kinds and passage.kind not in kinds:
            continue
        grams = _grams(fold(passage.text).split())
        scored.append(ScoredPassage(passage, sum(w for g, w in weights.items() if g in grams)))
    return sorted(scored, key=lambda s: -s.score)
