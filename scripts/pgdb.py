"""Create or drop a throwaway PostgreSQL database for one test run.

    python scripts/pgdb.py create  ->  prints the new database's URL
    python scripts/pgdb.py drop URL
Server: PG_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

import os
import sys
import time
import uuid

import psycopg
from psycopg import sql

ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin() -> psycopg.Connection:
    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)


def create() -> str:
    name = f"kc_test_{int(time.time())}_{uuid.uuid4().hex[:6]}"
    with _admin() as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(sql.Identifier(name))
        )
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    if not name.startswith("kc_test_"):
        raise SystemExit(f"refusing to drop {name}: not a throwaway test database")
    with _admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def reachable() -> bool:
    try:
        with _admin():
            return True
    except psycopg.OperationalError:
        return False


if __name__ == "__main__":
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    if action == "create":
        print(create())
    elif action == "drop":
        drop(sys.argv[2])
    elif action == "check":
        sys.exit(0 if reachable() else 1)
    else:
        raise SystemExit(__doc__)
