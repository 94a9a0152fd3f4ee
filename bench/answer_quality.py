"""Answer quality: is the first reply to a producer's message right, judged by what it says?

``tests/data/answer_eval.tsv`` holds realistic messages (no diacritics, typos, Telex, old place
names, the producer's own amounts, two-part questions, topics khuyến công does not cover) and, for
each, what a right reply must contain and must not contain (``;`` separates required items, ``|``
alternatives; compared without diacritics or case). Each message is sent by a new producer to the
real dialogue; the replies' text is judged. Printed next to the topic accuracy of the search on the
held-out ``search_eval.tsv`` (which must stay at or above 0.95). Target: at least 0.90 right.

    .venv/bin/python -m bench.answer_quality [--show-failures] [--tag TAG]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.search_accuracy import accuracy, read_set
from bot.channels.plaintext import html_to_text
from handlers.dialogue import Dialogue
from handlers.types import Incoming
from knowledge.catalog import load_catalog
from knowledge.text import fold
from storage.db import Database

EVAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "answer_eval.tsv"


@dataclass(frozen=True)
class Case:
    id: str
    message: str
    must: list[list[str]]
    must_not: list[str]
    tags: list[str]


def read_cases(path: Path = EVAL) -> list[Case]:
    with path.open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file, delimiter="\t"))
    return [
        Case(
            row["id"],
            row["message"],
            [
                [alt.strip() for alt in item.split("|") if alt.strip()]
                for item in row["must"].split(";")
                if item.strip()
            ],
            [alt.strip() for alt in (row["must_not"] or "").split("|") if alt.strip()],
            [t.strip() for t in row["tags"].split(",") if t.strip()],
        )
        for row in rows
    ]


def judge(case: Case, reply: str) -> list[str]:
    """What is wrong with ``reply`` for this case (empty: right)."""
    said = f" {fold(reply)} "
    problems = [
        f"missing {' | '.join(item)}" for item in case.must if not any(f"{fold(alt)}" in said for alt in item)
    ]
    problems += [f"must not say {bad}" for bad in case.must_not if fold(bad) in said]
    return problems


def answer_all(cases: list[Case]) -> dict[str, str]:
    """Each message sent by a new producer to the dialogue; the text of its replies."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'eval.db'}")
        db.migrate()
        dialogue = Dialogue(db, load_catalog())
        replies = {}
        for i, case in enumerate(cases):
            out = dialogue.handle(
                Incoming.text_message("telegram", str(10_000 + i), case.message, "Người hỏi")
            )
            replies[case.id] = "\n\u2063".join(html_to_text(r.text) for r in out)  # U+2063 between replies
        db.dispose()
    return replies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-failures", action="store_true")
    parser.add_argument("--tag", help="only the cases with this tag")
    parser.add_argument(
        "--set", default=EVAL.name, help="a file of tests/data/ (answer_holdout.tsv: the held-out set)"
    )
    args = parser.parse_args()
    path = EVAL.parent / args.set
    cases = [c for c in read_cases(path) if not args.tag or args.tag in c.tags]
    replies = answer_all(cases)
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    failures = []
    for case in cases:
        problems = judge(case, replies[case.id])
        for tag in ["all", *case.tags]:
            total[tag] += 1
            right[tag] += not problems
        if problems:
            failures.append((case, problems))
    print(
        f"answer quality ({path.name}): {right['all']}/{total['all']} right"
        f" = {right['all'] / total['all']:.3f} (target 0.90)"
    )
    for tag in sorted(t for t in total if t != "all"):
        print(f"  {tag:20} {right[tag]:3}/{total[tag]:<3} = {right[tag] / total[tag]:.2f}")
    firsts = [replies[c.id].split("\n\u2063")[0] for c in cases]
    chars = sorted(len(t) for t in firsts)
    lines = sorted(len(t.splitlines()) for t in firsts)
    print(
        f"first reply: median {statistics.median(lines):g} lines, {statistics.median(chars):g} characters;"
        f" 90th percentile {lines[int(0.9 * len(lines))]} lines, {chars[int(0.9 * len(chars))]} characters"
    )
    topic = accuracy(load_catalog().index, read_set("search_eval.tsv"), show_misses=False)
    print(f"topic accuracy (search_eval.tsv, top-1): {topic['top1']:.3f} (keep at or above 0.95)")
    if args.show_failures:
        for case, problems in failures:
            print(f"\n{case.id} [{','.join(case.tags)}] {case.message}\n  {'; '.join(problems)}")
            print("  > " + replies[case.id].replace("\n", "\n  > ")[:700])
    return 0


if __name__ == "__main__":
    sys.exit(main())
