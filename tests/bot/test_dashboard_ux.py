"""The dashboard as staff read it all day (issue 14): Vietnamese words for every stored code, a
broadcast preview for a real recipient, a reopened final status, the conversation around a lead,
questions linked to the producer's leads, notes marked internal, and Vietnamese dates."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import httpx
from sqlmodel import select

from bot.services import Services
from services import deadlines
from services.broadcasts import Audience
from storage.models import Deadline, MessageLog, OutboxMessage, utcnow
from tests.bot.test_dashboard_security import login, seed_lead

STAFF_ACTOR = "dashboard:canbo1"
# Codes the database keeps that must never show through as they are.
RAW_CODES = re.compile(
    r"\b(producer|knowledge|dashboard:\S*|draft|sending|done|cancelled|pending|console|telegram|zalo"
    r"|new|contacted|eligible|not_eligible|planned|approved|rejected|household_business|cli)\b"
)


class VisibleText(HTMLParser):
    """The text a reader sees: no tags, attributes, styles or scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return " ".join(parser.parts)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def seed_everything(services: Services) -> None:
    """A lead moved by staff, with a note; deadlines from the calendar and from staff; broadcasts in
    every state; an answered question."""
    seed_lead(services.db)
    core = services.core
    kb = services.catalog.kb
    today = utcnow().date()
    with services.db.unit() as repos:
        lead = repos.leads.get(1)
        assert lead is not None
        core.leads.change_status(repos, lead, "contacted", STAFF_ACTOR, "Đã gọi điện")
        core.leads.add_note(repos, lead, STAFF_ACTOR, "Hẹn thứ Hai gọi lại")
        repos.deadlines.add(
            Deadline(due_on=today + timedelta(days=20), action="Nộp đề án khuyến công địa phương")
        )
        new = deadlines.NewDeadline(due_on=today + timedelta(days=30), action="Nộp hồ sơ hội chợ tháng 9")
        deadlines.add(repos, kb, new, today, STAFF_ACTOR)
        asker = repos.users.get_or_create("telegram", "43", "Chị Cúc")
        question = core.questions.ask(repos, asker, "Hỏi về máy sấy?", None)
        core.questions.answer(repos, question, "Chị gửi hồ sơ nhé.", STAFF_ACTOR)
        repos.users.get_or_create("console", "local", "Anh Dũng")  # the only channel here
        for _ in range(4):
            core.broadcasts.create(repos, "Chào {{ ten }}, hội chợ tháng 9", Audience(), [], STAFF_ACTOR)
        sending, done, cancelled = (repos.broadcasts.get(i) for i in (2, 3, 4))
        assert sending and done and cancelled
        core.broadcasts.confirm(repos, kb, sending)
        core.broadcasts.confirm(repos, kb, done)
        core.broadcasts.cancel(repos, cancelled)
    with services.db.unit() as repos:
        done_rows = select(OutboxMessage).where(
            OutboxMessage.kind == "broadcast", OutboxMessage.source_id == 3
        )
        for row in repos.session.exec(done_rows).all():
            row.status = "sent"


BROADCAST_PAGES = tuple(f"/broadcasts/{n}" for n in range(1, 5))
PAGES = ("/", "/leads/1", "/questions", "/deadlines", "/broadcasts", *BROADCAST_PAGES)


async def test_no_page_shows_a_raw_code(services: Services, client: httpx.AsyncClient) -> None:
    seed_everything(services)
    await login(client)
    shown = {}
    for path in PAGES:
        response = await client.get(path)
        assert response.status_code == 200, path
        text = visible_text(response.text)
        shown[path] = sorted(set(RAW_CODES.findall(text)))
    assert {path: codes for path, codes in shown.items() if codes} == {}
    lead = visible_text((await client.get("/leads/1")).text)
    assert "cán bộ canbo1" in lead and "người gửi hồ sơ" in lead
    assert "kế hoạch khuyến công" in visible_text((await client.get("/deadlines")).text)
    statuses = visible_text((await client.get("/broadcasts")).text)
    assert all(word in statuses for word in ("Bản nháp", "Đang gửi", "Đã gửi xong", "Đã hủy")), statuses


