"""Shared fixtures: a fresh database per test (SQLite file, or PostgreSQL when TEST_DATABASE_URL is
set), the loaded knowledge catalog, factories, and the fake Telegram and Zalo Bot APIs served over
HTTP on a free local port (the only place tests start them)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from knowledge.catalog import Catalog, load_catalog
from storage.db import Database
from storage.models import metadata
from tests.fakes.telegram import FakeTelegram
from tests.fakes.zalo import FakeZalo

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def _postgres() -> Iterator[Database | None]:
    if not TEST_DATABASE_URL:
        yield None
        return
    db = Database(TEST_DATABASE_URL)
    db.migrate()
    yield db
    db.dispose()


def _truncate_all(db: Database) -> None:
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def database(tmp_path: Path, _postgres: Database | None) -> Iterator[Database]:
    """A migrated, empty database for this test alone."""
    if _postgres is not None:
        _truncate_all(_postgres)
        yield _postgres
        return
    db = Database(f"sqlite:///{tmp_path / 'test.db'}")
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def database_url(database: Database) -> str:
    return database.engine.url.render_as_string(hide_password=False)


@pytest.fixture
def today() -> date:
    return date(2026, 11, 23)


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    """The fake Telegram Bot API, serving for this test alone."""
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def fake_zalo() -> AsyncIterator[FakeZalo]:
    """The fake Zalo Bot API, serving for this test alone."""
    async with FakeZalo() as fake:
        yield fake
