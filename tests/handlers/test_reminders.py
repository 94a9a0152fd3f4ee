"""Deadline reminders, with time travel (time-machine): subscribing, the 14/3/1-day schedule at 08:00
Asia/Ho_Chi_Minh, exactly once across restarts and with a second process, catch-up after downtime,
skipping passed deadlines, province-scoped deadlines, and one-tap stop."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlmodel import Session, select

from bot.scheduler import ReminderScheduler
from bot.services import Services
from bot.settings import Settings
from handlers.dialogue import Dialogue
from handlers.texts import Texts
from knowledge.catalog import Catalog
from services.reminders import ReminderSettings
from storage.db import Database
from storage.models import Deadline, OutboxMessage, Reminder, User, saved_id
from storage.repositories import Repos
from tests.handlers.conftest import Chat

VN = ZoneInfo("Asia/Ho_Chi_Minh")
DEADLINE = date(2027, 5, 20)  # the yearly national deadline (knowledge/data/deadlines.yaml)


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=VN)


def scheduler(database: Database, catalog: Catalog) -> ReminderScheduler:
    texts = Texts()
    dialogue = Dialogue(database, catalog, texts)
    services = Services(Settings(_env_file=None), database, catalog, texts, dialogue, dialogue.services)
    return ReminderScheduler(services)


def reminders_sent(database: Database) -> list[OutboxMessage]:
    with database.session() as s:
        return list(s.exec(select(OutboxMessage).where(OutboxMessage.kind == "reminder")).all())


def reminders_for(session: Session, due_on: date = DEADLINE) -> list[Reminder]:
    deadline = session.exec(select(Deadline).where(Deadline.due_on == due_on)).one()
    return list(session.exec(select(Reminder).where(Reminder.deadline_id == deadline.id)).all())


def subscribe(chat: Chat, province: str = "Nghệ An") -> None:
    chat.press("r")
    assert chat.state()[0].step == "province"
    chat.send(province)
    assert chat.state()[0].step == "categories"
    chat.answer("all")


@pytest.fixture
def traveller():
    with time_machine.travel(at(2027, 4, 1), tick=False) as machine:
        yield machine


def test_subscribing_plans_three_reminders_at_8_local(
    chat: Chat, database: Database, catalog: Catalog, traveller: time_machine.Traveller
) -> None:
    scheduler(database, catalog).sweep_once()  # the calendar becomes dated rows
    subscribe(chat)
    assert "20/5/2027" in chat.text and "14, 3, 1" in chat.text
    with database.session() as s:
        rows = sorted(reminders_for(s), key=lambda r: r.offset_days)
        assert [r.offset_days for r in rows] == [1, 3, 14]
        # 08:00 in Asia/Ho_Chi_Minh (UTC+7, no daylight saving) is 01:00 UTC.
        assert [r.due_at.astimezone(UTC) for r in rows] == [
            datetime(2027, 5, 19, 1, 0, tzinfo=UTC),
            datetime(2027, 5, 17, 1, 0, tzinfo=UTC),
            datetime(2027, 5, 6, 1, 0, tzinfo=UTC),
        ]


def test_no_daylight_saving_shift_in_winter_or_summer() -> None:
    settings = ReminderSettings(offsets_days=(1,), hour=8)
    for due_on in (
        date(2027, 1, 15),
        date(2027, 3, 29),
        date(2027, 7, 1),
        date(2027, 10, 31),
        date(2027, 12, 31),
    ):
        assert settings.due_at(due_on, 1).astimezone(UTC).time().hour == 1


def test_reminder_goes_out_at_8_and_only_once(
    chat: Chat, database: Database, catalog: Catalog, traveller: time_machine.Traveller
) -> None:
    sweeper = scheduler(database, catalog)
    sweeper.sweep_once()
    subscribe(chat)
    traveller.move_to(at(2027, 5, 6, 7, 59))
    assert sweeper.sweep_once().queued == 0
    traveller.move_to(at(2027, 5, 6, 8, 0))
    assert sweeper.sweep_once().queued == 1
    assert sweeper.sweep_once().queued == 0
    restarted = scheduler(database, catalog)  # a new process after a restart
    assert restarted.sweep_once().queued == 0
    sent = reminders_sent(database)
    assert len(sent) == 1 and sent[0].chat_id == chat.chat_id
    with database.session() as s:
        assert {r.offset_days: r.status for r in reminders_for(s)}[14] == "queued"  # 14 days before
    assert any(b["data"] == "ro" for b in sent[0].buttons)  # one tap stops them


def test_two_processes_sweeping_at_once_queue_each_reminder_once(
    chat: Chat, database: Database, catalog: Catalog, traveller: time_machine.Traveller
) -> None:
    scheduler(database, catalog).sweep_once()
    for i in range(5):
        subscribe(Chat(chat.dialogue, chat_id=str(500 + i)))
    traveller.move_to(at(2027, 5, 17, 9, 0))
    url = database.engine.url.render_as_string(hide_password=False)
    processes = [scheduler(Database(url), catalog) for _ in range(2)]
    errors: list[BaseException] = []

    def sweep(process: ReminderScheduler) -> None:
        try:
            for _ in range(3):
                process.sweep_once()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sweep, args=(p,)) for p in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    sent = reminders_sent(database)
    assert sorted(m.chat_id for m in sent) == [str(500 + i) for i in range(5)]
    with database.session() as s:
        assert sorted(r.offset_days for r in reminders_for(s) if r.status == "queued") == [3] * 5


def test_missed_reminders_send_only_the_latest_after_downtime(
    chat: Chat, database: Database, catalog: Catalog, traveller: time_machine.Traveller
) -> None:
    sweeper = scheduler(database, catalog)
    sweeper.sweep_once()
    subscribe(chat)
    traveller.move_to(at(2027, 5, 19, 10, 0))  # the bot was down since April
    assert sweeper.sweep_once().queued == 1
    sent = reminders_sent(database)
    assert len(sent) == 1
    with database.session() as s:
        statuses = {r.offset_days: r.status for r in reminders_for(s)}
    assert statuses == {14: "skipped", 3: "skipped", 1: "queued"}


def test_reminders_of_a_passed_deadline_are_skipped(
    chat: Chat, database: Database, catalog: Catalog, traveller: time_machine.Traveller
) -> None:
    sweeper = scheduler(database, catalog)
    sweeper.sweep_once()
    subscribe(chat)
    traveller.move_to(at(2027, 5, 21, 8, 0))
    assert sweeper.sweep_once().queued == 0
    assert reminders_sent(database) == []
    with database.session() as s:
        assert {r.status for r in reminders_for(s)} == {"skipped"}


def test_stop_cancels_pending_reminders(
    chat: Chat, database: Database, catalog: Catalog, traveller: time_machine.Traveller
) -> None:
    sweeper = scheduler(database, catalog)
    sweeper.sweep_once()
    subscribe(chat)
    chat.send("/tatnhac")
    assert chat.shown("reminders_off")["had"]
    traveller.move_to(at(2027, 5, 19, 9, 0))
    assert sweeper.sweep_once().queued == 0
    chat.send("/tatnhac")
    assert not chat.shown("reminders_off")["had"]


def test_province_deadlines_reach_only_that_province(
    chat: Chat, database: Database, catalog: Catalog, traveller: time_machine.Traveller
) -> None:
    sweeper = scheduler(database, catalog)
    with database.session() as s:
        s.add(
            Deadline(
                due_on=date(2027, 4, 20),
                action="Nộp hồ sơ đề án khuyến công địa phương năm 2028",
                place="Trung tâm Khuyến công tỉnh Nghệ An",
                province="Nghệ An",
                created_by="staff",
            )
        )
    subscribe(chat, "Nghệ An")
    subscribe(Chat(chat.dialogue, chat_id="777"), "Sơn La")
    traveller.move_to(at(2027, 4, 17, 8, 30))
    assert sweeper.sweep_once().queued == 1
    assert [m.chat_id for m in reminders_sent(database)] == [chat.chat_id]


def test_blocked_users_are_skipped(
    chat: Chat, database: Database, catalog: Catalog, traveller: time_machine.Traveller
) -> None:
    sweeper = scheduler(database, catalog)
    sweeper.sweep_once()
    subscribe(chat)
    with database.session() as s:
        user = s.exec(select(User).where(User.external_id == chat.chat_id)).one()
        Repos(s).users.mark_blocked(saved_id(user))
    traveller.move_to(at(2027, 5, 6, 9, 0))
    assert sweeper.sweep_once().queued == 0


def test_programme_subscription_from_a_card(
    chat: Chat, database: Database, catalog: Catalog, traveller: time_machine.Traveller
) -> None:
    scheduler(database, catalog).sweep_once()
    chat.send("/start")
    with database.session() as s:
        Repos(s).profiles.update(chat.state()[1].user_id, province="Thanh Hóa")
    chat.press("rp:machinery-national")
    status = chat.shown("reminders_status")
    assert status["scopes"] == [catalog.kb.by_id["machinery-national"].title]
    assert DEADLINE in [d.due_on for d in status["upcoming"]]
    chat.press("rc")
    chat.answer("t:trade_fair")
    chat.answer("done")
    assert chat.dialogue.texts.labels["categories"]["trade_fair"] in chat.shown("reminders_status")["scopes"]