async def test_preview_reads_as_the_first_recipient_will(
    services: Services,
    client: httpx.AsyncClient,
) -> None:
    with services.db.unit() as repos:
        repos.users.get_or_create("console", "local", "Anh Dũng")
    await login(client)
    form = await client.get("/broadcasts")
    created = await client.post(
        "/broadcasts", data={"template": "Chào {{ ten }}, hội chợ tháng 9", "csrf_token": csrf_of(form.text)}
    )
    assert created.status_code == 303
    preview = visible_text((await client.get(created.headers["location"])).text)
    assert "Chào Anh Dũng, hội chợ tháng 9" in preview
    assert "canbo1," not in preview


async def test_nobody_to_send_to_is_said_and_cannot_be_confirmed(
    services: Services,
    client: httpx.AsyncClient,
) -> None:
    await login(client)
    csrf = csrf_of((await client.get("/broadcasts")).text)
    created = await client.post(
        "/broadcasts", data={"template": "Chào {{ ten }}, hội chợ", "province": "Sơn La", "csrf_token": csrf}
    )
    url = created.headers["location"]
    html = (await client.get(url)).text
    assert 'id="nobody"' in html and "confirm-form" not in html and 'id="sample"' not in html
    refused = await client.post(url + "/confirm", data={"csrf_token": csrf})
    assert refused.headers["location"].endswith("?msg=nobody")
    assert "Không có người nhận nào" in (await client.get(refused.headers["location"])).text
    with services.db.unit() as repos:
        broadcast = repos.broadcasts.get(int(url.rsplit("/", 1)[1]))
        assert broadcast is not None and broadcast.status == "draft"


async def test_a_refused_broadcast_keeps_what_was_typed(client: httpx.AsyncClient) -> None:
    await login(client)
    csrf = csrf_of((await client.get("/broadcasts")).text)
    typed = "Chào {{ ho_ten }}, hội chợ tháng 9 ở Vinh"  # an unknown placeholder
    response = await client.post(
        "/broadcasts",
        data={"template": typed, "province": "Nghệ An", "button_label": "Xem ngay", "csrf_token": csrf},
    )
    assert response.status_code == 400
    assert "Nội dung thông báo không dùng được" in response.text
    assert ">Chào {{ ho_ten }}, hội chợ tháng 9 ở Vinh</textarea>" in response.text
    assert "<option selected>Nghệ An</option>" in response.text
    assert 'value="Xem ngay"' in response.text


async def test_a_decided_lead_is_reopened_on_its_page_with_a_reason(
    services: Services,
    client: httpx.AsyncClient,
) -> None:
    seed_lead(services.db)
    with services.db.unit() as repos:
        lead = repos.leads.get(1)
        assert lead is not None
        services.core.leads.change_status(repos, lead, "not_eligible", STAFF_ACTOR)
    await login(client)
    html = (await client.get("/leads/1")).text
    assert 'id="reopen-form"' in html and 'id="status-form"' not in html
    csrf = csrf_of(html)
    without = await client.post("/leads/1/status", data={"to_status": "contacted", "csrf_token": csrf})
    assert without.headers["location"].endswith("msg=reason")
    reason = "Cơ sở bổ sung giấy phép kinh doanh"
    done = await client.post(
        "/leads/1/status", data={"to_status": "contacted", "note": reason, "csrf_token": csrf}
    )
    assert done.headers["location"].endswith("msg=status")
    with services.db.unit() as repos:
        events = repos.leads.events(1)
        assert (events[-1].from_status, events[-1].to_status, events[-1].note) == (
            "not_eligible",
            "contacted",
            reason,
        )
    page_text = visible_text((await client.get("/leads/1")).text)
    assert "Mở lại hồ sơ: " in page_text and reason in page_text


async def test_a_lead_shows_the_conversation_around_it(
    services: Services,
    client: httpx.AsyncClient,
) -> None:
    seed_lead(services.db)
    long = "Cơ sở em làm bún khô. " * 40
    with services.db.unit() as repos:
        lead = repos.leads.get(1)
        assert lead is not None
        at = lead.created_at

        def logged(text: str, direction: str, minutes: float) -> MessageLog:
            moment = at + timedelta(minutes=minutes)
            return MessageLog(
                user_id=lead.user_id, channel="telegram", direction=direction, text=text, created_at=moment
            )

        for n in range(1, 41):  # numbered away from the lead: "trước 01" is the last one before it
            repos.session.add(logged(f"trước {n:02d}", "in", -n))
        for n in range(1, 21):
            repos.session.add(logged(f"sau {n:02d}", "out", n))
        repos.session.add(logged(long, "in", -0.5))
    await login(client)
    html = (await client.get("/leads/1")).text
    shown = visible_text(html)
    assert [n for n in range(1, 41) if f"trước {n:02d}" in shown] == list(range(1, 20))  # 19 + the long one
    assert [n for n in range(1, 21) if f"sau {n:02d}" in shown] == list(range(1, 11))
    assert shown.index("trước 01") < shown.index("Hồ sơ gửi lúc") < shown.index("sau 01")
    assert "…" in shown and '<details class="long">' in html
    assert long.strip() in html  # the whole text, one click away


