"""Fixtures of the dashboard tests: the process's services on the test database with one staff
account (``canbo1``), and an HTTP client on its web app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bot.services import Services, build_services
from bot.settings import load_settings
from bot.web import create_web_app
from storage.passwords import hash_password
from storage.repositories import Repos

PASSWORD = "mat-khau-du-dai-123"


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    running = build_services(load_settings(_env_file=None, database_url=database_url, data_dir=tmp_path))
    with running.db.session() as s:
        Repos(s).staff.upsert("canbo1", hash_password(PASSWORD), None)
    yield running
    running.close()


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_web_app(services)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        yield http
