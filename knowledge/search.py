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

import itertools
import math
import sys
from array import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
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


@dataclass(frozen=True, slots=True)
class _Doc:
    entry: Indexed
    length: float
    phrases: tuple[str, ...]


_NOTHING: array[int] = array("i")
_NOTHING_TF: array[float] = array("d")


@dataclass(frozen=True, slots=True)
class _Csr:
    """Postings of every term, compressed: the documents of term ``t`` are
    ``docs[starts[t]:starts[t + 1]]`` (ascending), with ``values`` alongside when they carry one."""

    starts: NDArray[np.int64]
    docs: NDArray[np.int32]
    values: NDArray[np.float64] | None = None

    def span(self, term: int) -> slice:
        return slice(int(self.starts[term]), int(self.starts[term + 1]))

    def holds(self, term: int, doc: int) -> bool:
        part = self.docs[self.span(term)]
        at = int(np.searchsorted(part, doc))
        return at < len(part) and int(part[at]) == doc


def _compressed(docs: list[array[int]]) -> _Csr:
    """Per-term document lists as one compressed array (each list is released once copied)."""
    starts = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum([len(d) for d in docs], out=starts[1:])
    packed = np.empty(int(starts[-1]), dtype=np.int32)
    for term, column in enumerate(docs):
        packed[starts[term] : starts[term + 1]] = np.frombuffer(column, dtype=np.int32)
        docs[term] = _NOTHING
    return _Csr(starts, packed)


class _Builder:
    """Collects every term's postings as it goes (documents and term frequencies, one small array
    each per term: no large sort or copy at the end), folding each distinct text once."""

    def __init__(self) -> None:
        self.term_ids: dict[str, int] = {}
        self.term_docs: list[array[int]] = []
        self.term_tfs: list[array[float]] = []
        self.key_ids: dict[str, int] = {}
        self.key_docs: list[array[int]] = []
        self.folded: dict[str, tuple[str, tuple[int, ...], tuple[str, ...]]] = {}

    def _term(self, gram: str) -> int:
        term = self.term_ids.get(gram)
        if term is None:
            term = self.term_ids[gram] = len(self.term_ids)
            self.term_docs.append(array("i"))
            self.term_tfs.append(array("d"))
        return term

    def _key(self, gram: str) -> int:
        term = self.key_ids.get(gram)
        if term is None:
            term = self.key_ids[gram] = len(self.key_ids)
            self.key_docs.append(array("i"))
        return term

    def text(self, text: str) -> tuple[str, tuple[int, ...], tuple[str, ...]]:
        """``text`` folded, its grams' term ids, and its grams."""
        known = self.folded.get(text)
        if known is None:
            folded = fold(text)
            grams = tuple(sys.intern(g) for g in _grams(folded.split()))
            known = self.folded[text] = (folded, tuple(self._term(g) for g in grams), grams)
        return known

    def add(self, i: int, entry: Indexed) -> _Doc:
        terms: dict[int, float] = {}
        key_terms: dict[str, None] = {}
        for name, texts in _entry_fields(entry).items():
            weight = FIELD_WEIGHTS[name]
            for text in texts:
                _, ids, grams = self.text(text)
                for term in ids:
                    terms[term] = terms.get(term, 0.0) + weight
                if name in KEY_FIELDS:
                    key_terms.update(dict.fromkeys(grams))
        for term, tf in terms.items():
            self.term_docs[term].append(i)
            self.term_tfs[term].append(tf)
        for gram in key_terms:
            self.key_docs[self._key(gram)].append(i)
        texts = [entry.title, *getattr(entry, "aliases", []), *entry.questions]
        return _Doc(entry, sum(terms.values()), tuple(self.text(t)[0] for t in texts))


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


_EMPTY = _Csr(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float64))


