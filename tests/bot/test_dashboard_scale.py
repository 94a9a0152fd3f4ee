"""The dashboard at size, over HTTP against the real app: the questions page and the lead list make a
fixed number of SQL statements however many questions are open (no query per question), open
questions come a page at a time, oldest first, and the learning queue's groups 30 at a time, the
most asked first; exports stream, the spreadsheet's first bytes leaving
after a few hundred rows, not the whole list, and read back cell for cell; an export reads the leads
in short batches, holding no database connection between them."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from openpyxl import load_workbook
from sqlalchemy import event

from bot.dashboard import export
from bot.dashboard.leads import leads_in_batches
from bot.services import Services
from bot.web import create_web_app
from storage.db import Database
from storage.models import Lead, LearningItem, MessageLog, StaffQuestion, saved_id
from storage.repositories import LeadQuery
from storage.search_text import lead_search_text
from tests.bot.test_dashboard_security import login

LABELS: dict[str, Any] = {"legal_forms": {}, "programmes": {}, "eligibility": {}, "statuses": {}}


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    """The SQL statements run on ``database`` meanwhile."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", record)


def ask_many(database: Database, count: int, first: int = 0) -> None:
    """``count`` producers, each with a lead, a message before and after their open question."""
    now = datetime.now(UTC)
    with database.unit() as repos:
        for i in range(first, first + count):
            user = repos.users.get_or_create("telegram", str(70_000 + i), f"Người hỏi {i}")
            user_id = saved_id(user)
            asked = now - timedelta(hours=count - i)
            repos.session.add(
                MessageLog(
                    user_id=user_id, channel="telegram", direction="in", text=f"trước {i}", created_at=asked
                )
            )
            repos.session.add(
                MessageLog(
                    user_id=user_id,
                    channel="telegram",
                    direction="out",
                    text=f"sau {i}",
                    created_at=asked + timedelta(minutes=1),
                )
            )
            repos.session.add(StaffQuestion(user_id=user_id, text=f"Câu hỏi số {i}?", created_at=asked))
            lead = Lead(
                submission_key=f"q{i}",
                user_id=user_id,
                channel="telegram",
                full_name=f"Hộ {i}",
                phone="09",
                consent_at=now,
            )
            repos.leads.add(lead, year=2026)


async def test_the_questions_page_makes_the_same_few_queries_however_many_are_open(
    services: Services, client: httpx.AsyncClient
) -> None:
    await login(client)
    ask_many(services.db, 2)
    with statements(services.db) as few:
        assert (await client.get("/questions")).status_code == 200
    ask_many(services.db, 60, first=2)
    with statements(services.db) as many:
        html = (await client.get("/questions")).text
    assert len(many) == len(few) <= 12, many
    # The oldest 50 of 62, each with its asker, lead and the talk around it; the rest on page 2.
    assert "(62)" in html and "Trang 1/2" in html
    assert 'id="question-1"' in html and 'id="question-50"' in html and 'id="question-51"' not in html
    card = html.split('id="question-7"')[1].split('id="question-8"')[0]
    assert "Người hỏi 6" in card and "KC-2026-000007" in card and "trước 6" in card and "sau 6" in card
    assert "trước 7" not in card
    second = (await client.get("/questions?page=2")).text
    assert 'id="question-51"' in second and 'id="question-62"' in second and 'id="question-50"' not in second


async def test_the_lead_list_counts_open_questions_without_loading_them(
    services: Services, client: httpx.AsyncClient
) -> None:
    await login(client)
    ask_many(services.db, 2)
    with statements(services.db) as few:
        assert (await client.get("/")).status_code == 200
    ask_many(services.db, 30, first=2)
    with statements(services.db) as many:
        html = (await client.get("/")).text
    assert len(many) == len(few)
    assert "Câu hỏi (32)" in html
    assert not [s for s in many if "FROM staff_questions" in s and "count" not in s.lower()]


def seed_leads(database: Database, count: int) -> None:
    now = datetime.now(UTC)
    with database.unit() as repos:
        user = repos.users.get_or_create("telegram", "900", "Chủ cơ sở")
        for i in range(1, count + 1):
            name = f"Nguyễn Văn {i}"
            repos.session.add(
                Lead(
                    id=i,
                    ref_code=f"KC-2026-{i:06d}",
                    submission_key=f"k{i}",
                    user_id=saved_id(user),
                    channel="telegram",
                    full_name=name,
                    phone=f"09{i:08d}",
                    establishment_name="=cmd|' /C calc'!A0" if i == 1 else "Cơ sở & <xưởng>",
                    estimated_cost_vnd=1_500_000 * i,
                    plan="  Mua máy\nsấy  ",
                    search_text=lead_search_text(f"KC-2026-{i:06d}", name, "", None, f"09{i:08d}"),
                    consent_at=now,
                    created_at=now - timedelta(minutes=i),
                )
            )


class Counted:
    """An iterator of leads that counts how many were taken."""

    def __init__(self, leads: list[Lead]):
        self.leads, self.taken = leads, 0

    def __iter__(self) -> Iterator[Lead]:
        for lead in self.leads:
            self.taken += 1
            yield lead


