"""The learning queue on the dashboard, over HTTP (httpx against the real app): groups counted and
scoped to a province account's producers; a group turned into a phrasing of an entry is published as
live knowledge, and the same question is then answered confidently by the dialogue (this process and
a freshly started one); a new FAQ refused by the validator shows its problems beside the fields with
the text kept, and nothing is published; every resolution is in the audit log."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.services import Services, build_services
from bot.settings import load_settings
from handlers.types import Incoming
from services import learning
from services.staff_scope import Scope
from storage.models import saved_id
from storage.passwords import hash_password
from storage.repositories import Repos
from tests.bot.conftest import PASSWORD
from tests.bot.test_dashboard_security import login
from tests.support.checks import one

UNSURE = "xin hỗ trợ làm tem truy xuất nguồn gốc"
A = "Nghệ An"


@pytest.fixture
def settings_args(database_url: str, tmp_path: Path) -> dict[str, object]:
    return {"_env_file": None, "database_url": database_url, "data_dir": tmp_path}


@pytest.fixture
def services(settings_args: dict[str, object]) -> Iterator[Services]:
    running = build_services(load_settings(**settings_args))
    with running.db.session() as s:
        staff = Repos(s).staff
        staff.upsert("quantri", hash_password(PASSWORD), None)
        staff.upsert("nghean", hash_password(PASSWORD), None, "province", A)
    yield running
    running.close()


def ask(services: Services, chat_id: str, text: str, province: str | None = None) -> None:
    if province is not None:
        with services.db.unit() as repos:
            user = repos.users.get_or_create("telegram", chat_id, "Chị Mai")
            repos.profiles.update(saved_id(user), province=province)
    services.dialogue.handle(Incoming.text_message("telegram", chat_id, text, "Chị Mai"))


def open_count(services: Services) -> int:
    with services.db.unit() as repos:
        return sum(g.count for g in learning.open_groups(repos, Scope()))


def csrf_of(page: str) -> str:
    return one(re.search(r'name="csrf_token" value="([^"]+)"', page)).group(1)


def first_group_key(page: str) -> str:
    return html.unescape(one(re.search(r'class="card group" id="group-1" data-key="([^"]+)"', page)).group(1))


async def test_groups_are_counted_and_a_province_sees_its_producers_only(
    services: Services, client: httpx.AsyncClient
) -> None:
    ask(services, "1", UNSURE, A)
    ask(services, "2", "Xin hỗ trợ làm tem truy xuất nguồn gốc?", "Hà Tĩnh")
    await login(client, "quantri")
    page = (await client.get("/unanswered")).text
    assert "2 lần" in page and "bot chưa chắc: 2" in page and 'href="/unanswered"' in page
    await client.post("/logout", data={"csrf_token": csrf_of(page)})
    await login(client, "nghean")
    page = (await client.get("/unanswered")).text
    assert "1 lần" in page and "2 lần" not in page
    assert "Ngoài phạm vi khuyến công" not in page  # out_of_scope.yaml is national: admins only


async def test_a_phrasing_makes_the_same_question_confident_next_time(
    services: Services, client: httpx.AsyncClient, settings_args: dict[str, object]
) -> None:
    ask(services, "1", UNSURE)
    assert open_count(services) == 1
    await login(client, "quantri")
    page = (await client.get("/unanswered")).text
    response = await client.post(
        "/unanswered/phrasing",
        data={"csrf_token": csrf_of(page), "group": first_group_key(page), "entry_id": "branding-trademark"},
    )
    assert response.status_code == 303
    page = (await client.get("/unanswered")).text
    title = services.catalog.kb.by_id["branding-trademark"].title
    assert f"Đã trả lời được: {title}" in html.unescape(page)
    assert "Không có câu hỏi nào đang chờ" in page
    # The same question, asked again: answered with that entry, not queued.
    ask(services, "1", UNSURE)
    assert open_count(services) == 0
    with services.db.unit() as repos:
        last = repos.messages.history(saved_id(one(repos.users.find("telegram", "1"))))[-1]
    assert "thương hiệu" in last.text.lower()
    # A process started now answers from the same live knowledge.
    other = build_services(load_settings(**settings_args))
    try:
        assert other.catalog.index.search(UNSURE).confident
    finally:
        other.close()
    with services.db.unit() as repos:
        [action] = [a for a in repos.staff_actions.newest(10) if a.action == "learning_resolve"]
        assert action.actor == "dashboard:quantri" and "branding-trademark" in action.details


async def test_a_refused_faq_shows_its_problems_beside_the_fields_and_keeps_the_text(
    services: Services, client: httpx.AsyncClient
) -> None:
    ask(services, "1", "muốn làm kho lạnh bảo quản hàng")
    await login(client, "quantri")
    page = (await client.get("/unanswered")).text
    with services.db.unit() as repos:
        versions = len(repos.knowledge.history(100))
    response = await client.post(
        "/unanswered/faq",
        data={
            "csrf_token": csrf_of(page),
            "group": first_group_key(page),
            "id": "how-to-apply",
            "title": "Kho lạnh có được hỗ trợ không?",
            "answer": "ngắn",
            "legal_basis": "Nghị định 45/2012/NĐ-CP",
            "keywords": "kho lạnh",
        },
    )
    assert response.status_code == 422
    body = html.unescape(response.text)
    assert "Mã này đã có" in body and 'data-field="legal_basis"' in body
    assert "Kho lạnh có được hỗ trợ không?" in body and ">ngắn</textarea>" in body
    with services.db.unit() as repos:
        assert len(repos.knowledge.history(100)) == versions
    assert open_count(services) == 1


async def test_the_queue_needs_a_login_and_its_forms_the_csrf_token(
    services: Services, client: httpx.AsyncClient
) -> None:
    ask(services, "1", UNSURE)
    assert (await client.get("/unanswered")).status_code == 303  # to the login form
    await login(client, "quantri")
    page = (await client.get("/unanswered")).text
    forged = await client.post(
        "/unanswered/phrasing", data={"group": first_group_key(page), "entry_id": "branding-trademark"}
    )
    assert forged.status_code == 403
    assert open_count(services) == 1
    with services.db.unit() as repos:
        assert repos.knowledge.newest() is None
