"""Database engine, sessions (one unit of work per update or request) and migrations.

``DATABASE_URL`` is a plain SQLAlchemy URL: ``sqlite:///path.db`` or ``postgresql://user@host/db``;
the driver is picked here (psycopg 3 for PostgreSQL). Migrations (Alembic) run at start: never
``create_all``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session

from storage.repositories import Repos

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x6B63_6D69  # "kcmi": the advisory lock key that serialises migrations


def normalise_url(url: str) -> str:
    """Map plain URLs to the drivers the app ships: ``postgresql://`` -> ``postgresql+psycopg://``."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _prepare_sqlite_file(url: str) -> None:
    """The database file and its folder exist and are the owner's alone (mode 0600 / 0700): they
    hold producers' personal data. SQLite gives its -wal and -shm files the same mode."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database).expanduser()
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        # Never open (and close) a file SQLite may already have open: closing any descriptor of it
        # drops this process's POSIX locks on it, and SQLite's locking with them.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    os.chmod(path, 0o600)


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        _prepare_sqlite_file(url)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Deleted rows are overwritten, not just unlinked: erased personal data leaves the file.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, hide_parameters=True)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent). On PostgreSQL the processes of a
    deployment starting at once take turns (an advisory lock held until the migration commits):
    the first migrates, the others then find nothing to do."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Database:
    """An engine plus a unit-of-work factory; only the unit of work commits."""

    def __init__(self, url: str):
        self.url = normalise_url(url)
        self.engine = create_db_engine(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        migrate(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def unit(self) -> Iterator[Repos]:
        """One unit of work: every repository over one transaction (committed on success)."""
        with self.session() as session:
            yield Repos(session)

    def flush_deleted(self) -> None:
        """Make deletions final on disk: SQLite's write-ahead log still holds the old pages until a
        checkpoint copies them back (zeroed, with ``secure_delete``) and truncates it. PostgreSQL
        deletes rows outright; nothing to do there."""
        if self.dialect == "sqlite":
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def ping(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
