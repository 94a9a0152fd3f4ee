"""Several processes of a deployment starting at once on a new PostgreSQL database: one migrates,
the others wait for it and find nothing to do (none fails on a table another just created)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory
from psycopg import sql
from sqlalchemy.engine import make_url

from storage.db import Database, alembic_config
from tests.conftest import TEST_DATABASE_URL

ROOT = Path(__file__).resolve().parents[2]
MIGRATE = "import sys; from storage.db import Database; Database(sys.argv[1]).migrate()"

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL only (TEST_DATABASE_URL)")


@pytest.fixture
def fresh_url() -> Iterator[str]:
    """A new, empty database on the test server (dropped afterwards)."""
    assert TEST_DATABASE_URL
    server = make_url(TEST_DATABASE_URL)
    admin = server.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    name = f"kc_test_migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    yield server.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_processes_migrating_at_once_all_succeed(fresh_url: str) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, fresh_url], cwd=ROOT, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in processes]
    assert [code for code, _ in results] == [0, 0, 0], results
    head = ScriptDirectory.from_config(alembic_config(fresh_url)).get_current_head()
    db = Database(fresh_url)
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == head
    finally:
        db.dispose()
