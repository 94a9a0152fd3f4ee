"""Broadcasts, reminders and the outbox at national size, each step measured in its own process (so
its peak memory is its own, read from ``wait4``):

1. the broadcast preview to everyone as the dashboard makes it (the counts per channel and the text
   for the first recipient, in-process through the service) and the count of the real CLI
   ``python -m bot broadcast --text T`` (without ``--yes``);
2. queueing it with the real CLI, ``python -m bot broadcast --text T --yes``;
3. the outbox claim (``OutboxRepo.claim_next``, rolled back each time) with every message of that
   broadcast pending, and the ``EXPLAIN ANALYZE`` of its query on PostgreSQL;
4. the reminder sweep (``ReminderService.plan`` then ``queue_due``, as the scheduler runs them):
   the sweeps after a deployment, until every deadline is planned for everyone (the old code did it
   in its first sweep; a sweep now plans for about 5 s at most), then one with nothing due and
   nobody new, and one with ``--due`` reminders due; time, SQL statements and peak memory.

    .venv/bin/python -m bench.bulk --database-url URL [--producers N] [--due 6000] [--code DIR]

The database is filled by ``bench.seed`` up to ``--producers`` (default 1,000,000 on PostgreSQL,
100,000 on SQLite) when it holds fewer. ``--code DIR`` runs the measured processes from another
checkout (``--code /work/main`` measures the code before this change; its database must be seeded
by that code, since the newer migrations are unknown to it).

Last measured on the shared 2-core machine (other work running, so times are rough):

| step | before (main), PostgreSQL, 100,000 | after, PostgreSQL, 1,000,000 | after, SQLite, 100,000 |
|---|---|---|---|
| preview to everyone (service) | 20.9 s, 672 MB | 0.20-0.36 s, 100 MB | 0.06 s, 100 MB |
| CLI count (process, wall) | 51.3 s, 611 MB | 2.4-6.9 s, 100 MB | 4.5 s, 100 MB |
| CLI queue (process, wall) | 553 s, 1,179 MB | 24-54 s, 100 MB (979,997 rows) | 4.8 s, 100 MB |
| outbox claim, all pending | median 964 ms (a sort) | median 2.6 ms (EXPLAIN 0.14 ms) | median 1.4 ms |
| planning every deadline | 153.6 s, 623 MB, 1 sweep | 16 sweeps of 7 s at most | 3 sweeps of 5.2 s at most |
| sweep, nothing due | 16.1 s, 318 MB | 0.014 s, 5 statements | 0.008 s, 5 statements |
| sweep, 6,000 due | 324 s, 15,226 statements | 0.66 s, 13 statements | 0.26 s, 20 statements |

(The sweep with 6,000 due queues half of them: the earliest rows by id are all offsets of the same
producers, so the older offsets are superseded.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from storage.db import Database

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "Chào {{ ten }} ở {{ tinh }}: Trung tâm Khuyến công nhận hồ sơ năm 2027 đến 20/5."
CLAIMS = 30
MAX_CATCH_UP = 100

# Each measured step is a small program run from the code under test (only APIs both versions have).
_SETUP = """
import json, time
from bot.services import build_services
from bot.settings import load_settings
services = build_services(load_settings())
kb = services.catalog.kb
"""
PREVIEW = (
    _SETUP
    + """
from services.broadcasts import Audience, render
service = services.core.broadcasts
with services.db.session() as s:
    from storage.repositories import Repos
    repos = Repos(s)
    draft = service.create(repos, TEMPLATE, Audience(), [], "bench")
    began = time.perf_counter()
    if hasattr(service, "preview"):
        preview = service.preview(repos, kb, draft)
        counts, sample = preview.counts, preview.sample
    else:  # before: every recipient in Python
        chosen = service.recipients(repos, kb, Audience())
        counts = service.counts(chosen)
        sample = render(draft.template, *chosen[0]) if chosen else None
    seconds = time.perf_counter() - began
    s.rollback()
