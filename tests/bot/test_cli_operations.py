"""The operations commands, run as a real subprocess. ``python -m bot backup PATH``: a consistent,
owner-only copy of the SQLite database taken while another connection keeps writing to it, which
opens (and migrates) as a restored database would; on PostgreSQL, the ``pg_dump`` to run instead.
``python -m bot migrate``: the schema brought up to date, once per upgrade."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from storage.db import Database
from storage.repositories import Repos
from tests.support.seed import seed_producers

ROOT = Path(__file__).resolve().parents[2]
SEEDED = 20_000
FIRST_CHAT = 8_000_000


def backup(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", "backup", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env | {"DATABASE_URL": database_url},
        timeout=120,
    )


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    """A SQLite database of its own (backups are of SQLite files whatever TEST_DATABASE_URL says)."""
    db = Database(f"sqlite:///{tmp_path / 'live.db'}")
    db.migrate()
    seed_producers(db, SEEDED, first_chat=FIRST_CHAT)
    return db


def counts(path: Path) -> tuple[int, int]:
    with closing(sqlite3.connect(path)) as copy:
        users = copy.execute("SELECT count(*) FROM users").fetchone()[0]
        profiles = copy.execute("SELECT count(*) FROM profiles").fetchone()[0]
    return int(users), int(profiles)


def test_a_backup_taken_while_writes_go_on_is_consistent_and_private(
    sqlite_db: Database, tmp_path: Path
) -> None:
    stop, written, errors = threading.Event(), [0], []

    def write() -> None:  # each producer with their profile in one transaction, as the bot writes
        try:
            while not stop.is_set():
                seed_producers(sqlite_db, 1, first_chat=FIRST_CHAT + SEEDED + written[0])
                written[0] += 1
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while written[0] < 5:
            time.sleep(0.01)
        out = backup(str(sqlite_db.engine.url), str(tmp_path / "copy.db"))
        during = written[0]
    finally:
        stop.set()
        writer.join()
    assert out.returncode == 0, out.stderr
    assert not errors  # the writer was never blocked out
    target = tmp_path / "copy.db"
    assert "copy.db" in out.stdout
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    users, profiles = counts(target)
    assert users == profiles  # no producer without the profile written with them
    assert SEEDED < users <= SEEDED + during + 1
    with closing(sqlite3.connect(target)) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftover part

    restored = Database(f"sqlite:///{target}")  # restoring: the copy is the database file
    try:
        restored.migrate()
        with restored.unit() as repos:
            assert isinstance(repos, Repos)
            assert repos.users.find("telegram", str(FIRST_CHAT + 1)) is not None
    finally:
        restored.dispose()


def test_backup_into_a_folder_and_never_over_a_file_unasked(sqlite_db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    url = str(sqlite_db.engine.url)
    assert backup(url, str(folder)).returncode == 0
    (made,) = folder.iterdir()
    assert made.name.startswith("khuyencong-") and made.suffix == ".db"
    refused = backup(url, str(made))
    assert refused.returncode == 1 and "--overwrite" in refused.stderr
    assert backup(url, str(made), "--overwrite").returncode == 0
    live = Path(sqlite_db.engine.url.database or "")
    assert backup(url, str(live), "--overwrite").returncode == 1  # never over the database itself
    assert counts(live) == (SEEDED, SEEDED)


def test_on_postgresql_it_says_which_pg_dump_to_run() -> None:
    out = backup("postgresql://kc:s3cr3t-pass@db.example:5432/khuyencong", "/backups/kc.dump")
    assert out.returncode == 2
    assert "pg_dump --format=custom --no-owner --file=/backups/kc.dump" in out.stderr
    assert "postgresql://kc@db.example:5432/khuyencong" in out.stderr
    assert "pg_restore" in out.stderr
    assert "s3cr3t-pass" not in out.stderr + out.stdout
    assert not Path("/backups/kc.dump").exists()


def test_migrate_brings_a_new_database_up_to_date_and_exits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_"))}
    out = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env | {"DATABASE_URL": url},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    with closing(sqlite3.connect(tmp_path / "new.db")) as db:
        assert db.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1
