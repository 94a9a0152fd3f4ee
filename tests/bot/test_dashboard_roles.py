"""Roles and provinces on the dashboard, over HTTP (httpx against the real app): a province account
sees and acts on its own province only (another province's lead, question, deadline or broadcast is
"not found", by URL too, and never in a list, a search or an export), its broadcasts always go to its
province; an administrator sees everything, and only administrators see the audit log, which records
every action."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from bot.services import Services, build_services
from bot.settings import load_settings
from services.broadcasts import Audience
from storage.models import Broadcast, Deadline, Lead, StaffAction, StaffQuestion
from storage.passwords import hash_password
from storage.repositories import Repos
from storage.search_text import lead_search_text
from tests.bot.conftest import PASSWORD
from tests.bot.test_dashboard_security import login

A = "Nghệ An"
B = "Hà Tĩnh"
NAMES = {A: "Nguyễn Thị Lan", B: "Trần Văn Bình"}


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    running = build_services(load_settings(_env_file=None, database_url=database_url, data_dir=tmp_path))
    with running.db.session() as s:
        staff = Repos(s).staff
        staff.upsert("quantri", hash_password(PASSWORD), None)
        staff.upsert("nghean", hash_password(PASSWORD), None, "province", A)
    yield running
    running.close()


class Seeded:
    """One of each per province: a lead, an open question, a deadline, a broadcast draft."""

    def __init__(self, services: Services) -> None:
        now = datetime.now(UTC)
        self.lead: dict[str, int] = {}
        self.question: dict[str, int] = {}
        self.deadline: dict[str | None, int] = {}
        self.broadcast: dict[str, int] = {}
        with services.db.unit() as repos:
            for i, province in enumerate((A, B)):
                user = repos.users.get_or_create("telegram", str(700 + i), NAMES[province])
                repos.profiles.update(user.id or 0, province=province)
                lead = Lead(
                    submission_key=f"k{i}",
                    user_id=user.id or 0,
                    channel="telegram",
                    full_name=NAMES[province],
                    phone=f"091234567{i}",
                    province=province,
                    consent_at=now,
                    search_text=lead_search_text("", NAMES[province], "", None, f"091234567{i}"),
                )
                self.lead[province] = repos.leads.add(lead, 2026).id or 0
                question = services.core.questions.ask(repos, user, f"Câu hỏi của {province}", province)
                self.question[province] = question.id or 0
                draft = services.core.broadcasts.create(
                    repos, f"Tin cho {province}", Audience(province=province), [], "test"
                )
                self.broadcast[province] = draft.id or 0
            soon = date.today() + timedelta(days=20)
            for where in (A, B, None):
                deadline = repos.deadlines.add(
                    Deadline(due_on=soon, action=f"Nộp hồ sơ ({where or 'toàn quốc'})", province=where)
                )
                self.deadline[where] = deadline.id or 0


async def csrf(client: httpx.AsyncClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', (await client.get("/questions")).text)
    assert found is not None
    return found.group(1)


async def test_a_province_account_cannot_see_another_provinces_lead(
    services: Services, client: httpx.AsyncClient
) -> None:
    seeded = Seeded(services)
    assert (await login(client, "nghean")).status_code == 303
    mine, theirs = seeded.lead[A], seeded.lead[B]
    assert (await client.get(f"/leads/{mine}")).status_code == 200
    page = await client.get(f"/leads/{theirs}")
    assert page.status_code == 404 and "Không tìm thấy" in page.text and NAMES[B] not in page.text
    token = await csrf(client)
    status = await client.post(
        f"/leads/{theirs}/status", data={"csrf_token": token, "to_status": "contacted"}
    )
    note = await client.post(f"/leads/{theirs}/note", data={"csrf_token": token, "note": "xem trộm"})
    assert status.status_code == 404 and note.status_code == 404
    listed = (await client.get("/")).text
    assert NAMES[A] in listed and NAMES[B] not in listed
    for params in ({"q": "tran van binh"}, {"province": B}, {"q": "0912345671"}):
        assert NAMES[B] not in (await client.get("/", params=params)).text, params
    assert NAMES[A] in (await client.get("/", params={"q": "nguyen thi"})).text
    exported = (await client.get("/export.csv")).content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(exported)))
    assert len(rows) == 2 and NAMES[A] in exported and NAMES[B] not in exported
    assert NAMES[B] not in (await client.get("/export.csv", params={"province": B})).content.decode(
        "utf-8-sig"
    )
    with services.db.session() as s:
        assert s.exec(select(Lead.status).where(Lead.id == theirs)).one() == "new"
        assert s.exec(select(StaffAction).where(StaffAction.object_type == "lead")).all() == []


async def test_a_province_account_cannot_answer_another_provinces_question(
    services: Services, client: httpx.AsyncClient
) -> None:
    seeded = Seeded(services)
    await login(client, "nghean")
    page = (await client.get("/questions")).text
    assert f"Câu hỏi của {A}" in page and f"Câu hỏi của {B}" not in page
    token = await csrf(client)
    refused = await client.post(
        f"/questions/{seeded.question[B]}/answer", data={"csrf_token": token, "answer": "Trả lời"}
    )
    assert refused.status_code == 404
    answered = await client.post(
        f"/questions/{seeded.question[A]}/answer", data={"csrf_token": token, "answer": "Trả lời"}
    )
    assert answered.status_code == 303
    with services.db.session() as s:
        statuses = dict(s.exec(select(StaffQuestion.id, StaffQuestion.status)).all())
    assert (statuses[seeded.question[A]], statuses[seeded.question[B]]) == ("answered", "open")


async def test_a_province_account_withdraws_only_its_own_deadlines(
    services: Services, client: httpx.AsyncClient
) -> None:
    seeded = Seeded(services)
    await login(client, "nghean")
    page = (await client.get("/deadlines")).text
    assert f"Nộp hồ sơ ({A})" in page and "Nộp hồ sơ (toàn quốc)" in page and f"({B})" not in page
    token = await csrf(client)
    for province in (B, None):  # another province's, and a national one (read-only)
        response = await client.post(
            f"/deadlines/{seeded.deadline[province]}/withdraw", data={"csrf_token": token}
        )
        assert response.status_code == 404, province
    mine = await client.post(f"/deadlines/{seeded.deadline[A]}/withdraw", data={"csrf_token": token})
    assert mine.status_code == 303
    added = await client.post(
        "/deadlines",
        data={
            "csrf_token": token,
            "due_on": (date.today() + timedelta(days=40)).isoformat(),
            "action": "Nộp hồ sơ đợt hai tại Sở Công Thương",
            "province": B,
        },
    )
    assert added.status_code == 303 and "msg=added" in added.headers["location"]
    with services.db.session() as s:
        active = {d.id: d.is_active for d in s.exec(select(Deadline)).all()}
        newest = s.exec(select(Deadline).order_by(col(Deadline.id).desc())).first()
    assert active[seeded.deadline[B]] and active[seeded.deadline[None]] and not active[seeded.deadline[A]]
    assert newest is not None and newest.province == A  # forced to the account's province


async def test_a_province_accounts_broadcasts_go_to_its_province(
    services: Services, client: httpx.AsyncClient
) -> None:
    seeded = Seeded(services)
    await login(client, "nghean")
    listed = (await client.get("/broadcasts")).text
    assert f"Tin cho {A}" in listed and f"Tin cho {B}" not in listed
    assert (await client.get(f"/broadcasts/{seeded.broadcast[B]}")).status_code == 404
    token = await csrf(client)
    for action in ("confirm", "cancel"):
        response = await client.post(
            f"/broadcasts/{seeded.broadcast[B]}/{action}", data={"csrf_token": token}
        )
        assert response.status_code == 404, action
    for province in (B, ""):  # another province, or "everyone": its own province either way
        created = await client.post(
            "/broadcasts", data={"csrf_token": token, "template": "Hội chợ tháng 9", "province": province}
        )
        assert created.status_code == 303
    with services.db.session() as s:
        drafts = s.exec(select(Broadcast).where(Broadcast.template == "Hội chợ tháng 9")).all()
        theirs = s.exec(select(Broadcast.status).where(Broadcast.id == seeded.broadcast[B])).one()
    assert theirs == "draft"
    assert [Audience.from_dict(d.audience).province for d in drafts] == [A, A]


async def test_an_admin_sees_everything_and_the_audit_log(
    services: Services, client: httpx.AsyncClient
) -> None:
    seeded = Seeded(services)
    await login(client, "quantri")
    listed = (await client.get("/")).text
    assert NAMES[A] in listed and NAMES[B] in listed
    assert (await client.get(f"/leads/{seeded.lead[B]}")).status_code == 200
    assert f"Câu hỏi của {B}" in (await client.get("/questions")).text
    assert (await client.get(f"/broadcasts/{seeded.broadcast[B]}")).status_code == 200
    audit = await client.get("/audit")
    assert audit.status_code == 200 and "dashboard:quantri" in audit.text
    assert re.search(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", audit.text)  # dd/mm/yyyy HH:MM
    client.cookies.clear()
    await login(client, "nghean")
    assert (await client.get("/audit")).status_code == 404
    assert "/audit" not in (await client.get("/")).text


async def test_every_dashboard_action_is_in_the_audit_log(
    services: Services, client: httpx.AsyncClient
) -> None:
    seeded = Seeded(services)
    with services.db.unit() as repos:  # someone the broadcast reaches (no bot token: the console)
        listener = repos.users.get_or_create("console", "nghe-an", "Chị Lan")
        repos.profiles.update(listener.id or 0, province=A)
    await login(client, "nghean")
    token = await csrf(client)
    lead = seeded.lead[A]
    posts = [
        (f"/leads/{lead}/status", {"to_status": "contacted", "note": "Đã gọi"}),
        (f"/leads/{lead}/note", {"note": "Hẹn thứ hai"}),
        (f"/questions/{seeded.question[A]}/answer", {"answer": "Chào anh"}),
        (f"/deadlines/{seeded.deadline[A]}/withdraw", {}),
        (
            "/deadlines",
            {"due_on": (date.today() + timedelta(days=9)).isoformat(), "action": "Nộp hồ sơ bổ sung đợt 2"},
        ),
        ("/broadcasts", {"template": "Tin mới"}),
        (f"/broadcasts/{seeded.broadcast[A]}/confirm", {}),
    ]
    for url, data in posts:
        assert (await client.post(url, data={"csrf_token": token, **data})).status_code == 303, url
    with services.db.session() as s:
        newest = s.exec(select(Broadcast).order_by(col(Broadcast.id).desc())).first()
    assert newest is not None
    assert (
        await client.post(f"/broadcasts/{newest.id}/cancel", data={"csrf_token": token})
    ).status_code == 303
    await client.post("/logout", data={"csrf_token": token})
    with services.db.session() as s:
        rows = s.exec(
            select(StaffAction).where(StaffAction.actor != "test").order_by(col(StaffAction.id))
        ).all()  # the seeded drafts were composed by "test"
    assert [r.action for r in rows] == [
        "login",
        "lead_status",
        "lead_note",
        "question_answer",
        "deadline_withdraw",
        "deadline_add",
        "broadcast_create",
        "broadcast_confirm",
        "broadcast_cancel",
        "logout",
    ]
    assert {r.actor for r in rows} == {"dashboard:nghean"}
    assert (rows[1].object_type, rows[1].object_id) == ("lead", lead)
    await login(client, "quantri")
    only = (await client.get("/audit", params={"actor": "dashboard:nghean"})).text
    assert only.count('class="audit-row"') == 10
    assert "Đổi trạng thái hồ sơ" in only
