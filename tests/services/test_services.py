"""The service layer on its own: each rule has one home and works inside one unit of work, which alone
commits (a step that fails leaves nothing behind, its messages included)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from handlers.notify import ChatMessages
from handlers.texts import Texts
from knowledge.catalog import Catalog
from services import deadlines
from services.broadcasts import Audience
from services.bundle import ServiceSet, build_service_set
from services.leads import ReasonNeeded, TransitionError
from storage.db import Database
from storage.models import Broadcast, Deadline, Lead, LeadEvent, OutboxMessage, User, saved_id
from storage.repositories import Repos
from tests.support.checks import one

STAFF = "777"


@pytest.fixture
def core() -> ServiceSet:
    return build_service_set(ChatMessages(Texts()), staff_telegram_ids=[STAFF])


def producer(repos: Repos, external_id: str = "1") -> User:
    return repos.users.get_or_create("telegram", external_id, "Chị Lan")


def new_lead(user: User, key: str = "k1") -> Lead:
    return Lead(
        submission_key=key,
        user_id=saved_id(user),
        channel="telegram",
        programme_id="machinery-national",
        category="machinery",
        full_name="Nguyễn Thị Lan",
        phone="0912345678",
        establishment_name="Cơ sở Lan",
        legal_form="household_business",
        province="Nghệ An",
        commune="Xã Nghi Phong",
        sector="mây tre",
        products="mây tre",
        plan="máy chẻ nan",
        eligibility={"status": "eligible", "outcomes": []},
        consent_at=datetime.now(UTC),
    )


def outbox(database: Database, kind: str) -> list[OutboxMessage]:
    with database.session() as s:
        return list(s.exec(select(OutboxMessage).where(OutboxMessage.kind == kind)).all())


def test_a_submission_twice_is_one_lead_announced_once(
    database: Database, core: ServiceSet, catalog: Catalog
) -> None:
    programme = one(catalog.kb.programme("machinery-national"))
    with database.unit() as repos:
        user = producer(repos)
        first, new = core.leads.submit(repos, new_lead(user), programme, 2026)
        again, new_again = core.leads.submit(repos, new_lead(user), programme, 2026)
    assert new and not new_again and again.id == first.id
    assert first.ref_code == f"KC-2026-{first.id:06d}"
    announced = outbox(database, "lead_new")
    assert [m.chat_id for m in announced] == [STAFF]
    assert first.ref_code in announced[0].text


def test_the_workflow_refuses_a_jump_and_tells_the_producer_of_a_move(
    database: Database, core: ServiceSet, catalog: Catalog
) -> None:
    with database.unit() as repos:
        lead, _ = core.leads.submit(repos, new_lead(producer(repos)), None, 2026)
        with pytest.raises(TransitionError):
            core.leads.change_status(repos, lead, "approved", "dashboard:a")
        event = core.leads.change_status(repos, lead, "contacted", "dashboard:a", "  đã gọi  ")
    assert (event.from_status, event.to_status, event.note) == ("new", "contacted", "đã gọi")
    told = outbox(database, "lead_status")
    assert [(m.chat_id, m.source_id) for m in told] == [("1", event.id)]


def test_a_decided_lead_is_reopened_only_with_a_reason(database: Database, core: ServiceSet) -> None:
    with database.unit() as repos:
        lead, _ = core.leads.submit(repos, new_lead(producer(repos)), None, 2026)
        for status in ("eligible", "planned", "approved"):
            core.leads.change_status(repos, lead, status, "dashboard:a")
        for blank in (None, "   "):
            with pytest.raises(ReasonNeeded):
                core.leads.change_status(repos, lead, "planned", "dashboard:a", blank)
        event = core.leads.change_status(
            repos, lead, "planned", "dashboard:a", "Thiếu báo giá, thẩm định lại"
        )
    assert (event.from_status, event.to_status, event.note) == (
        "approved",
        "planned",
        "Thiếu báo giá, thẩm định lại",
    )
    told = outbox(database, "lead_status")
    assert told[-1].source_id == event.id and "Thiếu báo giá" in told[-1].text


def test_only_the_unit_of_work_commits(database: Database, core: ServiceSet) -> None:
    with database.unit() as repos:
        lead, _ = core.leads.submit(repos, new_lead(producer(repos)), None, 2026)
    with pytest.raises(RuntimeError), database.unit() as repos:
        stored = one(repos.leads.get(saved_id(lead)))
        core.leads.change_status(repos, stored, "contacted", "dashboard:a")
        core.leads.add_note(repos, stored, "dashboard:a", "ghi chú")
        raise RuntimeError("the step fails after the service ran")
    with database.session() as s:
        assert one(s.get(Lead, lead.id)).status == "new"
        assert [e.to_status for e in s.exec(select(LeadEvent)).all()] == ["new"]
    assert outbox(database, "lead_status") == []


def test_a_question_and_its_answers(database: Database, core: ServiceSet) -> None:
    with database.unit() as repos:
        question = core.questions.ask(repos, producer(repos), "  Khi nào có kết quả?  ", "Nghệ An")
        assert core.questions.answer(repos, question, "Tuần sau ạ.", "dashboard:a") is False
        assert core.questions.answer(repos, question, "Bổ sung: báo giá.", "dashboard:b") is True
    assert (question.text, question.province, question.status) == (
        "Khi nào có kết quả?",
        "Nghệ An",
        "answered",
    )
    assert [m.chat_id for m in outbox(database, "question_new")] == [STAFF]
    assert len(outbox(database, "question_answer")) == 2  # every answer is its own message


def test_a_broadcast_report_only_reads_and_the_sweep_finishes_it(
    database: Database, core: ServiceSet, catalog: Catalog
) -> None:
    with database.unit() as repos:
        producer(repos)
        repos.users.get_or_create("telegram", STAFF, "Cán bộ")
        draft = core.broadcasts.create(repos, "Chào {{ ten }}", Audience(), [], "test")
        assert core.broadcasts.confirm(repos, catalog.kb, draft) == 1  # staff left out
        assert core.broadcasts.confirm(repos, catalog.kb, draft) == 0
    with database.unit() as repos:
        for row in repos.session.exec(select(OutboxMessage)).all():
            row.status = "sent"
            repos.session.add(row)
    with database.unit() as repos:
        report = core.broadcasts.report(repos, draft)
    assert report.status == "done" and report.counts["sent"] == 1
    with database.session() as s:
        assert one(s.get(Broadcast, draft.id)).status == "sending"  # the report wrote nothing
    with database.unit() as repos:
        assert core.broadcasts.finish_delivered(repos, datetime.now(UTC)) == 1
    with database.session() as s:
        assert one(s.get(Broadcast, draft.id)).status == "done"


def test_subscribe_plans_reminders_and_stop_cancels_them(
    database: Database, core: ServiceSet, catalog: Catalog
) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    with database.unit() as repos:
        user = producer(repos)
        repos.deadlines.add(deadlines_row(date(2026, 4, 1)))
        subscription = core.reminders.subscribe(repos, catalog.kb, saved_id(user), "Nghệ An", [], None, now)
        assert subscription is not None
        active = repos.deadlines.active_from(now.date())
        assert len(repos.reminders.planned([saved_id(d) for d in active])) == 3
        assert core.reminders.stop(repos, saved_id(user), now) is True
        assert core.reminders.stop(repos, saved_id(user), now) is False
        assert repos.reminders.due(now + timedelta(days=60)) == []


def deadlines_row(due_on: date) -> Deadline:
    return Deadline(due_on=due_on, action="Nộp hồ sơ đề nghị hỗ trợ máy móc", created_by="test")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"due_on": date(2026, 1, 1)}, "past"),
        ({"action": "nộp"}, "action"),
        ({"province": "Hà Tây"}, "province"),
        ({"category": "rockets"}, "category"),
        ({"programme_id": "nope"}, "programme"),
    ],
)
def test_one_rule_for_a_valid_deadline(
    database: Database, catalog: Catalog, change: dict[str, Any], problem: str
) -> None:
    fields: dict[str, Any] = {
        "due_on": date(2026, 6, 1),
        "action": "Nộp hồ sơ đăng ký kế hoạch năm sau",
    } | change
    with database.unit() as repos, pytest.raises(deadlines.DeadlineProblem) as refused:
        deadlines.add(repos, catalog.kb, deadlines.NewDeadline(**fields), date(2026, 3, 1), "test")
    assert refused.value.code == problem
