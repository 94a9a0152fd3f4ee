"""The application form: validation, reuse of the profile, summary and edits, idempotent submit,
resume after a restart, /hoso, and the staff side in the chat."""

from __future__ import annotations

from sqlmodel import select

from handlers.dialogue import Dialogue
from handlers.types import Incoming, Kind
from knowledge.catalog import Catalog
from storage.db import Database
from storage.models import Lead, LeadEvent, OutboxMessage, StaffQuestion
from tests.handlers.conftest import Chat, recording_dialogue
from tests.support.checks import one

STAFF_ID = "900"


def step(chat: Chat) -> str | None:
    return chat.state()[0].step


def fill_form(chat: Chat, programme: str = "machinery-national") -> None:
    chat.press(f"a:{programme}")
    assert step(chat) == "full_name"
    chat.send("Nguyễn Thị Lan")
    chat.send("0912.345.678")
    chat.send("Hộ kinh doanh Bún Bà Lan")
    chat.answer("household_business")
    chat.send("nghe an")
    chat.send("xã Nghi Phong")
    chat.send("Làm bún tươi, bánh phở")
    chat.send("Mua máy làm bún tự động 200 kg/giờ thay máy cũ")
    chat.send("450 triệu")
    assert step(chat) == "consent"
    chat.answer("yes")


def leads(chat: Chat) -> list[Lead]:
    with chat.dialogue.db.session() as s:
        return list(s.exec(select(Lead)).all())


def test_full_application_gives_a_reference_code_and_checklist(chat: Chat) -> None:
    fill_form(chat)
    assert step(chat) == "summary"
    assert "0912 345 678" in chat.text and "450 triệu đồng" in chat.text
    submit = chat.button_for("as:")
    chat.press(submit)
    done = chat.shown("apply_done")
    programme = one(chat.dialogue.catalog.kb.programme("machinery-national"))
    for_household = [d.text for d in programme.documents if "household_business" in (d.only_for or [])]
    assert not done["again"] and done["programme"] is programme
    assert done["documents"]  # the document checklist, filtered for a household business
    assert set(for_household) <= set(done["documents"]) < {d.text for d in programme.documents}
    with chat.dialogue.db.session() as s:
        lead = s.exec(select(Lead)).one()
        assert done["lead"].ref_code == lead.ref_code == "KC-2026-000001" and lead.ref_code in chat.text
        assert (lead.phone, lead.province, lead.estimated_cost_vnd) == ("0912345678", "Nghệ An", 450_000_000)
        assert lead.eligibility["status"] == "unknown"  # the form does not ask production vs trading
        assert [o["status"] for o in lead.eligibility["outcomes"]] == ["eligible", "unknown", "eligible"]
        assert lead.consent_at is not None


def test_double_tap_on_submit_creates_one_lead(chat: Chat) -> None:
    fill_form(chat)
    submit = chat.button_for("as:")
    chat.press(submit)
    first = chat.text
    chat.press(submit)
    assert chat.shown("apply_done")["again"]
    with chat.dialogue.db.session() as s:
        assert len(s.exec(select(Lead)).all()) == 1
        ref = one(s.exec(select(Lead)).one().ref_code)
    assert ref in first and ref in chat.text


def test_invalid_answers_are_asked_again_with_an_example(chat: Chat) -> None:
    chat.press("a:machinery-national")
    chat.send("12345")
    assert step(chat) == "full_name"
    question = chat.shown("apply_question")
    assert question["retry"] and question["example"]
    chat.send("Trần Văn Bình")
    chat.send("số của em")
    assert step(chat) == "phone" and "0912 345 678" in chat.text
    chat.send("0212345678")
    chat.send("123")
    assert step(chat) == "phone"
    assert "ask_staff" not in chat.text and "h" in chat.buttons  # after two re-asks: a way out
    chat.send("+84 983 456 789")
    assert step(chat) == "establishment_name"


def test_telegram_contact_button_gives_the_phone(chat: Chat) -> None:
    chat.press("a:machinery-national")
    chat.send("Lê Văn Cường")
    assert chat.last[-1].ask_contact
    chat.last = chat.dialogue.handle(
        Incoming("telegram", chat.chat_id, Kind.CONTACT, user_name=chat.name, contact_phone="84912345678")
    )
    assert step(chat) == "establishment_name"
    assert chat.state()[1].phone == "0912345678"


