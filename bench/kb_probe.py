"""One measurement of ``bench/kb_scale.py``, run in a fresh process against one checkout's code.

Run as a script with ``PYTHONPATH`` set to the checkout measured (so the same probe measures main's
code and the branch's), printing one JSON object:

    kb_probe.py prepare FOLDER URL   store FOLDER's files as the live knowledge version in URL
    kb_probe.py files FOLDER         start-up from the files: load, validate, build the index
    kb_probe.py db URL               start-up as ``bot.services.build_services`` does it (the newest
                                     knowledge version of the database), then search latency over
                                     tests/data/search_dev.tsv and the steps of an eligibility check
                                     through the real dialogue

Only APIs that main and the branch share are used.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from handlers.dialogue import Dialogue
from handlers.types import Incoming
from knowledge.catalog import Catalog, load_catalog
from knowledge.files import read_folder
from knowledge.text import fold
from services import knowledge
from storage.db import Database

CHECKOUT = Path(knowledge.__file__).resolve().parents[1]
SEARCH_DEV = CHECKOUT / "tests" / "data" / "search_dev.tsv"
QUESTIONS = CHECKOUT / "handlers" / "templates" / "questions.yaml"
# What a producer types for each question of the check (an everyday answer).
ANSWERS = {
    "legal_form": "hộ kinh doanh",
    "activity": "sản xuất",
    "province": "Nghệ An",
    "place_type": "xã",
    "craft_village": "không",
    "difficult_area": "có",
    "new_to_area": "không",
    "technology_line": "không",
    "cluster_investor": "không",
    "investment_cost_vnd": "300 triệu",
}
PRODUCERS = 6


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 3)

    return {"p50": round(statistics.median(ordered), 3), "p95": at(0.95), "p99": at(0.99), "max": at(1.0)}


def prepare(folder: str, url: str) -> dict[str, Any]:
    db = Database(url)
    db.migrate()
    with db.unit() as repos:
        repos.knowledge.add(read_folder(Path(folder)), "bench", "kb_scale")
    db.dispose()
    return {}


def start_from_files(folder: str) -> dict[str, Any]:
    base = rss_mb()
    started = time.perf_counter()
    catalog = load_catalog(Path(folder))
    seconds = time.perf_counter() - started
    return {
        "entries": len(catalog.kb.entries),
        "start_s": round(seconds, 2),
        "rss_mb": rss_mb(),
        "base_mb": base,
    }


def search_latency(catalog: Catalog) -> dict[str, float]:
    questions = [
        line.split("\t", 1)[1] for line in SEARCH_DEV.read_text("utf-8").splitlines()[1:] if "\t" in line
    ]
    samples = []
    for _ in range(3):
        for question in questions:
            started = time.perf_counter()
            catalog.index.search(question)
            samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def pending_field(replies: str, prompts: dict[str, str]) -> str | None:
    said = fold(replies)
    return next((field for field, prompt in prompts.items() if fold(prompt) in said), None)


def eligibility_steps(db: Database, catalog: Catalog) -> dict[str, float]:
    """Every producer starts a check and answers each question it asks; each answer is a step."""
    prompts = {field: q["prompt"] for field, q in yaml.safe_load(QUESTIONS.read_text("utf-8")).items()
               if isinstance(q, dict) and "prompt" in q}  # fmt: skip
    dialogue = Dialogue(db, catalog)
    samples = []
    for producer in range(PRODUCERS):
        chat = str(900_000 + producer)
        text = "/kiemtra"
        for _ in range(len(ANSWERS) + 1):
            started = time.perf_counter()
            out = dialogue.handle(Incoming.text_message("telegram", chat, text, "Người hỏi"))
            samples.append((time.perf_counter() - started) * 1000)
            field = pending_field("\n".join(r.text for r in out), prompts)
            if field is None:
                break
            text = ANSWERS[field]
    return {"steps": len(samples), **percentiles(samples)}


def start_from_database(url: str) -> dict[str, Any]:
    base = rss_mb()
    started = time.perf_counter()
    db = Database(url)
    db.migrate()
    with db.unit() as repos:
        _, live = knowledge.live_catalog(repos)
    seconds = time.perf_counter() - started
    assert live is not None
    started_mb = rss_mb()
    figures: dict[str, Any] = {
        "entries": len(live.kb.entries),
        "start_s": round(seconds, 2),
        "rss_mb": started_mb,
        "base_mb": base,
    }
    figures["search_ms"] = search_latency(live)
    figures["eligibility_ms"] = eligibility_steps(db, live)
    figures["rss_end_mb"] = rss_mb()
    db.dispose()
    return figures


def main(argv: list[str]) -> int:
    mode, *args = argv
    if mode == "prepare":
        result = prepare(args[0], args[1])
    elif mode == "files":
        result = start_from_files(args[0])
    else:
        result = start_from_database(args[0])
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
