"""Backups of the database (``python -m bot backup PATH``).

SQLite: an online copy through SQLite's backup API, taken from one read transaction, so it is
consistent while the bot keeps writing (in WAL mode readers never block the writer). The copy is
written beside its destination under a temporary name, owner-only (mode 0600: it holds producers'
personal data), switched to a single self-contained file (``journal_mode=DELETE``), checked with
``PRAGMA quick_check`` and only then given its name. PostgreSQL is backed up with ``pg_dump``
(``pg_dump_advice`` says how); the README's "Backups" section covers restoring both.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from storage.db import normalise_url


class BackupProblem(Exception):
    """The backup could not be made; the message says why (no secret in it)."""


class NotSQLite(BackupProblem):
    """The database is not a SQLite file: back it up with the server's own tool."""


@dataclass(frozen=True)
class Backup:
    path: Path
    size_bytes: int


def sqlite_file(database_url: str) -> Path:
    """The file of a SQLite ``DATABASE_URL``; ``NotSQLite`` for any other database."""
    url = make_url(normalise_url(database_url))
    if url.get_backend_name() != "sqlite":
        raise NotSQLite(url.get_backend_name())
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupProblem("DATABASE_URL names no SQLite file to copy")
    return Path(url.database).expanduser()


def default_name(now: datetime | None = None) -> str:
    return f"khuyencong-{(now or datetime.now(UTC)):%Y%m%d-%H%M%S}.db"


def backup_sqlite(database_url: str, target: Path, *, overwrite: bool = False) -> Backup:
    """Copy the SQLite database of ``database_url`` to ``target`` (a file, or a folder to put a
    dated file in) while it is in use."""
    source = sqlite_file(database_url)
    if not source.is_file():
        raise BackupProblem(f"no database file at {source}")
    if target.is_dir():
        target = target / default_name()
    if target.exists() and target.resolve() == source.resolve():
        raise BackupProblem("the backup cannot replace the database itself")
    if target.exists() and not overwrite:
        raise BackupProblem(f"{target} exists (add --overwrite to replace it)")
    if not target.parent.is_dir():
        raise BackupProblem(f"no folder {target.parent}")
    part = target.with_name(f".{target.name}.{os.getpid()}.part")
    os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    os.chmod(part, 0o600)
    try:
        _copy(source, part)
        _put_in_place(part, target, overwrite)
    except (sqlite3.Error, OSError) as exc:
        raise BackupProblem(f"the backup failed: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    return Backup(target, target.stat().st_size)


def _copy(source: Path, part: Path) -> None:
    reader = sqlite3.connect(source, timeout=30)
    try:
        copy = sqlite3.connect(part)
        try:
            reader.backup(copy)  # every page in one step: one read transaction, one consistent state
            copy.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
            check = copy.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise BackupProblem(f"the copy failed its check: {check}")
        finally:
            copy.close()
    finally:
        reader.close()
    with open(part, "rb+") as file:
        os.fsync(file.fileno())


def _put_in_place(part: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(part, target)
        return
    try:
        os.link(part, target)  # fails if the name was taken meanwhile: nothing is overwritten
    except FileExistsError as exc:
        raise BackupProblem(f"{target} exists (add --overwrite to replace it)") from exc


def pg_dump_advice(database_url: str, target: str) -> str:
    """What to run instead on PostgreSQL (the URL without its password, ready for libpq)."""
    given = make_url(database_url)
    url = URL.create("postgresql", given.username, None, given.host, given.port, given.database, given.query)
    plain = shlex.quote(url.render_as_string(hide_password=False))
    dump = shlex.quote(target)
    return (
        "DATABASE_URL is a PostgreSQL database: back it up with pg_dump (consistent while the bot runs):\n"
        f"  pg_dump --format=custom --no-owner --file={dump} {plain}\n"
        "and restore into an empty database with:\n"
        f"  pg_restore --no-owner --exit-on-error --dbname={plain} {dump}\n"
        "(a password comes from PGPASSWORD or ~/.pgpass; see the README, section Backups)"
    )