def test_profile_answers_are_reused(chat: Chat) -> None:
    chat.press("e")
    chat.answer("coop")
    chat.answer("production")
    chat.send("Lâm Đồng")
    chat.press("a:machinery-national")
    chat.send("Phạm Văn Dũng")
    chat.send("0987654321")
    chat.send("HTX Cà phê Cầu Đất")
    assert step(chat) == "commune"  # legal form and province came from the profile


def test_edit_a_field_from_the_summary(chat: Chat) -> None:
    fill_form(chat)
    chat.answer("edit:phone")
    assert step(chat) == "phone"
    chat.send("0977 111 222")
    assert step(chat) == "summary"
    assert "0977 111 222" in chat.text


def test_refusing_consent_sends_nothing(chat: Chat) -> None:
    chat.press("a:machinery-national")
    for text in (
        "Nguyễn Văn An",
        "0912345678",
        "Cơ sở An",
        "1",
        "nghe an",
        "xa A",
        "lam bun",
        "mua may lam bun moi",
    ):
        chat.send(text)
    chat.answer("skip")
    chat.answer("no")
    assert chat.state()[0].flow == "menu"
    assert leads(chat) == []


def test_half_filled_application_survives_a_restart_and_can_be_resumed(
    chat: Chat, database: Database, catalog: Catalog
) -> None:
    chat.press("a:branding-trademark")
    chat.send("Võ Thị Hoa")
    chat.send("0912345678")
    restarted = Chat(Dialogue(database, catalog), chat_id=chat.chat_id)
    restarted.send("HTX Nước mắm Cửa Hội")
    assert step(restarted) == "legal_form"
    restarted.send("menu")  # leave the form
    restarted.press("a")
    assert step(restarted) == "resume_offer"
    restarted.answer("resume")
    assert step(restarted) == "legal_form"


def test_application_from_the_menu_chooses_a_programme(chat: Chat) -> None:
    chat.press("a")
    assert step(chat) == "programme"
    chat.answer("c:trade_fair")
    chat.answer("p:trade-fair-domestic")
    assert step(chat) == "full_name"


def test_cancel_keeps_the_draft(chat: Chat) -> None:
    chat.press("a:machinery-national")
    chat.send("Nguyễn Văn An")
    chat.send("hủy")
    assert chat.state()[0].flow == "menu"
    assert chat.state()[0].data["_draft"]["values"]["full_name"] == "Nguyễn Văn An"


def test_my_applications_lists_statuses(chat: Chat) -> None:
    chat.send("/hoso")
    assert chat.shown("my_applications")["leads"] == []
    fill_form(chat)
    chat.press(chat.button_for("as:"))
    chat.send("/hoso")
    [lead] = chat.shown("my_applications")["leads"]
    assert lead.status == "new" and lead.ref_code in chat.text


def test_markup_in_answers_is_escaped(chat: Chat) -> None:
    chat.press("a:machinery-national")
    chat.send("<b>Lan</b> & *Co*")
    chat.send("0912345678")
    chat.send("<script>alert(1)</script> xưởng")
    assert "<script>" not in chat.text


# --- staff in the chat ---


def staff_dialogue(database: Database, catalog: Catalog) -> Dialogue:
    return recording_dialogue(database, catalog, staff_telegram_ids={STAFF_ID})


def test_new_lead_is_queued_for_staff_with_status_buttons(database: Database, catalog: Catalog) -> None:
    dialogue = staff_dialogue(database, catalog)
    producer = Chat(dialogue)
    fill_form(producer)
    producer.press(producer.button_for("as:"))
    with database.session() as s:
        message = s.exec(select(OutboxMessage).filter_by(kind="lead_new")).one()
        assert message.chat_id == STAFF_ID and message.channel == "telegram"
        assert "0912345678" in message.text  # staff see the phone number
        assert any(b["data"].startswith("ls:") for b in message.buttons)


