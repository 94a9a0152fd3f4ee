"""Vietnamese question search over the knowledge base.

How a question is scored:

1. It is folded (``knowledge.text.fold``), chat abbreviations are expanded, raw Telex/VNI words are
   decoded, joined words are split ("hotro") and misspelt words are corrected against the index
   vocabulary with rapidfuzz; filler ("dạ", "cho em hỏi"...) is dropped.
2. Synonym groups from ``synonyms.yaml`` add the other phrasings of any phrase the question contains.
3. Each entry is scored with BM25 over folded syllables and syllable pairs, weighting fields (title
   and aliases above keywords above example questions above body text).
4. The best candidates are re-ranked with rapidfuzz against their titles and example questions.
5. Out-of-scope topics (``out_of_scope.yaml``: loans, taxes, crops...) are indexed in the same
   space; when one scores above the best entry, or the entry is not confident and the topic is
   close enough (or far ahead on BM25), the result names it (``out_of_scope``) so the bot can say
   who really handles it.

``confident`` is calibrated on ``tests/data/search_dev.tsv`` and ``search_offtopic.tsv``
(``bench/search_accuracy.py``): an answer is confident when the best entry's raw BM25 score and its
key-field score (the question's terms found in its title, aliases and keywords) both clear a threshold,
or when the question is, word for word, one an entry lists (its title, an alias or an example).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process

from knowledge.loader import KnowledgeBase
from knowledge.models import Faq, OutOfScopeTopic, Programme
from knowledge.text import decode_typing, fold

# Field weights: how much one occurrence of a term in each field counts.
FIELD_WEIGHTS = {"title": 3.0, "aliases": 2.5, "keywords": 2.5, "questions": 1.2, "body": 0.3}
K1 = 1.2
B = 0.5
SYNONYM_WEIGHT = 0.5
BIGRAM_WEIGHT = 1.5
FUZZY_CANDIDATES = 12
KEY_FIELDS = ("title", "aliases", "keywords")
# Calibrated on tests/data/search_dev.tsv and search_offtopic.tsv (bench/search_accuracy.py):
# confident when the best entry's BM25 and its key-field score (question terms found in its title,
# aliases or keywords, weighted by how rare they are among key fields) both clear these.
# Short questions ("may moc", "khuyen cong la gi") score little BM25, so they need a key score only.
MIN_CONFIDENT_BM25 = 20.0
MIN_CONFIDENT_KEY_SCORE = 8.0
SHORT_QUESTION_TOKENS = 4
MIN_CONFIDENT_KEY_SCORE_SHORT = 10.0
# An out-of-scope topic whose BM25 is this many times the best entry's wins over an unsure entry
# even when its own key-field score is low ("co cho vay 500tr ko, lai bn": loans, not machinery).
OUT_OF_SCOPE_LEAD = 1.5


_MONEY_UNITS = (["trieu"], ["ty"], ["nghin"], ["dong"])


@dataclass(frozen=True)
class Match:
    id: str
    category: str
    title: str
    score: float


@dataclass(frozen=True)
class SearchResult:
    query: str
    confident: bool
    matches: tuple[Match, ...]
    out_of_scope: Match | None = None

    def to_dict(self) -> dict[str, Any]:
        """The design's ``ask --json`` shape (exactly these keys)."""
        return {
            "query": self.query,
            "confident": self.confident,
            "matches": [
                {"id": m.id, "category": m.category, "title": m.title, "score": m.score} for m in self.matches
            ],
        }


Indexed = Programme | Faq | OutOfScopeTopic


@dataclass(frozen=True)
class _Doc:
    entry: Indexed
    terms: dict[str, float]
    length: float
    phrases: tuple[str, ...]
    key_terms: frozenset[str]


