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
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

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
T = TypeVar("T")


def rss_mb() -> float:
    """This process's peak resident memory so far (MB). VmHWM, not ``ru_maxrss``: after a fork and
    exec, ``ru_maxrss`` still counts the parent's memory."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(work: Callable[[], T]) -> tuple[T, float, float]:
    """What ``work`` returns, and the wall-clock and CPU seconds it took. CPU time is this process's
    own, so it holds on a machine shared with other work; wall-clock time does not."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


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
    catalog, seconds, cpu = timed(lambda: load_catalog(Path(folder)))
    return {
        "cpu_s": round(cpu, 2),
        "entries": len(catalog.kb.entries),
        "start_s": round(seconds, 2),
        "rss_mb": rss_mb(),
        "base_mb": base,
    }


def search_latency(catalog: Catalog) -> dict[str, dict[str, float]]:
    questions = [
        line.split("\t", 1)[1] for line in SEARCH_DEV.read_text("utf-8").splitlines()[1:] if "\t" in line
    ]
    wall, cpu = [], []
    for _ in range(3):
        for question in questions:
            _, seconds, cpu_seconds = timed(partial(catalog.index.search, question))
            wall.append(seconds * 1000)
            cpu.append(cpu_seconds * 1000)
    return {"wall": percentiles(wall), "cpu": percentiles(cpu)}


def pending_field(replies: str, prompts: dict[str, str]) -> str | None:
    said = fold(replies)
    return next((field for field, prompt in prompts.items() if fold(prompt) in said), None)


def eligibility_steps(db: Database, catalog: Catalog) -> dict[str, Any]:
    """Every producer starts a check and answers each question it asks; each answer is a step."""
    prompts = {field: q["prompt"] for field, q in yaml.safe_load(QUESTIONS.read_text("utf-8")).items()
               if isinstance(q, dict) and "prompt" in q}  # fmt: skip
    dialogue = Dialogue(db, catalog)
    wall, cpu = [], []
    for producer in range(PRODUCERS):
        chat = str(900_000 + producer)
        text = "/kiemtra"
        for _ in range(len(ANSWERS) + 1):
            update = Incoming.text_message("telegram", chat, text, "Người hỏi")
            out, seconds, cpu_seconds = timed(partial(dialogue.handle, update))
            wall.append(seconds * 1000)
            cpu.append(cpu_seconds * 1000)
            field = pending_field("\n".join(r.text for r in out), prompts)
            if field is None:
                break
            text = ANSWERS[field]
    return {"steps": len(wall), "wall": percentiles(wall), "cpu": percentiles(cpu)}


def start_from_database(url: str) -> dict[str, Any]:
    base = rss_mb()
    db = Database(url)

    def start() -> Catalog | None:
        db.migrate()
        with db.unit() as repos:
            return knowledge.live_catalog(repos)[1]

    live, seconds, cpu = timed(start)
    assert live is not None
    started_mb = rss_mb()
    figures: dict[str, Any] = {
        "cpu_s": round(cpu, 2),
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