@dataclass
class SearchIndex:
    """An immutable index over one knowledge base; build a new one to reload.

    The postings are compressed arrays (numpy): per term, the documents holding it and the term's
    whole BM25 impact on each, so scoring a question is a few vectorised additions however many
    entries there are. The key-field terms (title, aliases, keywords) are held the same way."""

    kb: KnowledgeBase
    docs: list[_Doc] = field(default_factory=list)
    avg_length: float = 1.0
    max_idf: float = 1.0
    vocabulary: frozenset[str] = frozenset()
    _term_ids: dict[str, int] = field(default_factory=dict)
    _idf: list[float] = field(default_factory=list)
    _postings: _Csr = _EMPTY
    _key_ids: dict[str, int] = field(default_factory=dict)
    _key_idf: list[float] = field(default_factory=list)
    _key_postings: _Csr = _EMPTY
    _phrases: list[str] = field(default_factory=list)  # every distinct phrase of the entries
    _phrase_positions: list[list[int]] = field(default_factory=list)  # where each one is said
    _choice_docs: list[int] = field(default_factory=list)  # the entry of each phrase said
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
        builder = _Builder()
        self.docs = [builder.add(i, e) for i, e in enumerate((*self.kb.entries, *self.kb.out_of_scope))]
        builder.folded.clear()
        n = len(self.docs)
        self._term_ids = builder.term_ids
        self._idf = [math.log(1 + (n - len(d) + 0.5) / (len(d) + 0.5)) for d in builder.term_docs]
        self.max_idf = max(self._idf, default=1.0)
        self.avg_length = sum(d.length for d in self.docs) / max(n, 1)
        postings = _compressed(builder.term_docs)
        self._postings = _Csr(postings.starts, postings.docs, self._impacts(postings, builder.term_tfs))
        self._key_ids = builder.key_ids
        self._key_idf = [
            math.log(1 + n / len(d)) * (BIGRAM_WEIGHT if "_" in t else 1.0)
            for t, d in zip(builder.key_ids, builder.key_docs, strict=True)
        ]
        self._key_postings = _compressed(builder.key_docs)
        distinct: dict[str, list[int]] = {}
        for i, doc in enumerate(self.docs):
            if not isinstance(doc.entry, OutOfScopeTopic):
                for phrase in doc.phrases:
                    distinct.setdefault(phrase, []).append(len(self._choice_docs))
                    self._choice_docs.append(i)
        self._phrases = list(distinct)
        self._phrase_positions = list(distinct.values())

    def _impacts(self, postings: _Csr, tfs: list[array[float]]) -> NDArray[np.float64]:
        """Each posting's whole BM25 impact on its document, ``idf * tf * (K1 + 1) / (tf + K1 *
        (1 - B + B * length / avg_length))``, term by term (each term's frequencies are released once
        used), in the same order of operations as one float at a time: the same bits."""
        lengths = np.array([d.length for d in self.docs], dtype=np.float64)
        impacts = np.empty(len(postings.docs), dtype=np.float64)
        for term, idf in enumerate(self._idf):
            span = postings.span(term)
            tf = np.frombuffer(tfs[term], dtype=np.float64)
            norm = K1 * (1 - B + B * lengths[postings.docs[span]] / self.avg_length)
            impacts[span] = idf * tf * (K1 + 1) / (tf + norm)
            tfs[term] = _NOTHING_TF
        return impacts

    def term_idf(self, term: str) -> float | None:
        """The term's inverse document frequency; None for a term no entry holds."""
        i = self._term_ids.get(term)
        return None if i is None else self._idf[i]

    def _build_language(self) -> None:
        unigrams = {t for t in self._term_ids if "_" not in t}
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

    def _bm25(self, q: NormalisedQuery, limit: int) -> list[tuple[int, float]]:
        """The ``limit`` best documents by BM25 with their scores, best first; among equal scores the
        one the question's terms reached first (as a dictionary of scores filled term by term and
        ranked by a stable sort gives)."""
        postings = self._postings
        assert postings.values is not None
        scores = np.zeros(len(self.docs), dtype=np.float64)
        spans: list[slice] = []  # the postings of the question's terms the index holds, in order
        for term, qweight in q.weighted_terms.items():
            i = self._term_ids.get(term)
            if i is not None:
                span = postings.span(i)
                scores[postings.docs[span]] += qweight * postings.values[span]  # distinct documents
                spans.append(span)
        chosen = np.flatnonzero(scores)  # every impact is positive: reached documents only
        if len(chosen) > limit:
            kth = np.partition(scores[chosen], len(chosen) - limit)[len(chosen) - limit]
            above, tied = chosen[scores[chosen] > kth], chosen[scores[chosen] == kth]
            reached = self._reached(tied, spans)
            chosen = np.concatenate(
                [above, sorted(tied.tolist(), key=reached.__getitem__)[: limit - len(above)]]
            )
        reached = self._reached(chosen, spans)
        best = sorted(chosen.tolist(), key=lambda d: (-scores[d], reached[d]))
        return [(d, float(scores[d])) for d in best]

    def _reached(self, docs: NDArray[np.int64], spans: list[slice]) -> dict[int, tuple[int, int]]:
        """When the question's terms first reached each of ``docs``: (the term's place, the document)."""
        when: dict[int, tuple[int, int]] = {}
        for k, span in enumerate(spans):
            if not len(docs):
                break
            part = self._postings.docs[span]
            at = np.minimum(np.searchsorted(part, docs), len(part) - 1)
            hit = part[at] == docs
            when.update((d, (k, d)) for d in docs[hit].tolist())
            docs = docs[~hit]
        return when

    def _key_score(self, q: NormalisedQuery, doc: int) -> float:
        """How much of the question the entry's title, aliases and keywords cover (rarer terms count more)."""
        total = 0.0
        for gram in set(_grams(list(q.tokens))):
            term = self._key_ids.get(gram)
            if term is not None and self._key_postings.holds(term, doc):
                total += self._key_idf[term]
        return total

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
        best = self._bm25(q, FUZZY_CANDIDATES)
        if not best:
            return SearchResult(query, False, self._fuzzy_only(q, limit))
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
        key_score = self._key_score(q, i)
        return (bm25 >= MIN_CONFIDENT_BM25 and key_score >= MIN_CONFIDENT_KEY_SCORE) or (
            len(q.tokens) <= SHORT_QUESTION_TOKENS and key_score >= MIN_CONFIDENT_KEY_SCORE_SHORT
        )

    def _best_phrases(self, text: str, limit: int) -> list[tuple[float, int]]:
        """The ``limit`` phrases of entries closest to ``text`` (token_sort_ratio, at least 40) as
        (score, position among every entry's phrases), best first, equal scores in position order:
        what ``process.extract`` over every phrase gives, each distinct phrase scored once (entries
        made for many provinces repeat their example questions)."""
        found = process.extract(
            text, self._phrases, scorer=fuzz.token_sort_ratio, limit=None, score_cutoff=40
        )
        hits = sorted((-score, position) for _, score, k in found for position in self._phrase_positions[k])
        return [(-negative, position) for negative, position in hits[:limit]]

    def _fuzzy_only(self, q: NormalisedQuery, limit: int) -> tuple[Match, ...]:
        if not q.text:
            return ()
        seen: dict[int, float] = {}
        for score, position in self._best_phrases(q.text, limit * 4):
            i = self._choice_docs[position]
            seen[i] = max(seen.get(i, 0.0), score)
        top = sorted(seen.items(), key=lambda kv: kv[1], reverse=True)[:limit]
        matches = []
        for i, s in top:
            entry = self.docs[i].entry
            if not isinstance(entry, OutOfScopeTopic):  # never: they are not among the choices
                matches.append(Match(entry.id, str(entry.category), entry.title, round(0.25 * s, 1)))
        return tuple(matches)
