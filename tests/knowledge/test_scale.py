"""The knowledge base at national size answers exactly as a full scan would.

The search's compressed postings and its choice of the best BM25 candidates are compared with the
plain dictionary-of-scores scan they replace (the same impacts, bit for bit, and the same candidates
in the same order, ties included), and the eligibility index (programmes grouped by criteria, ruled
out by scope, legal form and activity) with evaluating every programme one by one, on the real
knowledge base and on a generated one of many provinces' near-identical entries (``bench/kb_generate``),
where ties and shared criteria abound. Speed is measured by ``bench/kb_scale.py``, never here.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from rapidfuzz import fuzz, process

from bench.kb_generate import generated_files
from knowledge import eligibility
from knowledge.catalog import Catalog, catalog_of
from knowledge.eligibility import Profile, Progress, Status, Verdict
from knowledge.files import load, read_folder, write_folder
from knowledge.loader import KnowledgeError, load_files, load_knowledge
from knowledge.models import Activity, LegalForm, OutOfScopeTopic, PlaceType, Programme
from knowledge.search import BIGRAM_WEIGHT, FIELD_WEIGHTS, FUZZY_CANDIDATES, K1, KEY_FIELDS, B, SearchIndex
from knowledge.search import _entry_fields as entry_fields
from knowledge.search import _grams as grams
from knowledge.text import fold
from knowledge.yamlio import _FastLoader, _Yaml12Loader, load_yaml

TODAY = date(2026, 11, 23)
DATA = Path(__file__).resolve().parents[1] / "data"
GENERATED_SIZE = 400


def _questions() -> list[str]:
    rows = []
    for name in ("search_dev.tsv", "search_offtopic.tsv"):
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                rows.append(line.split("\t", 1)[1])
    return rows


QUESTIONS = _questions()


@pytest.fixture(scope="module")
def generated() -> Catalog:
    return catalog_of(load(generated_files(GENERATED_SIZE), TODAY))


@pytest.fixture(params=["real", "generated"])
def any_catalog(request: pytest.FixtureRequest, catalog: Catalog) -> Catalog:
    return catalog if request.param == "real" else request.getfixturevalue("generated")


# --- search ---


def reference_postings(index: SearchIndex) -> tuple[dict[str, list[tuple[int, float]]], dict[str, float]]:
    """The postings and key-field idf as the index built them one float at a time, in dictionaries."""
    postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
    key_df: Counter[str] = Counter()
    lengths = []
    for i, doc in enumerate(index.docs):
        terms: defaultdict[str, float] = defaultdict(float)
        key_terms: set[str] = set()
        for name, texts in entry_fields(doc.entry).items():
            for text in texts:
                found = grams(fold(text).split())
                for gram in found:
                    terms[gram] += FIELD_WEIGHTS[name]
                if name in KEY_FIELDS:
                    key_terms.update(found)
        lengths.append(sum(terms.values()))
        key_df.update(key_terms)
        for term, tf in terms.items():
            postings[term].append((i, tf))
    n = len(index.docs)
    average = sum(lengths) / n
    idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in postings.items()}
    impacts = {
        term: [
            (i, idf[term] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * lengths[i] / average))) for i, tf in plist
        ]
        for term, plist in postings.items()
    }
    key_idf = {t: math.log(1 + n / df) * (BIGRAM_WEIGHT if "_" in t else 1.0) for t, df in key_df.items()}
    return impacts, key_idf


def full_scan(
    postings: dict[str, list[tuple[int, float]]], weighted_terms: dict[str, float], limit: int
) -> list[tuple[int, float]]:
    """Every document's BM25 in a dictionary, the best ``limit`` by a stable ranking."""
    scores: dict[int, float] = defaultdict(float)
    for term, qweight in weighted_terms.items():
        for i, impact in postings.get(term, ()):
            scores[i] += qweight * impact
    return heapq.nlargest(limit, scores.items(), key=lambda kv: kv[1])


def test_compressed_postings_hold_the_same_impacts_bit_for_bit(any_catalog: Catalog) -> None:
    index = any_catalog.index
    impacts, key_idf = reference_postings(index)
    postings = index._postings
    assert postings.values is not None
    for term, plist in impacts.items():
        span = postings.span(index._term_ids[term])
        assert list(zip(postings.docs[span].tolist(), postings.values[span].tolist(), strict=True)) == plist
        assert index.term_idf(term) is not None
    assert len(index._term_ids) == len(impacts)
    assert {t: index._key_idf[i] for t, i in index._key_ids.items()} == key_idf


