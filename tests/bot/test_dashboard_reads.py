"""Reading a dashboard page never writes: every table is the same before and after a tour of every
page, a delivered broadcast's page included (the sweep, not the page, marks it done)."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from bot.services import Services
from services.broadcasts import Audience
from storage.db import Database
from storage.models import OutboxMessage, metadata
from tests.bot.test_dashboard_security import login, seed_lead
from tests.support.checks import one

PAGES = ("/", "/leads/1", "/questions", "/deadlines", "/broadcasts", "/broadcasts/1", "/export.csv")


def snapshot(database: Database) -> dict[str, list[tuple]]:
    with database.engine.connect() as conn:
        return {
            table.name: sorted(
                map(tuple, conn.execute(text(f'SELECT * FROM "{table.name}"')).all()), key=repr
            )
            for table in metadata.sorted_tables
        }


def delivered_broadcast(services: Services) -> None:
    core = services.core
    with services.db.unit() as repos:
        repos.users.get_or_create("console", "local", "Anh Bình")  # the one channel here
        draft = core.broadcasts.create(repos, "Hội chợ tháng 9", Audience(), [], "test")
        core.broadcasts.confirm(repos, services.catalog.kb, draft)
        core.questions.ask(repos, repos.users.get_or_create("telegram", "43", "Chị Cúc"), "Hỏi gì?", None)
    with services.db.unit() as repos:
        for row in repos.session.execute(text("SELECT id FROM outbox")).all():
            one(repos.session.get(OutboxMessage, row[0])).status = "sent"


async def test_no_page_writes_to_the_database(services: Services, client: httpx.AsyncClient) -> None:
    seed_lead(services.db)
    delivered_broadcast(services)
    await login(client)
    before = snapshot(services.db)
    for path in PAGES:
        response = await client.get(path)
        assert response.status_code == 200, path
    assert 'id="broadcast-status" data-status="done"' in (await client.get("/broadcasts/1")).text
    assert snapshot(services.db) == before