print(json.dumps({"seconds": seconds, "counts": counts, "sample": sample}))
"""
)
SWEEP = (
    _SETUP
    + """
import sys
from datetime import datetime
from sqlalchemy import event
statements = []
event.listen(services.db.engine, "before_cursor_execute", lambda *a: statements.append(1))
now = datetime.fromisoformat(sys.argv[1])
reminders = services.core.reminders
began = time.perf_counter()
with services.db.unit() as repos:
    planned = reminders.plan(repos, kb, now)
    queued = reminders.queue_due(repos, now)
print(json.dumps({"seconds": time.perf_counter() - began, "planned": planned, "queued": queued,
                  "statements": len(statements)}))
"""
)
CLAIM = (
    _SETUP
    + """
import statistics
from datetime import UTC, datetime
from storage.repositories import Repos
times = []
for _ in range(CLAIMS):
    with services.db.session() as s:
        began = time.perf_counter()
        taken = Repos(s).outbox.claim_next("telegram", "bench", datetime.now(UTC), time.time(), 30.0, 0, 1.0)
        times.append((time.perf_counter() - began) * 1000)
        assert taken is not None
        s.rollback()
print(json.dumps({"median_ms": statistics.median(times), "max_ms": max(times), "first_ms": times[0]}))
"""
)


def environment(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_"))}
    # Both bots "configured" (never started here), so broadcasts and reminders go to both channels.
    env.update(DATABASE_URL=url, TELEGRAM_BOT_TOKEN="123456:bench", ZALO_BOT_TOKEN="bench-zalo")
    env.update(STAFF_TELEGRAM_IDS="", LOG_LEVEL="WARNING")
    return env


def measure(args: list[str], code: Path, url: str) -> tuple[float, float, str]:
    """Run one process from ``code``; (wall seconds, peak RSS in MB, its standard output)."""
    with tempfile.TemporaryFile() as errors:
        began = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, *args], cwd=code, env=environment(url), stdout=subprocess.PIPE, stderr=errors
        )
        out = process.stdout.read().decode() if process.stdout else ""
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        err = errors.read().decode()
    if process.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args[:3])} failed ({process.returncode}):\n{err[-3000:]}")
    return wall, usage.ru_maxrss / 1024, (out.strip() + "\n" + err.strip()).strip()


def program(source: str) -> list[str]:
    return ["-c", source.replace("TEMPLATE", repr(TEMPLATE)).replace("CLAIMS", str(CLAIMS))]


def producers_in(url: str) -> int:
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM users")).scalar_one())
    except Exception:  # not migrated yet
        return 0
    finally:
        db.dispose()


def make_due(url: str, count: int) -> str:
    """Make ``count`` pending reminders due a minute ago (the earliest ones by id, so all offsets of
    some producers come due at once, as after downtime); the sweep's ``now``."""
    from sqlalchemy import select, update
    from sqlmodel import col

    from storage.models import Reminder

    now = datetime.now(UTC)
    earliest = select(col(Reminder.id)).where(col(Reminder.status) == "pending").order_by(col(Reminder.id))
    db = Database(url)
    with db.engine.begin() as conn:
        ids = [row[0] for row in conn.execute(earliest.limit(count))]
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            stmt = update(Reminder).where(col(Reminder.id).in_(chunk))
            conn.execute(stmt.values(due_at=now - timedelta(minutes=1)))
    db.dispose()
    return now.isoformat()


