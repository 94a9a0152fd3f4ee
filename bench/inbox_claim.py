"""The inbox's claim with a large inbox on PostgreSQL: how long one claim takes (``InboxRepo.claim``,
the statement every worker of every process runs each time a slot frees up) and the plan PostgreSQL
picks for it.

The inbox is filled in SQL (``generate_series``): ``--done`` handled updates (a week of them is
kept), ``--pending`` waiting ones spread over ``--chats`` chats, a few of each chat's being handled.

    .venv/bin/python -m bench.inbox_claim postgresql://postgres@127.0.0.1:5432/DB [--done N] ...

The database must be empty or a throwaway one: its inbox is emptied first.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from sqlalchemy import event, text
from sqlmodel import Session

from storage.db import Database
from storage.models import utcnow
from storage.repositories import Repos

FILL = """
INSERT INTO inbox (channel, update_key, chat_key, payload, status, attempts, next_attempt_at,
                   claimed_by, lease_until, received_at, handled_at)
SELECT 'telegram', 'u' || g, 'c' || (g % :chats),
       '{}'::json,
       CASE WHEN g <= :done THEN 'done'
            WHEN g <= :done + :working THEN 'working'
            ELSE 'pending' END,
       1, now() - interval '1 minute',
       CASE WHEN g > :done AND g <= :done + :working THEN 'other' END,
       CASE WHEN g > :done AND g <= :done + :working THEN now() + interval '1 hour' END,
       now() - interval '1 minute',
       CASE WHEN g <= :done THEN now() END
FROM generate_series(1, :total) AS g
"""


def fill(db: Database, done: int, pending: int, working: int, chats: int) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("TRUNCATE inbox RESTART IDENTITY"))
        values = {"done": done, "working": working, "chats": chats, "total": done + working + pending}
        conn.execute(text(FILL), values)
        conn.execute(text("ANALYZE inbox"))


def claim_once(db: Database, limit: int) -> float:
    """One claim, rolled back (the inbox stays as filled); its seconds."""
    with db.engine.connect() as conn, Session(bind=conn) as session:
        started = time.perf_counter()
        rows = Repos(session).inbox.claim("bench", utcnow(), 5.0, limit, set())
        elapsed = time.perf_counter() - started
        assert rows, "nothing claimed"
        session.rollback()
    return elapsed


def plan(db: Database, limit: int) -> str:
    """EXPLAIN ANALYZE of the claim's first statement (the one that picks the rows)."""
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if not captured and statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    with db.engine.connect() as conn, Session(bind=conn) as session:
        event.listen(conn, "before_cursor_execute", capture)
        Repos(session).inbox.claim("bench", utcnow(), 5.0, limit, set())
        event.remove(conn, "before_cursor_execute", capture)
        statement, parameters = captured[0]
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("EXPLAIN ANALYZE " + statement, parameters)
        lines = [row[0] for row in cursor.fetchall()]
        session.rollback()
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url")
    parser.add_argument("--done", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=50_000)
    parser.add_argument("--working", type=int, default=200)
    parser.add_argument("--chats", type=int, default=20_000)
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    db = Database(args.url)
    db.migrate()
    started = time.perf_counter()
    fill(db, args.done, args.pending, args.working, args.chats)
    print(
        f"inbox: {args.done:,} done, {args.working:,} working, {args.pending:,} pending over "
        f"{args.chats:,} chats (filled in {time.perf_counter() - started:.1f} s)"
    )
    times = sorted(claim_once(db, args.limit) * 1000 for _ in range(args.runs))
    print(
        f"claim of {args.limit}: p50 {statistics.median(times):.1f} ms, "
        f"max {times[-1]:.1f} ms over {args.runs} claims"
    )
    print(plan(db, args.limit))
    db.dispose()


if __name__ == "__main__":
    main()
