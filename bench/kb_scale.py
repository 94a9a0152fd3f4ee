"""A knowledge base at national size: start-up time, memory, search latency and eligibility steps.

For each size (default 3,000 and 10,000 entries) a synthetic knowledge base is grown from the real
entries (``bench/kb_generate.py``) into a temporary folder and stored as the live knowledge version
of a temporary SQLite database. Fresh processes (``bench/kb_probe.py``) then measure what a real
process does with it at start: loading the files (load, validate, build the search index and the
eligibility evaluator) and loading the newest stored version as ``bot.services.build_services``
does; after that start, search latency p50/p95/p99 over ``tests/data/search_dev.tsv`` and the time
of each step of an eligibility check through the real dialogue. Peak RSS is the process's.

``--before REF`` measures the code of a git ref (e.g. ``main``) the same way first, for comparison.

    .venv/bin/python -m bench.kb_scale [--sizes 3000 10000] [--before main]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any

from bench.kb_generate import generated_files
from knowledge.files import write_folder

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "bench" / "kb_probe.py"


def probe(code: Path, *args: str) -> dict[str, Any]:
    """Run the probe in a fresh process on ``code``'s packages; its JSON figures."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run(
        [sys.executable, str(PROBE), *args], cwd=code, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"probe {args[0]} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def checkout(ref: str, into: Path) -> Path:
    """The files of git ref ``ref`` extracted under ``into``."""
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def measure(code: Path, folder: Path, work: Path) -> dict[str, Any]:
    url = f"sqlite:///{work / 'kb.db'}"
    probe(code, "prepare", str(folder), url)
    return {"files": probe(code, "files", str(folder)), "db": probe(code, "db", url)}


def show(label: str, size: int, figures: dict[str, Any]) -> None:
    """One line per code and size; times as wall-clock (CPU of the process in brackets)."""
    files, db = figures["files"], figures["db"]
    search, steps = db["search_ms"], db["eligibility_ms"]
    print(
        f"{label:6} {size:6} entries | start from files {files['start_s']:.2f} s ({files['cpu_s']:.2f} CPU)"
        f" peak {files['rss_mb']:.0f} MB | from the database {db['start_s']:.2f} s ({db['cpu_s']:.2f} CPU)"
        f" peak {db['rss_mb']:.0f} MB (after imports {db['base_mb']:.0f} MB)"
        f" | search ms p50 {search['wall']['p50']:.2f} ({search['cpu']['p50']:.2f})"
        f" p95 {search['wall']['p95']:.2f} ({search['cpu']['p95']:.2f})"
        f" p99 {search['wall']['p99']:.2f} ({search['cpu']['p99']:.2f})"
        f" | eligibility step ms p50 {steps['wall']['p50']:.1f} ({steps['cpu']['p50']:.1f})"
        f" max {steps['wall']['max']:.1f} ({steps['cpu']['max']:.1f}), {steps['steps']} steps"
        f" | peak at the end {db['rss_end_mb']:.0f} MB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 10000])
    parser.add_argument("--before", metavar="REF", help="also measure this git ref's code (e.g. main)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kb-scale-") as tmp:
        codes = [("after", ROOT)]
        if args.before:
            codes.insert(0, ("before", checkout(args.before, Path(tmp) / "before")))
        for size in args.sizes:
            folder = Path(tmp) / f"kb-{size}"
            write_folder(generated_files(size), folder)
            for label, code in codes:
                work = Path(tmp) / f"{label}-{size}"
                work.mkdir()
                show(label, size, measure(code, folder, work))
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