def test_staff_changes_a_status_and_the_producer_is_notified(database: Database, catalog: Catalog) -> None:
    dialogue = staff_dialogue(database, catalog)
    producer = Chat(dialogue)
    fill_form(producer)
    producer.press(producer.button_for("as:"))
    officer = Chat(dialogue, chat_id=STAFF_ID, name="Cán bộ Hà")
    officer.press("ls:1:contacted")
    assert officer.shown("staff_status_changed")["lead"].status == "contacted"
    assert officer.shown("lead_status_changed")["event"].to_status == "contacted"  # for the producer
    with database.session() as s:
        lead = one(s.get(Lead, 1))
        assert lead.status == "contacted"
        event = s.exec(select(LeadEvent).filter_by(to_status="contacted")).one()
        assert event.actor.startswith(f"telegram:{STAFF_ID}")
        note = s.exec(select(OutboxMessage).filter_by(kind="lead_status")).one()
        assert note.chat_id == producer.chat_id
    officer.press("ls:1:approved")  # not allowed from "contacted"
    refused = officer.shown("staff_status_refused")
    assert (refused["lead"].status, refused["wanted"]) == ("contacted", "approved")
    assert not refused["reopening"]
    officer.press("ls:1:not_eligible")
    officer.press("ls:1:contacted")  # reopening a decision needs a reason, written on the dashboard
    refused = officer.shown("staff_status_refused")
    assert (refused["lead"].status, refused["wanted"], refused["reopening"]) == (
        "not_eligible",
        "contacted",
        True,
    )


def test_non_staff_cannot_use_staff_buttons(database: Database, catalog: Catalog) -> None:
    dialogue = staff_dialogue(database, catalog)
    producer = Chat(dialogue)
    fill_form(producer)
    producer.press(producer.button_for("as:"))
    for data in ("ls:1:eligible", "ld:1", "qa:1"):
        producer.press(data)
        assert "stale" in producer.templates
    producer.send("/leads")
    assert "0912345678" not in producer.text
    with database.session() as s:
        assert one(s.get(Lead, 1)).status == "new"


def test_staff_lists_open_leads(database: Database, catalog: Catalog) -> None:
    dialogue = staff_dialogue(database, catalog)
    producer = Chat(dialogue)
    fill_form(producer)
    producer.press(producer.button_for("as:"))
    officer = Chat(dialogue, chat_id=STAFF_ID)
    officer.send("/leads")
    assert "KC-" in officer.text and "ld:1" in officer.buttons
    officer.press("ld:1")
    assert "0912345678" in officer.text


def test_staff_answer_reaches_the_producer(database: Database, catalog: Catalog) -> None:
    dialogue = staff_dialogue(database, catalog)
    producer = Chat(dialogue)
    producer.press("h")
    producer.send("Hội chợ năm sau tổ chức khi nào ạ?")
    with database.session() as s:
        staff_note = s.exec(select(OutboxMessage).filter_by(kind="question_new")).one()
        assert staff_note.chat_id == STAFF_ID
    officer = Chat(dialogue, chat_id=STAFF_ID)
    officer.press("qa:1")
    officer.send("Dạ, tháng 4 năm sau ạ.")
    with database.session() as s:
        question = one(s.get(StaffQuestion, 1))
        assert question.status == "answered" and question.answer == "Dạ, tháng 4 năm sau ạ."
        answer = s.exec(select(OutboxMessage).filter_by(kind="question_answer")).one()
        assert answer.chat_id == producer.chat_id and "tháng 4" in answer.text


ANSWERS = {
    "full_name": "Nguyễn Văn An",
    "phone": "0912345678",
    "establishment_name": "Cơ sở An Phát",
    "province": "Nghệ An",
    "commune": "xã Nghi Phong",
    "sector": "Làm bún",
    "plan": "Mua máy làm bún tự động",
    "estimated_cost_vnd": "300 triệu",
}
REFUSED = {
    "full_name": ["", "1234", "https://spam.example", "A"],
    "phone": ["abc", "0212345678", "12345"],
    "establishment_name": ["x", "12345"],
    "province": ["Paris", "xyz"],
    "commune": ["a"],
    "sector": ["ab"],
    "plan": ["mua máy", "x" * 1200],
    "estimated_cost_vnd": ["nhiều lắm", "500"],
}


def test_every_field_refuses_bad_answers_and_accepts_good_ones(chat: Chat) -> None:
    chat.press("a:machinery-national")
    order = [
        "full_name",
        "phone",
        "establishment_name",
        "legal_form",
        "province",
        "commune",
        "sector",
        "plan",
        "estimated_cost_vnd",
    ]
    for field in order:
        assert step(chat) == field
        if field == "legal_form":
            chat.send("không biết")
            assert step(chat) == "legal_form"
            chat.send("htx")
            continue
        for bad in REFUSED[field]:
            chat.send(bad)
            assert step(chat) == field, (field, bad)
            assert not bad or chat.shown("apply_question")["retry"], (field, bad)
        chat.send(ANSWERS[field])
    assert step(chat) == "consent"
    chat.send("ừ")
    assert step(chat) == "summary"
    assert "Hợp tác xã" in chat.text and "300 triệu đồng" in chat.text