def test_the_spreadsheet_streams_its_first_bytes_after_a_few_rows(database: Database) -> None:
    seed_leads(database, 3000)
    with database.unit() as repos:
        leads = Counted(repos.leads.search(LeadQuery()))
    cols = export.columns(LABELS, ZoneInfo("UTC"))
    pieces = export.xlsx_chunks(leads, cols, "TIÊU ĐỀ", "Xuất lúc", datetime.now(UTC), every=500)
    first = next(pieces)
    assert first.startswith(b"PK") and leads.taken <= 500  # out before the rest is even read
    rest = list(pieces)
    assert leads.taken == 3000 and len(rest) >= 5
    sheet = load_workbook(io.BytesIO(first + b"".join(rest))).worksheets[0]
    assert sheet.title == "Ho so" and sheet["A1"].value == "TIÊU ĐỀ" and sheet["A2"].value == "Xuất lúc"
    assert [c.value for c in sheet[4]] == [header for header, _, _ in cols]
    newest, oldest = [c.value for c in sheet[5]], [c.value for c in sheet[3004]]
    assert newest[:2] == [1, "KC-2026-003000"] and oldest[:2] == [3000, "KC-2026-000001"]
    assert "'=cmd|' /C calc'!A0" in oldest and "Cơ sở & <xưởng>" in newest
    assert "  Mua máy\nsấy  " in newest  # spaces and line breaks kept
    assert 1_500_000 in oldest and sheet.cell(3004, oldest.index(1_500_000) + 1).number_format == "#,##0"
    assert sheet.freeze_panes == "C5" and sheet.auto_filter.ref == f"A4:{export.column_letter(len(cols))}3004"
    assert sheet.column_dimensions["A"].width == cols[0][1]
    assert not [c.coordinate for row in sheet.iter_rows() for c in row if c.data_type == "f"]


def test_an_empty_spreadsheet_is_still_a_workbook() -> None:
    cols = export.columns(LABELS, ZoneInfo("UTC"))
    data = b"".join(export.xlsx_chunks([], cols, "T", "S", datetime.now(UTC)))
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    assert sheet.max_row == 4 and sheet.auto_filter.ref is None


def test_an_export_reads_the_leads_in_short_batches(database: Database) -> None:
    seed_leads(database, 2500)
    with statements(database) as seen:
        read = leads_in_batches(database, LeadQuery(text="nguyen"), batch=1000)
        first = next(read)
        assert first.id == 2500 and database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        ids = [first.id, *(lead.id for lead in read)]
    assert ids == list(range(2500, 0, -1))  # newest first, each once
    assert len([s for s in seen if "FROM leads" in s]) == 3  # 1000 + 1000 + 500, none held open


async def body_messages(app: Any, path: str, cookie: str) -> list[bytes]:
    """GET ``path`` from the ASGI app itself: the body as the app sends it, message by message."""
    sent: list[bytes] = []
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if requested:  # the browser stays connected until the response ends
            await asyncio.Event().wait()
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent.append(message.get("body", b""))
        elif message["type"] == "http.response.start":
            assert message["status"] == 200, message

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    return [body for body in sent if body]


async def test_both_exports_are_streamed_in_pieces(services: Services) -> None:
    seed_leads(services.db, 1200)
    app = create_web_app(services)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        await login(http)
        cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
    csv_pieces = await body_messages(app, "/export.csv", cookie)
    assert len(csv_pieces) >= 3 and b"".join(csv_pieces).decode("utf-8-sig").count("KC-2026-") == 1200
    xlsx_pieces = await body_messages(app, "/export.xlsx", cookie)
    assert len(xlsx_pieces) >= 3  # 500 rows at a time, not one file at the end
    sheet = load_workbook(io.BytesIO(b"".join(xlsx_pieces))).worksheets[0]
    assert sheet.max_row == 4 + 1200 and "1200 hồ sơ" in str(sheet["A2"].value)


async def test_the_learning_queue_shows_its_groups_a_page_at_a_time(
    services: Services, client: httpx.AsyncClient
) -> None:
    await login(client)
    now = datetime.now(UTC)
    with services.db.unit() as repos:
        for i in range(40):  # group i asked i + 1 times: group 39 is the most asked
            for k in range(i + 1):
                text = f"hoi ve chu de so{i} lan"
                repos.session.add(
                    LearningItem(
                        text=text,
                        folded=text,
                        source="not_confident",
                        group_key=f"chu de so{i}",
                        created_at=now - timedelta(minutes=k),
                    )
                )
    first = (await client.get("/unanswered")).text
    assert "(40 nhóm)" in first and "Trang 1/2" in first
    assert 'data-key="chu de so39"' in first and 'data-key="chu de so10"' in first
    assert 'data-key="chu de so9"' not in first
    second = (await client.get("/unanswered?page=2")).text
    assert 'data-key="chu de so9"' in second and 'data-key="chu de so0"' in second
    assert 'data-key="chu de so10"' not in second
