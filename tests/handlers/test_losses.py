"""Losses found by testing the bot the way an operator and a producer would, each fixed at its cause:
a staff answer given twice, a withdrawn deadline brought back by the next sweep, reminder settings
that did nothing, a form answer longer than its column, a lead's pre-check from a stale profile, a
question's province rewritten by a later move, the outbox overwriting the dialogue's state, and
search and export that stopped at the newest 20,000 leads."""

from __future__ import annotations

import threading
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr
from sqlmodel import select

from bot.dashboard.export import columns, csv_chunks
from bot.scheduler import ReminderScheduler
from bot.services import build_services
from bot.settings import Settings
from handlers.apply import max_length
from handlers.notify import ChatMessages
from handlers.texts import Texts
from knowledge.catalog import Catalog
from services.notifications import PRIORITY_BROADCAST
from services.questions import QuestionService
from services.staff_directory import StaffDirectory
from storage.db import Database
from storage.models import (
    Conversation,
    Deadline,
    Lead,
    OutboxMessage,
    Reminder,
    StaffQuestion,
    saved_id,
    table_of,
    utcnow,
)
from storage.repositories import LeadQuery, Repos
from tests.handlers.conftest import Chat
from tests.support.checks import one
from tests.support.seed import seed_leads

ANSWERS = {
    "full_name": "Nguyễn Thị Lan",
    "phone": "0912.345.678",
    "establishment_name": "Hộ kinh doanh Bún Bà Lan",
    "province": "nghe an",
    "commune": "xã Nghi Phong",
    "sector": "Làm bún tươi, bánh phở",
    "plan": "Mua máy làm bún tự động 200 kg/giờ thay máy cũ",
    "estimated_cost_vnd": "450 triệu",
}


def fill_form(chat: Chat, until: str | None = None, **answers: str) -> None:
    """Answer the application form already open, step by step, up to ``until`` or the summary."""
    for _ in range(20):
        step = chat.state()[0].step
        if step == until or step == "summary":
            return
        if step == "legal_form":
            chat.answer("household_business")
        elif step == "consent":
            chat.answer("yes")
        else:
            chat.send(answers.get(step, ANSWERS[step]))
    raise AssertionError("the form did not end")


def test_a_second_answer_to_one_question_is_delivered_too(chat: Chat, database: Database) -> None:
    chat.press("h")
    chat.send("Hồ sơ máy sấy của em đến đâu rồi ạ?")
    questions = QuestionService(ChatMessages(Texts()), StaffDirectory())
    with database.session() as s:
        repos = Repos(s)
        question = s.exec(select(StaffQuestion)).one()
        questions.answer(repos, question, "Hồ sơ đang được thẩm định.", "dashboard:a")
        questions.answer(repos, question, "Bổ sung: cần thêm báo giá máy.", "dashboard:b")
    with database.session() as s:
        answers = s.exec(select(OutboxMessage.text).where(OutboxMessage.kind == "question_answer")).all()
    assert len(answers) == 2
    assert "báo giá" in answers[1]


def test_a_question_keeps_the_province_it_was_asked_from(chat: Chat, database: Database) -> None:
    chat.press("r")
    chat.send("Sơn La")  # the reminder flow stores the province in the profile
    chat.press("h")
    chat.send("Lịch hội chợ năm sau ở đâu ạ?")
    with database.session() as s:
        repos = Repos(s)
        user = one(repos.users.find("telegram", chat.chat_id))
        repos.profiles.update(saved_id(user), province="Nghệ An")  # the producer moves later
    with database.session() as s:
        question = s.exec(select(StaffQuestion)).one()
        staff_note = s.exec(select(OutboxMessage.text).where(OutboxMessage.kind == "question_new")).all()
    assert question.province == "Sơn La"
    assert all("Nghệ An" not in text for text in staff_note)


def test_a_withdrawn_knowledge_deadline_stays_withdrawn(database: Database, catalog: Catalog) -> None:
    services = build_services(Settings(_env_file=None, database_url=database.url))
    services.db.dispose()
    services.db = database
    sweeper = ReminderScheduler(services)
    sweeper.sweep_once()
    with database.session() as s:
        deadline = s.exec(select(Deadline).where(Deadline.created_by == "knowledge")).first()
        assert deadline is not None and deadline.is_active
        deadline.is_active, deadline.withdrawn_by, deadline.withdrawn_at = False, "dashboard:a", utcnow()
        s.add(deadline)
        withdrawn = deadline.id
    sweeper.sweep_once()
    with database.session() as s:
        assert one(s.get(Deadline, withdrawn)).is_active is False


def test_reminder_offsets_and_hour_come_from_the_settings(database: Database) -> None:
    settings = Settings(
        _env_file=None,
        database_url=database.url,
        telegram_bot_token=SecretStr("1:x"),  # reminders go to the channels that run
        reminder_offsets_days=[10, 2],
        reminder_hour=17,
    )
    services = build_services(settings)
    try:
        chat = Chat(services.dialogue)
        chat.press("r")
        chat.send("Nghệ An")
        chat.answer("all")
        ReminderScheduler(services).sweep_once()
        with services.db.session() as s:
            reminders = s.exec(select(Reminder)).all()
        assert reminders
        assert {r.offset_days for r in reminders} <= {10, 2}
        local = {r.due_at.astimezone(settings.tz).hour for r in reminders}
        assert local == {17}
    finally:
        services.close()