def explain_claim(url: str) -> str:
    """The PostgreSQL plan of one claim (the first sendable messages), with its execution time."""
    from storage.repositories import _CLAIMABLE, _claim_params

    db = Database(url)
    params = _claim_params("telegram", datetime.now(UTC), time.time(), 0, 1.0)
    query = _CLAIMABLE.limit(8).params(**params)
    with db.engine.connect() as conn:
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        lines = [str(row[0]) for row in conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"))]
    db.dispose()
    keep = [line.strip() for line in lines if "Index" in line or "Execution" in line or "Sort" in line]
    return "\n      ".join(keep)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--producers", type=int)
    parser.add_argument("--due", type=int, default=6000)
    parser.add_argument("--reminders-only", action="store_true", help="only the reminder sweeps (step 4)")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to measure (default this one)")
    args = parser.parse_args(argv)
    url, code = args.database_url, args.code.resolve()
    postgres = url.startswith("postgres")
    wanted = args.producers or (1_000_000 if postgres else 100_000)
    have = producers_in(url)
    if have < wanted:
        if code != ROOT:
            raise SystemExit(f"{have:,} producers: seed this database with the code in {code} first")
        from bench import seed

        seed.main(["--database-url", url, "--producers", str(wanted - have), "--leads", "2000"])
    results: dict[str, Any] = {
        "producers": producers_in(url),
        "code": str(code),
        "database": url.split("@")[-1],
    }
    print(f"{results['producers']:,} producers, {'PostgreSQL' if postgres else 'SQLite'}, code {code}")

    if not args.reminders_only:
        wall, rss, out = measure(program(PREVIEW), code, url)
        preview = json.loads(out.splitlines()[0])
        total = sum(preview["counts"].values())
        seconds = preview["seconds"]
        print(f"  broadcast preview (service, in-process): {seconds:.2f} s; process peak {rss:.0f} MB")
        print(f"    {total:,} recipients {preview['counts']}; sample: {preview['sample']!r}")
        wall, rss, out = measure(["-m", "bot", "broadcast", "--text", TEMPLATE], code, url)
        print(f"  CLI count (python -m bot broadcast, no --yes): {wall:.2f} s wall; peak {rss:.0f} MB")
        wall, rss, out = measure(["-m", "bot", "broadcast", "--text", TEMPLATE, "--yes"], code, url)
        queued = [line for line in out.splitlines() if "queued" in line][-1:]
        print(f"  CLI queue (python -m bot broadcast --yes): {wall:.2f} s wall; peak {rss:.0f} MB; {queued}")

        wall, rss, out = measure(program(CLAIM), code, url)
        claim = json.loads(out.splitlines()[0])
        print(
            f"  outbox claim with the broadcast pending: median {claim['median_ms']:.1f} ms, "
            f"first {claim['first_ms']:.1f} ms, max {claim['max_ms']:.1f} ms ({CLAIMS} claims)"
        )
        if postgres:
            print(f"    EXPLAIN ANALYZE: {explain_claim(url)}")

    now = datetime.now(UTC).isoformat()
    sweeps, seconds, longest, planned, statements = 0, 0.0, 0.0, 0, 0
    while sweeps < MAX_CATCH_UP:  # a new deployment: every deadline planned for everyone, a few a sweep
        wall, rss, out = measure([*program(SWEEP), now], code, url)
        sweep = json.loads(out.splitlines()[0])
        sweeps, seconds, longest = sweeps + 1, seconds + sweep["seconds"], max(longest, sweep["seconds"])
        planned, statements = planned + sweep["planned"], statements + sweep["statements"]
        if not sweep["planned"]:
            break
    print(
        f"  reminder sweeps planning every deadline for everyone: {sweeps} sweeps, {seconds:.1f} s in all, "
        f"longest {longest:.2f} s, {statements} SQL statements, planned {planned:,}"
    )
    wall, rss, out = measure([*program(SWEEP), now], code, url)
    sweep = json.loads(out.splitlines()[0])
    print(
        f"  reminder sweep, nothing due, nobody new: {sweep['seconds']:.3f} s, {sweep['statements']} SQL "
        f"statements, planned {sweep['planned']:,}; peak {rss:.0f} MB"
    )
    due_now = make_due(url, args.due)
    wall, rss, out = measure([*program(SWEEP), due_now], code, url)
    sweep = json.loads(out.splitlines()[0])
    print(
        f"  reminder sweep, {args.due:,} made due: {sweep['seconds']:.2f} s, {sweep['statements']} SQL "
        f"statements, queued {sweep['queued']:,} (the rest superseded or useless); peak {rss:.0f} MB"
    )


if __name__ == "__main__":
    main()
