"""Search accuracy and speed.

Prints top-1 / top-3 category accuracy and the confident rate on each labelled set under
``tests/data`` (``search_eval.tsv`` is held out: never tune on it; ``search_dev.tsv`` is for tuning),
how many off-topic questions are correctly not confident, and p50/p95 time per query on the real
knowledge base and on one padded to 300 entries with province-scoped copies.

    .venv/bin/python -m bench.search_accuracy [--show-misses dev|eval]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from knowledge.loader import KnowledgeBase, load_knowledge
from knowledge.search import SearchIndex

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def read_set(name: str) -> list[tuple[str, str]]:
    rows = []
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        category, question = line.split("\t", 1)
        rows.append((category.strip(), question.strip()))
    return rows


def padded(kb: KnowledgeBase, size: int) -> KnowledgeBase:
    """The knowledge base grown to ``size`` entries with province-scoped copies of its programmes."""
    entries = list(kb.entries)
    provinces = kb.provinces.names()
    programmes = kb.programmes
    i = 0
    while len(entries) < size:
        source = programmes[i % len(programmes)]
        province = provinces[i % len(provinces)]
        entries.append(source.model_copy(update={"id": f"{source.id}-local-{i}", "scope": province}))
        i += 1
    return replace(kb, entries=tuple(entries), by_id={e.id: e for e in entries})


def accuracy(index: SearchIndex, rows: list[tuple[str, str]], show_misses: bool) -> dict[str, float]:
    top1 = top3 = confident = 0
    for category, question in rows:
        result = index.search(question)
        # A question answered as out of scope is not answered with its topic: a miss.
        cats = ["out_of_scope"] if result.out_of_scope else [m.category for m in result.matches]
        top1 += bool(cats) and cats[0] == category
        top3 += category in cats[:3]
        confident += result.confident
        if show_misses and (not cats or cats[0] != category):
            got = f"{cats[0]}:{result.matches[0].id}" if cats else "-"
            print(f"  MISS want={category:20} got={got:45} conf={result.confident} | {question}")
    n = len(rows)
    return {"n": n, "top1": top1 / n, "top3": top3 / n, "confident": confident / n}


def timings(index: SearchIndex, questions: list[str], rounds: int = 3) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        for q in questions:
            start = time.perf_counter()
            index.search(q)
            samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-misses", choices=["dev", "eval"], help="print the misses of one set")
    args = parser.parse_args()
    kb = load_knowledge()
    index = SearchIndex.build(kb)
    print(f"knowledge base: {len(kb.entries)} entries")
    all_questions = []
    for name in ("search_dev.tsv", "search_eval.tsv"):
        path = DATA / name
        if not path.exists():
            print(f"{name}: missing")
            continue
        rows = read_set(name)
        all_questions += [q for _, q in rows]
        r = accuracy(index, rows, args.show_misses == name.split("_")[1].split(".")[0])
        print(f"{name:18} n={r['n']:4}  top-1 {r['top1']:.3f}  top-3 {r['top3']:.3f}", end="")
        print(f"  confident {r['confident']:.3f}")
    offtopic = read_set("search_offtopic.tsv") if (DATA / "search_offtopic.tsv").exists() else []
    if offtopic:
        rejected = sum(not index.search(q).confident for _, q in offtopic)
        print(f"{'search_offtopic.tsv':18} n={len(offtopic):4}  not confident {rejected / len(offtopic):.3f}")
        all_questions += [q for _, q in offtopic]
    p50, p95 = timings(index, all_questions)
    print(f"time per query, {len(kb.entries)} entries: p50 {p50:.2f} ms  p95 {p95:.2f} ms")
    big = SearchIndex.build(padded(kb, 300))
    p50, p95 = timings(big, all_questions)
    print(f"time per query, {len(big.docs)} entries: p50 {p50:.2f} ms  p95 {p95:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