def test_every_free_text_answer_fits_the_columns_that_store_it() -> None:
    """An answer the form accepts can always be saved (it used to fail on PostgreSQL at 257-300)."""
    specs = Texts().apply_fields
    for field, spec in specs.items():
        if spec["kind"] != "text":
            continue
        limit = max_length(field, spec)
        for model in (Lead,):
            column = table_of(model).c.get(field)
            length = getattr(column.type, "length", None) if column is not None else None
            if length:
                assert limit <= length, field


def test_a_long_sector_answer_is_refused_with_the_limit_and_a_fitting_one_is_saved(
    chat: Chat, database: Database
) -> None:
    chat.press("a:machinery-national")
    fill_form(chat, until="sector")
    assert chat.shown("apply_question")["max_length"] == 256  # the question says the limit
    chat.send("Làm bún tươi " * 25)  # 300 characters
    refused = chat.shown("apply_question")
    assert refused["retry"] and "256" in refused["rejected"]  # refused, saying why
    chat.send("Làm bún tươi, bánh phở " + "x" * 200)
    with database.session() as s:
        user = one(Repos(s).users.find("telegram", chat.chat_id))
        assert (
            len(one(one(Repos(s).profiles.get(saved_id(user))).sector)) <= 256
        )  # stored, on SQLite and PostgreSQL


def test_a_leads_pre_check_uses_the_answers_as_edited(chat: Chat, database: Database) -> None:
    """The profile said "phường" from an earlier check; the application's address says "xã"."""
    chat.press("e:machinery-national")
    chat.answer("household_business")
    chat.answer("production")
    chat.send("Nghệ An phường Vinh Tân")
    with database.session() as s:
        user = one(Repos(s).users.find("telegram", chat.chat_id))
        assert one(Repos(s).profiles.get(saved_id(user))).place_type == "ward"
    chat.press("a:machinery-national")
    fill_form(chat, commune="xã Nghi Phong")
    assert chat.state()[0].step == "summary"
    chat.press(chat.button_for("as:"))
    with database.session() as s:
        lead = s.exec(select(Lead)).one()
    reasons = " ".join(o["reason"] for o in lead.eligibility["outcomes"])
    assert "Cơ sở ở xã" in reasons and "ở phường" not in reasons  # it said "✔ Cơ sở ở phường"


def _sent_menu(database: Database, user_id: int, buttons: list[dict]) -> None:
    """A broadcast with buttons, queued and delivered to ``user_id`` now."""
    with database.session() as s:
        repos = Repos(s)
        user = one(repos.users.get(user_id))
        row = repos.outbox.add("broadcast", 1, user, "Tin mới", buttons, PRIORITY_BROADCAST, dedupe_key=None)
        assert row is not None
        row.status, row.sent_at = "sent", utcnow()


def test_the_outbox_never_overwrites_the_dialogues_state(database: Database, catalog: Catalog) -> None:
    """Zalo: a broadcast's menu is delivered while the producer is answering a form. The outbox
    writes its own rows only (the dialogue reads the menu from them), so no answer is lost (it once
    rewrote the whole state from a stale read)."""
    from handlers.dialogue import Dialogue

    dialogue = Dialogue(database, catalog)
    chat = Chat(dialogue, channel="zalo", chat_id="abc123")
    chat.press("a:machinery-national")
    with database.session() as s:
        user_id = saved_id(one(Repos(s).users.find("zalo", "abc123")))
    stop = threading.Event()

    def deliver_menus() -> None:
        while not stop.is_set():
            _sent_menu(database, user_id, [{"row": 0, "label": "Đăng ký ngay", "data": "a"}])

    thread = threading.Thread(target=deliver_menus)
    thread.start()
    try:
        names = [f"Nguyễn Văn {c}" for c in "ABCDEFGHIK"]
        for name in names:
            chat.send(name)
            with database.session() as s:
                conversation = one(s.get(Conversation, user_id))
                assert conversation.data["_draft"]["values"].get("full_name") == name
            chat.send("quay lại")
    finally:
        stop.set()
        thread.join()


def test_a_menu_delivered_by_the_outbox_answers_the_next_number(database: Database, catalog: Catalog) -> None:
    from handlers.dialogue import Dialogue

    dialogue = Dialogue(database, catalog)
    chat = Chat(dialogue, channel="zalo", chat_id="abc124")
    chat.send("/start")
    with database.session() as s:
        user_id = saved_id(one(Repos(s).users.find("zalo", "abc124")))
    _sent_menu(database, user_id, [{"row": 0, "label": "Đăng ký ngay", "data": "a"}])
    chat.send("1")
    assert chat.state()[0].flow == "apply"  # the broadcast's button, not the main menu's first item


@pytest.mark.slow
def test_search_and_export_have_no_cap(database: Database) -> None:
    count = 20_050
    seed_leads(database, count)
    with database.session() as s:
        repos = Repos(s)
        assert repos.leads.count(LeadQuery()) == count
        found = repos.leads.search(LeadQuery(text="nguyen thi dau"))
        assert [lead.ref_code for lead in found] == ["KC-2026-000001"]  # the oldest of 20,050
        assert repos.leads.count(LeadQuery(text="0900000001")) == 1  # by phone digits
        labels: dict[str, Any] = {"legal_forms": {}, "programmes": {}, "eligibility": {}, "statuses": {}}
        exported = b"".join(csv_chunks(repos.leads.stream(LeadQuery()), columns(labels, ZoneInfo("UTC"))))
    rows = exported.decode("utf-8-sig").splitlines()
    assert len(rows) == count + 1  # the header and every lead
    assert "KC-2026-000001" in rows[-1]
