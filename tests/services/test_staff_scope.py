"""Roles and provinces: what one staff member may see (``services.staff_scope``), which staff chats a
new lead or question reaches, what a province account sees and may do in the staff chat, and the
audit rows the services write."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel import col, select

from handlers.dialogue import Dialogue
from knowledge.catalog import Catalog
from services import audit, deadlines
from services.broadcasts import Audience
from services.staff_directory import StaffDirectory
from services.staff_scope import Scope
from storage.db import Database
from storage.models import (
    Broadcast,
    Deadline,
    Lead,
    OutboxMessage,
    StaffAccount,
    StaffAction,
    StaffQuestion,
    saved_id,
)
from storage.repositories import LeadQuery
from tests.handlers.conftest import Chat, recording_dialogue

A = "Nghệ An"
B = "Hà Tĩnh"
CONFIGURED = "100"  # STAFF_TELEGRAM_IDS: an administrator
ADMIN_TG, A_TG, B_TG = 201, 202, 203


def lead(province: str | None) -> Lead:
    return Lead(
        submission_key=f"k-{province}",
        user_id=1,
        channel="telegram",
        full_name="Nguyễn Văn A",
        phone="0912345678",
        province=province,
        eligibility={"status": "unknown"},
        consent_at=datetime.now(UTC),
    )


def test_an_admin_sees_everything() -> None:
    scope = Scope.of(StaffAccount(username="qt", password_hash="x", role="admin"))
    assert scope.is_admin
    assert scope.sees_lead(lead(B)) and scope.sees_lead(lead(None))
    assert scope.sees_question(StaffQuestion(user_id=1, text="?", province=B))
    national = Deadline(due_on=date(2026, 12, 1), action="Nộp hồ sơ")
    assert scope.sees_deadline(national) and scope.edits_deadline(national)
    assert scope.audience_province(None) is None and scope.audience_province(B) == B
    assert scope.lead_query(LeadQuery(text="nguyen")) == LeadQuery(text="nguyen")


def test_a_province_account_sees_only_its_province() -> None:
    scope = Scope.of(StaffAccount(username="na", password_hash="x", role="province", province=A))
    assert not scope.is_admin
    assert scope.sees_lead(lead(A)) and not scope.sees_lead(lead(B)) and not scope.sees_lead(lead(None))
    assert scope.sees_question(StaffQuestion(user_id=1, text="?", province=A))
    assert not scope.sees_question(StaffQuestion(user_id=1, text="?", province=B))
    mine = Deadline(due_on=date(2026, 12, 1), action="Nộp hồ sơ", province=A)
    theirs = Deadline(due_on=date(2026, 12, 1), action="Nộp hồ sơ", province=B)
    national = Deadline(due_on=date(2026, 12, 1), action="Nộp hồ sơ")
    assert scope.sees_deadline(mine) and scope.edits_deadline(mine)
    assert scope.sees_deadline(national) and not scope.edits_deadline(national)  # read-only
    assert not scope.sees_deadline(theirs) and not scope.edits_deadline(theirs)
    assert scope.deadline_province(None) == A and scope.deadline_province(B) == A
    assert scope.sees_broadcast(Broadcast(template="t", audience={"province": A}, created_by="x"))
    assert not scope.sees_broadcast(Broadcast(template="t", audience={"province": B}, created_by="x"))
    assert not scope.sees_broadcast(Broadcast(template="t", audience={}, created_by="x"))
    assert scope.audience_province(None) == A and scope.audience_province(B) == A
    assert scope.lead_query(LeadQuery()).province == A
    assert scope.lead_query(LeadQuery(province=B)).nothing


def test_a_province_account_without_a_province_sees_nothing() -> None:
    scope = Scope.of(StaffAccount(username="x", password_hash="x", role="province"))
    assert not scope.is_admin and not scope.sees_lead(lead(A)) and not scope.sees_lead(lead(None))


def test_the_lead_query_filters_in_sql(database: Database) -> None:
    with database.unit() as repos:
        user = repos.users.get_or_create("telegram", "1", "A")
        for province in (A, B, A):
            row = lead(province)
            row.user_id = user.id or 0
            row.submission_key = f"k{repos.leads.count(LeadQuery())}"
            repos.leads.add(row, 2026)
    within = Scope(province=A)
    with database.unit() as repos:
        assert repos.leads.count(within.lead_query(LeadQuery())) == 2
        assert {x.province for x in repos.leads.search(within.lead_query(LeadQuery()))} == {A}
        assert repos.leads.count(within.lead_query(LeadQuery(province=B))) == 0
        assert repos.leads.count(Scope().lead_query(LeadQuery())) == 3
        # A province account without a province (a bad row, however made) lists and exports nothing.
        nowhere = Scope.of(StaffAccount(username="x", password_hash="x", role="province"))
        assert repos.leads.count(nowhere.lead_query(LeadQuery())) == 0
        assert repos.leads.batch_before(nowhere.lead_query(LeadQuery()), None, 10) == []


# --- the staff chats ---


def add_accounts(database: Database) -> None:
    with database.unit() as repos:
        repos.staff.upsert("quantri", "h", ADMIN_TG)
        repos.staff.upsert("nghean", "h", A_TG, "province", A)
        repos.staff.upsert("hatinh", "h", B_TG, "province", B)


def staff_dialogue(database: Database, catalog: Catalog) -> Dialogue:
    add_accounts(database)
    return recording_dialogue(database, catalog, staff_telegram_ids={CONFIGURED})


def chats_of(database: Database, kind: str) -> set[str]:
    with database.session() as s:
        return set(s.exec(select(OutboxMessage.chat_id).where(OutboxMessage.kind == kind)).all())


def test_scopes_of_the_staff_chats(database: Database) -> None:
    add_accounts(database)
    directory = StaffDirectory.of([CONFIGURED])
    with database.unit() as repos:
        scopes = directory.scopes(repos)
        assert scopes == {
            CONFIGURED: Scope(),
            str(ADMIN_TG): Scope(),
            str(A_TG): Scope(province=A),
            str(B_TG): Scope(province=B),
        }
        producer = repos.users.get_or_create("telegram", "555", "Hộ A")
        assert directory.scope_of(repos, producer) is None
        assert {u.external_id for u in directory.chats(repos, A)} == {
            CONFIGURED,
            str(ADMIN_TG),
            str(A_TG),
        }


def test_new_leads_and_questions_reach_the_admins_and_their_province_only(
    database: Database, catalog: Catalog
) -> None:
    dialogue = staff_dialogue(database, catalog)
    core = dialogue.services
    with database.unit() as repos:
        producer = repos.users.get_or_create("telegram", "555", "Hộ A")
        row = lead(A)
        row.user_id = producer.id or 0
        core.leads.submit(repos, row, None, 2026)
        core.questions.ask(repos, producer, "Hồ sơ máy sấy cần gì?", B)
        core.questions.ask(repos, producer, "Câu hỏi chưa rõ tỉnh", None)
    admins = {CONFIGURED, str(ADMIN_TG)}
    assert chats_of(database, "lead_new") == admins | {str(A_TG)}
    with database.session() as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "question_new")).all()
        by_question = {(m.source_id, m.chat_id) for m in rows}
    assert {c for q, c in by_question if q == 1} == admins | {str(B_TG)}
    assert {c for q, c in by_question if q == 2} == admins  # no province: the administrators


def seed_leads(database: Database) -> tuple[int, int]:
    with database.unit() as repos:
        producer = repos.users.get_or_create("telegram", "555", "Hộ A")
        ids = []
        for province in (A, B):
            row = lead(province)
            row.user_id = producer.id or 0
            ids.append(repos.leads.add(row, 2026).id or 0)
    return ids[0], ids[1]


def test_a_province_account_in_the_chat_lists_and_acts_on_its_province_only(
    database: Database, catalog: Catalog
) -> None:
    dialogue = staff_dialogue(database, catalog)
    mine, theirs = seed_leads(database)
    officer = Chat(dialogue, chat_id=str(A_TG), name="Cán bộ Nghệ An")
    officer.send("/leads")
    assert [x.id for x in officer.shown("staff_leads")["leads"]] == [mine]
    assert f"ld:{theirs}" not in officer.buttons
    officer.press(f"ls:{theirs}:contacted")
    assert "stale" in officer.templates  # another province's lead: as a stale button
    officer.press(f"ld:{theirs}")
    assert "stale" in officer.templates
    officer.press(f"ls:{mine}:contacted")
    assert officer.shown("staff_status_changed")["lead"].status == "contacted"
    with database.unit() as repos:
        producer = repos.users.get_or_create("telegram", "555", "Hộ A")
        other = repos.staff_questions.add(producer.id or 0, "Hỏi ở Hà Tĩnh", B)
        own = repos.staff_questions.add(producer.id or 0, "Hỏi ở Nghệ An", A)
    officer.press(f"qa:{other.id}")
    assert "stale" in officer.templates  # another province's question cannot be answered
    officer.press(f"qa:{own.id}")
    assert "staff_answer_prompt" in officer.templates
    admin = Chat(dialogue, chat_id=CONFIGURED)
    admin.send("/leads")
    assert {x.id for x in admin.shown("staff_leads")["leads"]} == {mine, theirs}
    with database.session() as s:
        assert s.get(Lead, theirs) is not None
        assert s.exec(select(Lead.status).where(Lead.id == theirs)).one() == "new"
        actions = s.exec(select(StaffAction)).all()
    assert [(a.action, a.object_id) for a in actions] == [("lead_status", mine)]
    assert actions[0].actor.startswith(f"telegram:{A_TG}")


def test_a_province_accounts_chat_broadcast_goes_to_its_province(
    database: Database, catalog: Catalog
) -> None:
    dialogue = staff_dialogue(database, catalog)
    officer = Chat(dialogue, chat_id=str(A_TG))
    officer.send("/broadcast Hội chợ ở Vinh tháng 9")
    with database.session() as s:
        draft = s.exec(select(Broadcast)).one()
    assert Audience.from_dict(draft.audience).province == A


def test_services_write_an_audit_row_for_each_action(database: Database, catalog: Catalog) -> None:
    dialogue = staff_dialogue(database, catalog)
    core = dialogue.services
    mine, _ = seed_leads(database)
    with database.unit() as repos:
        row = repos.leads.get(mine)
        assert row is not None
        core.leads.change_status(repos, row, "contacted", "dashboard:nghean")
        core.leads.add_note(repos, row, "dashboard:nghean", "Đã gọi điện")
        producer = repos.users.get_or_create("telegram", "555", "Hộ A")
        repos.profiles.update(saved_id(producer), province=A)  # the broadcast below reaches someone
        question = core.questions.ask(repos, producer, "Hỏi?", A)
        core.questions.answer(repos, question, "Trả lời", "dashboard:nghean")
        new = deadlines.NewDeadline(due_on=date(2030, 1, 1), action="Nộp hồ sơ đăng ký", province=A)
        deadline = deadlines.add(repos, catalog.kb, new, date(2026, 1, 1), "dashboard:nghean")
        deadlines.withdraw(repos, deadline, "dashboard:nghean", datetime.now(UTC))
        draft = core.broadcasts.create(repos, "Tin", Audience(province=A), [], "dashboard:nghean")
        core.broadcasts.confirm(repos, catalog.kb, draft, "dashboard:quantri")
        other = core.broadcasts.create(repos, "Tin 2", Audience(province=A), [], "dashboard:nghean")
        core.broadcasts.cancel(repos, other, "dashboard:nghean")
    with database.session() as s:
        rows = s.exec(select(StaffAction).order_by(col(StaffAction.id))).all()
    assert [r.action for r in rows] == [
        "lead_status",
        "lead_note",
        "question_answer",
        "deadline_add",
        "deadline_withdraw",
        "broadcast_create",
        "broadcast_confirm",
        "broadcast_create",
        "broadcast_cancel",
    ]
    assert (
        rows[6].actor == "dashboard:quantri" and rows[0].object_type == "lead" and rows[0].object_id == mine
    )
    assert "new -> contacted" in rows[0].details


def test_an_audit_row_rolls_back_with_its_change(database: Database) -> None:
    mine, _ = seed_leads(database)
    try:
        with database.unit() as repos:
            audit.record(repos, "dashboard:x", audit.LEAD_NOTE, "lead", mine)
            raise RuntimeError("the step failed")
    except RuntimeError:
        pass
    with database.unit() as repos:
        assert repos.staff_actions.newest(10) == []