async def test_questions_link_to_the_askers_leads_and_conversation(
    services: Services,
    client: httpx.AsyncClient,
) -> None:
    seed_lead(services.db)
    with services.db.unit() as repos:
        asker = repos.users.get_or_create("telegram", "555", "Kẻ gian")  # the lead's producer
        assert asker.id is not None
        repos.messages.add(asker.id, "telegram", "in", "Máy sấy có được hỗ trợ không ạ?")
        services.core.questions.ask(repos, asker, "Bao giờ có kết quả ạ?", None)
        stranger = repos.users.get_or_create("telegram", "43", "Chị Cúc")
        services.core.questions.ask(repos, stranger, "Hỏi về hội chợ?", None)
    await login(client)
    html = (await client.get("/questions")).text
    first, second = html.split('id="question-1"')[1].split('id="question-2"')
    assert 'href="/leads/1"' in first and "KC-2026-000001" in first
    assert "Máy sấy có được hỗ trợ không ạ?" in first  # the conversation around the question
    assert 'href="/leads/' not in second and "chưa gửi hồ sơ" in second


async def test_notes_are_marked_internal_and_status_changes_with_their_delivery(
    services: Services,
    client: httpx.AsyncClient,
) -> None:
    seed_lead(services.db)
    with services.db.unit() as repos:
        lead = repos.leads.get(1)
        assert lead is not None
        services.core.leads.add_note(repos, lead, STAFF_ACTOR, "Hẹn thứ Hai gọi lại")
        services.core.leads.change_status(repos, lead, "contacted", STAFF_ACTOR, "Đã gọi điện")
    await login(client)

    def row_of(html: str, needle: str) -> str:
        return next(row for row in html.split("<tr>") if needle in row)

    html = (await client.get("/leads/1")).text
    assert "chỉ cán bộ thấy" in row_of(html, "Hẹn thứ Hai gọi lại")
    assert "đang chờ gửi" in row_of(html, "Đã gọi điện")
    with services.db.unit() as repos:
        for row in repos.session.exec(select(OutboxMessage).where(OutboxMessage.kind == "lead_status")).all():
            row.status = "sent"
    html = (await client.get("/leads/1")).text
    assert "đã gửi tới người dân" in row_of(html, "Đã gọi điện")
    assert "chỉ cán bộ thấy" not in row_of(html, "Đã gọi điện")


# Dates other than 05/03/2027 (14:30): ISO days, a day without its year, a time on its own.
ODD_DATES = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{2}/\d{2}\b(?!/\d{4})|(?<!\d{4} )\b\d{1,2}:\d{2}\b")
DASHBOARD_DATE = re.compile(r"\b\d{2}/\d{2}/\d{4}\b")


async def test_dates_read_day_month_year_and_long_names_are_cut(
    services: Services,
    client: httpx.AsyncClient,
) -> None:
    seed_everything(services)
    programme = services.catalog.kb.by_id["dak-lak-enterprise-setup"]  # a 72-character name
    with services.db.unit() as repos:
        lead = repos.leads.get(1)
        assert lead is not None
        lead.programme_id = programme.id
        repos.leads.save(lead)
        asker = repos.users.get_or_create("telegram", "43", "Chị Cúc")
        services.core.questions.ask(repos, asker, "Hỏi thêm?", None)
    await login(client)
    odd = {}
    for path in PAGES:
        text = visible_text((await client.get(path)).text)
        dates = ODD_DATES.findall(text)
        assert DASHBOARD_DATE.search(text) or path.startswith("/broadcasts"), path
        if dates:
            odd[path] = dates
    assert odd == {}
    html = (await client.get("/")).text
    assert f'<span title="{programme.title}">{programme.title[:50].strip()}…</span>' in html
    assert programme.title not in visible_text(html)