@dataclass(frozen=True)
class NormalisedQuery:
    """The question as the index sees it."""

    tokens: tuple[str, ...]
    weighted_terms: dict[str, float]
    province: str | None = None
    repaired: tuple[str, ...] = ()  # every word, Telex and typos repaired, fillers kept

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    @property
    def repaired_text(self) -> str:
        return " ".join(self.repaired or self.tokens)


def _grams(tokens: list[str]) -> list[str]:
    return tokens + [f"{a}_{b}" for a, b in itertools.pairwise(tokens)]


def _entry_fields(entry: Indexed) -> dict[str, list[str]]:
    body: list[str] = []
    if isinstance(entry, Programme):
        body = [entry.summary, *entry.what_is_supported, *entry.conditions]
    else:
        body = [entry.answer]
    return {
        "title": [entry.title],
        "aliases": list(getattr(entry, "aliases", [])),
        "keywords": list(entry.keywords),
        "questions": list(entry.questions),
        "body": body,
    }


@dataclass
class SearchIndex:
    """An immutable index over one knowledge base; build a new one to reload."""

    kb: KnowledgeBase
    docs: list[_Doc] = field(default_factory=list)
    postings: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    idf: dict[str, float] = field(default_factory=dict)
    key_idf: dict[str, float] = field(default_factory=dict)
    avg_length: float = 1.0
    vocabulary: frozenset[str] = frozenset()
    _vocab_list: list[str] = field(default_factory=list)
    _abbreviations: dict[str, list[str]] = field(default_factory=dict)
    _fillers: list[tuple[str, ...]] = field(default_factory=list)
    _synonyms: list[list[tuple[str, ...]]] = field(default_factory=list)

    @classmethod
    def build(cls, kb: KnowledgeBase) -> SearchIndex:
        index = cls(kb=kb)
        index._build_docs()
        index._build_language()
        return index

    # --- building ---

    def _build_docs(self) -> None:
        postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        key_df: Counter[str] = Counter()
        for i, entry in enumerate((*self.kb.entries, *self.kb.out_of_scope)):
            terms: defaultdict[str, float] = defaultdict(float)
            key_terms: set[str] = set()
            for name, texts in _entry_fields(entry).items():
                weight = FIELD_WEIGHTS[name]
                for text in texts:
                    grams = _grams(fold(text).split())
                    for gram in grams:
                        terms[gram] += weight
                    if name in KEY_FIELDS:
                        key_terms.update(grams)
            phrases = tuple(fold(t) for t in [entry.title, *getattr(entry, "aliases", []), *entry.questions])
            self.docs.append(_Doc(entry, dict(terms), sum(terms.values()), phrases, frozenset(key_terms)))
            key_df.update(key_terms)
            for term, tf in terms.items():
                postings[term].append((i, tf))
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in postings.items()}
        self.avg_length = sum(d.length for d in self.docs) / max(n, 1)
        # Each posting holds its term's whole BM25 impact on the document, so a query only adds numbers.
        self.postings = {
            term: [(i, self.idf[term] * tf * (K1 + 1) / (tf + self._length_norm(i))) for i, tf in plist]
            for term, plist in postings.items()
        }
        self.key_idf = {
            t: math.log(1 + n / df) * (BIGRAM_WEIGHT if "_" in t else 1.0) for t, df in key_df.items()
        }

    def _length_norm(self, i: int) -> float:
        return K1 * (1 - B + B * self.docs[i].length / self.avg_length)

    def _build_language(self) -> None:
        unigrams = {t for t in self.postings if "_" not in t}
        syn = self.kb.synonyms
        for group in syn.groups:
            for term in group.terms:
                unigrams.update(fold(term).split())
        self._abbreviations = {fold(k): fold(v).split() for k, v in syn.abbreviations.items()}
        for expansion in self._abbreviations.values():
            unigrams.update(expansion)
        self.vocabulary = frozenset(unigrams)
        self._vocab_list = sorted(w for w in unigrams if len(w) >= 3 and w.isalpha())
        self._fillers = sorted(
            (tuple(fold(f).split()) for f in syn.fillers if fold(f)), key=len, reverse=True
        )
        self._synonyms = [[tuple(fold(t).split()) for t in g.terms] for g in syn.groups]

    # --- query normalisation ---

    def _fix_word(self, word: str) -> list[str]:
        if word in self._abbreviations:
            return self._abbreviations[word]
        if word in self.vocabulary or word.isdigit():
            return [word]
        decoded = decode_typing(word, self.vocabulary)
        if decoded:
            return [decoded]
        if len(word) >= 5:
            for cut in range(2, len(word) - 1):
                left, right = word[:cut], word[cut:]
                if left in self.vocabulary and right in self.vocabulary and len(left) > 1 and len(right) > 1:
                    return [left, right]
        if len(word) >= 4 and word.isalpha():
            best = process.extractOne(word, self._vocab_list, scorer=fuzz.ratio, score_cutoff=80)
            if best:
                return [best[0]]
        return [word]

    def _drop_fillers(self, tokens: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(tokens):
            for filler in self._fillers:
                if tuple(tokens[i : i + len(filler)]) == filler:
                    i += len(filler)
                    break
            else:
                out.append(tokens[i])
                i += 1
        return out

    def normalise(self, query: str) -> NormalisedQuery:
        tokens: list[str] = []
        previous = ""
        for word in fold(query).split():
            is_unit = self._abbreviations.get(word) in _MONEY_UNITS
            # "cu", "tr" are money units only after a number ("200 cu"); "máy cũ" is an old machine.
            tokens.extend(self._fix_word(word) if not is_unit or previous[-1:].isdigit() else [word])
            previous = word
        content = self._drop_fillers(tokens) or tokens
        weighted: dict[str, float] = {}
        for gram in _grams(content):
            weighted[gram] = max(weighted.get(gram, 0.0), BIGRAM_WEIGHT if "_" in gram else 1.0)
        padded = f" {' '.join(content)} "
        for group in self._synonyms:
            present = [t for t in group if f" {' '.join(t)} " in padded]
            if not present:
                continue
            for phrase in group:
                if phrase in present:
                    continue
                for gram in _grams(list(phrase)):
                    weighted.setdefault(gram, SYNONYM_WEIGHT * (BIGRAM_WEIGHT if "_" in gram else 1.0))
        provinces = self.kb.provinces
        resolution = (provinces.resolve(query) or provinces.resolve(" ".join(tokens))) if content else None
        province = resolution.province.name if resolution and not resolution.ambiguous else None
        return NormalisedQuery(tuple(content), weighted, province, tuple(tokens))

    # --- scoring ---

    def _bm25(self, q: NormalisedQuery) -> dict[int, float]:
        scores: dict[int, float] = defaultdict(float)
        for term, qweight in q.weighted_terms.items():
            for i, impact in self.postings.get(term, ()):
                scores[i] += qweight * impact
        return scores

    def _key_score(self, q: NormalisedQuery, doc: _Doc) -> float:
        """How much of the question the entry's title, aliases and keywords cover (rarer terms count more)."""
        return sum(self.key_idf[g] for g in set(_grams(list(q.tokens))) if g in doc.key_terms)

    def _scope_factor(self, entry: Indexed, province: str | None) -> float:
        scope = getattr(entry, "scope", "national")
        if scope == "national":
            return 1.0
        return 1.15 if province == scope else 0.6

    def _match(self, i: int, combined: float) -> Match:
        entry = self.docs[i].entry
        category = str(getattr(entry, "category", "out_of_scope"))
        return Match(entry.id, category, entry.title, min(100.0, round(100 * combined, 1)))

    def search(self, query: str, limit: int = 5, province: str | None = None) -> SearchResult:
        """Rank entries for ``query``; ``province`` (from the user's profile) favours local entries."""
        q = self.normalise(query)
        province = q.province or province
        raw = self._bm25(q)
        if not raw:
            return SearchResult(query, False, self._fuzzy_only(q, limit))
        best = heapq.nlargest(FUZZY_CANDIDATES, raw.items(), key=lambda kv: kv[1])
        ranked: list[tuple[float, int, float]] = []
        for i, bm25 in best:
            doc = self.docs[i]
            fuzzy = max(
                (
                    0.6 * fuzz.token_sort_ratio(q.text, p) + 0.4 * fuzz.partial_ratio(q.text, p)
                    for p in doc.phrases
                ),
                default=0.0,
            )
            combined = 0.75 * bm25 / (bm25 + 10.0) + 0.25 * fuzzy / 100.0
            combined *= self._scope_factor(doc.entry, province)
            ranked.append((combined, i, bm25))
        ranked.sort(reverse=True)
        entries = [r for r in ranked if not isinstance(self.docs[r[1]].entry, OutOfScopeTopic)]
        topics = [r for r in ranked if isinstance(self.docs[r[1]].entry, OutOfScopeTopic)]
        if not entries:
            outside = None
            if topics and (
                self._confident(q, topics[0][1], topics[0][2]) or topics[0][2] >= MIN_CONFIDENT_BM25
            ):
                outside = self._match(topics[0][1], topics[0][0])
            return SearchResult(query, False, self._fuzzy_only(q, limit), outside)
        # A question an entry lists word for word (a phrasing staff added from the learning queue)
        # is answered by that entry, confidently.
        said = fold(query)
        listed = next((r for r in entries if said in self.docs[r[1]].phrases), None)
        if listed is not None:
            entries.remove(listed)
            entries.insert(0, listed)
        top_combined, top_i, top_bm25 = entries[0]
        confident = listed is not None or self._confident(q, top_i, top_bm25)
        outside = None
        if topics:
            # A topic must be a confident match on its own, and beat the best entry (or find none).
            topic_combined, topic_i, topic_bm25 = topics[0]
            clear_lead = topic_bm25 >= max(MIN_CONFIDENT_BM25, OUT_OF_SCOPE_LEAD * top_bm25)
            if (
                self._confident(q, topic_i, topic_bm25) and (topic_combined > top_combined or not confident)
            ) or (clear_lead and not confident):
                outside = self._match(topic_i, topic_combined)
        matches = tuple(self._match(i, c) for c, i, _ in entries[:limit])
        return SearchResult(query, confident, matches, outside)

    def _confident(self, q: NormalisedQuery, i: int, bm25: float) -> bool:
        key_score = self._key_score(q, self.docs[i])
        return (bm25 >= MIN_CONFIDENT_BM25 and key_score >= MIN_CONFIDENT_KEY_SCORE) or (
            len(q.tokens) <= SHORT_QUESTION_TOKENS and key_score >= MIN_CONFIDENT_KEY_SCORE_SHORT
        )

    def _fuzzy_only(self, q: NormalisedQuery, limit: int) -> tuple[Match, ...]:
        if not q.text:
            return ()
        choices = {
            (i, j): p
            for i, d in enumerate(self.docs)
            if not isinstance(d.entry, OutOfScopeTopic)
            for j, p in enumerate(d.phrases)
        }
        found = process.extract(
            q.text, choices, scorer=fuzz.token_sort_ratio, limit=limit * 4, score_cutoff=40
        )
        seen: dict[int, float] = {}
        for _, score, (i, _j) in found:
            seen[i] = max(seen.get(i, 0.0), score)
        top = sorted(seen.items(), key=lambda kv: kv[1], reverse=True)[:limit]
        matches = []
        for i, s in top:
            entry = self.docs[i].entry
            if not isinstance(entry, OutOfScopeTopic):  # never: they are not among the choices
                matches.append(Match(entry.id, str(entry.category), entry.title, round(0.25 * s, 1)))
        return tuple(matches)