def test_the_chosen_candidates_are_the_full_scans_ties_included(any_catalog: Catalog) -> None:
    index = any_catalog.index
    impacts, _ = reference_postings(index)
    for question in QUESTIONS:
        q = index.normalise(question)
        for limit in (1, FUZZY_CANDIDATES, 40):
            assert index._bm25(q, limit) == full_scan(impacts, q.weighted_terms, limit), question


def test_many_equal_scores_keep_the_first_reached(generated: Catalog) -> None:
    # Entries copied for many provinces score alike: the cut at the last candidate falls among ties.
    index = generated.index
    impacts, _ = reference_postings(index)
    tied = 0
    for question in QUESTIONS:
        q = index.normalise(question)
        scan = full_scan(impacts, q.weighted_terms, len(index.docs))
        if len(scan) > FUZZY_CANDIDATES and scan[FUZZY_CANDIDATES - 1][1] == scan[FUZZY_CANDIDATES][1]:
            tied += 1
            assert index._bm25(q, FUZZY_CANDIDATES) == scan[:FUZZY_CANDIDATES]
    assert tied > 0


def test_search_results_equal_the_full_scans(any_catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    index = any_catalog.index
    impacts, _ = reference_postings(index)
    questions = [*QUESTIONS[::3], "xyzzy qwerty", "gom su bat trang"]
    expected = {}
    with monkeypatch.context() as patch:
        patch.setattr(
            SearchIndex, "_bm25", lambda self, q, limit: full_scan(impacts, q.weighted_terms, limit)
        )
        for question in questions:
            for province in (None, "Nghệ An"):
                expected[question, province] = index.search(question, province=province)
    for (question, province), result in expected.items():
        assert index.search(question, province=province) == result, question


def test_the_top_answer_of_the_full_scan_is_never_lost(generated: Catalog) -> None:
    index = generated.index
    impacts, _ = reference_postings(index)
    for question in QUESTIONS:
        q = index.normalise(question)
        everything = full_scan(impacts, q.weighted_terms, len(index.docs))
        if everything:
            assert everything[0] in index._bm25(q, FUZZY_CANDIDATES)


# --- eligibility ---


def profiles(count: int, seed: int = 15) -> list[Profile]:
    """Every legal form and activity, with and without a province (current, old name, unknown),
    and a random sample of the rest."""
    rng = random.Random(seed)
    forms: list[LegalForm | None] = [None, *LegalForm]
    activities: list[Activity | None] = [None, *Activity]
    provinces = [None, "Nghệ An", "Hà Nội", "Thái Bình", "Huế", "nowhere at all"]
    flags: list[bool | None] = [None, True, False]
    out = [
        Profile(legal_form=form, activity=activity, province=province)
        for form, activity, province in itertools.product(forms, activities, provinces[:3])
    ]
    for _ in range(count):
        out.append(
            Profile(
                legal_form=rng.choice(forms),
                activity=rng.choice(activities),
                province=rng.choice(provinces),
                place_type=rng.choice([None, *PlaceType]),
                craft_village=rng.choice(flags),
                difficult_area=rng.choice(flags),
                new_to_area=rng.choice(flags),
                technology_line=rng.choice(flags),
                cluster_investor=rng.choice(flags),
                investment_cost_vnd=rng.choice([None, 50_000_000, 900_000_000]),
            )
        )
    return out


def one_by_one(catalog: Catalog, profile: Profile) -> list[Verdict]:
    return [catalog.evaluator.evaluate(p, profile, TODAY) for p in catalog.kb.programmes]


def shown(verdict: Verdict) -> dict[str, Any]:
    return {**verdict.to_dict(), "outcomes": verdict.outcomes, "level": verdict.level}


def test_a_steps_progress_equals_evaluating_every_programme(any_catalog: Catalog) -> None:
    for profile in profiles(60):
        expected = Progress.of(one_by_one(any_catalog, profile))
        assert any_catalog.evaluator.progress(profile, TODAY) == expected, profile


def test_verdicts_and_likely_programmes_equal_evaluating_every_programme(any_catalog: Catalog) -> None:
    for profile in profiles(25, seed=235):
        everything = one_by_one(any_catalog, profile)
        for scopes in (None, ("national",), ("national", profile.province or "Nghệ An")):
            wanted = [v for v in everything if scopes is None or v.programme.scope in scopes]
            got = any_catalog.evaluator.verdicts(profile, TODAY, scopes)
            assert [shown(v) for v in got] == [shown(v) for v in wanted], (profile, scopes)
            likely = [v.programme for v in wanted if v.status == Status.ELIGIBLE]
            assert any_catalog.evaluator.eligible(profile, TODAY, scopes) == likely, (profile, scopes)


def test_a_step_evaluates_only_what_the_answers_leave_possible(
    generated: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluated: list[str] = []
    original = eligibility._outcomes

    def counting(scope: str, criteria: list[Any], ctx: eligibility.Context) -> Any:
        evaluated.append(scope)
        return original(scope, criteria, ctx)

    monkeypatch.setattr(eligibility, "_outcomes", counting)
    programmes: list[Programme] = generated.kb.programmes
    generated.evaluator.progress(Profile(), TODAY)
    assert 0 < len(evaluated) < len(programmes)  # each distinct list of criteria once per scope
    evaluated.clear()
    known = Profile(legal_form=LegalForm.HOUSEHOLD_BUSINESS, activity=Activity.PRODUCTION, province="Nghệ An")
    generated.evaluator.progress(known, TODAY)
    assert set(evaluated) <= {"national", "Nghệ An"}
    in_play = [p for p in programmes if p.scope in ("national", "Nghệ An")]
    assert 0 < len(evaluated) < len(in_play)
    evaluated.clear()
    generated.evaluator.progress(known.model_copy(update={"legal_form": LegalForm.LARGE_ENTERPRISE}), TODAY)
    assert len(evaluated) < len(in_play) / 2  # a large enterprise is excluded almost everywhere


# --- loading ---


def test_the_fast_yaml_parser_reads_every_file_as_the_pure_python_one(generated: Catalog) -> None:
    import yaml

    files = generated_files(120)
    for path, text in files.items():
        assert yaml.load(text, Loader=_FastLoader) == yaml.load(text, Loader=_Yaml12Loader), path
    broken = "title: [unclosed\nkind: faq\n"
    with pytest.raises(yaml.YAMLError) as fast:
        load_yaml(broken)
    with pytest.raises(yaml.YAMLError) as slow:
        yaml.load(broken, Loader=_Yaml12Loader)
    assert str(fast.value) == str(slow.value)


def test_entries_share_their_repeated_texts(generated: Catalog) -> None:
    documents = [b.document for e in generated.kb.entries for b in e.legal_basis]
    assert len({id(d) for d in documents}) == len(set(documents))


def test_stored_files_load_without_a_folder_exactly_as_the_folder(tmp_path: Path) -> None:
    files = read_folder()
    assert load_files(files, TODAY) == load_knowledge(today=TODAY)
    broken = files | {
        "programmes/machinery-national.yaml": files["programmes/machinery-national.yaml"].replace(
            "kind: programme", "kind: programme\nsurprise: 1"
        ),
        "faq/odd.yaml": "- not a mapping\n",
        "faq/bad-yaml.yaml": "title: [unclosed\n",
    }
    write_folder(broken, tmp_path)
    with pytest.raises(KnowledgeError) as from_files:
        load_files(broken, TODAY)
    with pytest.raises(KnowledgeError) as from_folder:
        load_knowledge(tmp_path, TODAY)
    assert from_files.value.problems == from_folder.value.problems
    assert len(from_files.value.problems) >= 3


def test_fuzzy_matching_scores_each_distinct_phrase_once_with_the_same_result(any_catalog: Catalog) -> None:
    index = any_catalog.index
    choices = [p for d in index.docs if not isinstance(d.entry, OutOfScopeTopic) for p in d.phrases]
    texts = [index.normalise(q).text for q in QUESTIONS[::2]] + ["xyzzy qwerty", "zzzz", "may", "ho tro gi"]
    for text in texts:
        for limit in (4, 20):
            found = process.extract(text, choices, scorer=fuzz.token_sort_ratio, limit=limit, score_cutoff=40)
            assert index._best_phrases(text, limit) == [(score, k) for _, score, k in found], text
