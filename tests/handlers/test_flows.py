"""The table of flows: every flow answers to the same interface, back and resume work for each, old
conversation rows load and go on, and the last menu delivered by the outbox answers "1"."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

import handlers
from handlers import callbacks as cb
from handlers.context import State
from handlers.dialogue import FLOWS, Dialogue
from handlers.flow import Flow
from knowledge.catalog import Catalog
from services.notifications import PRIORITY_BROADCAST, PRIORITY_REPLY
from storage.db import Database
from storage.models import OutboxMessage, StaffQuestion, saved_id, utcnow
from storage.repositories import Repos
from tests.handlers.conftest import Chat
from tests.support.checks import one

STAFF_ID = "900"


# --- the registry ---


def _flow_names() -> set[str]:
    """Every ``FLOW`` name a module of ``handlers`` declares."""
    names = set()
    for info in pkgutil.iter_modules(handlers.__path__):
        module = importlib.import_module(f"handlers.{info.name}")
        if isinstance(getattr(module, "FLOW", None), str):
            names.add(module.FLOW)
    return names


def test_every_flow_is_registered_once_under_its_own_name() -> None:
    assert set(FLOWS) == _flow_names()
    for name, flow in FLOWS.items():
        assert isinstance(flow, Flow) and flow.name == name


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_every_registered_flow_implements_the_interface(name: str) -> None:
    flow = FLOWS[name]
    for entry in dataclasses.fields(Flow):
        if entry.name != "name":
            assert callable(getattr(flow, entry.name)), entry.name


def test_what_a_flow_leaves_out_is_not_its_own() -> None:
    flow = Flow("nothing")
    ctx: Any = object()
    assert flow.on_text(ctx, "x") is None and flow.on_choice(ctx, "x") is None
    assert flow.on_contact(ctx, None) is None and flow.resume(ctx) is None and flow.back(ctx) is None


# --- back and resume, for each flow ---


def _enter_eligibility(chat: Chat) -> None:
    chat.send("/kiemtra")
    chat.answer("household_business")


def _enter_apply(chat: Chat) -> None:
    chat.press("a:machinery-national")
    chat.send("Nguyễn Văn An")


def _enter_ask_staff(chat: Chat) -> None:
    chat.send("/hoicanbo")


def _enter_reminders(chat: Chat) -> None:
    chat.send("/nhachan")


def _enter_privacy(chat: Chat) -> None:
    chat.send("/xoadulieu")


def _enter_staff(chat: Chat) -> None:
    producer = Chat(chat.dialogue, chat_id="101")
    producer.send("/hoicanbo")
    producer.send("Máy sấy nông sản được hỗ trợ bao nhiêu?")
    with chat.dialogue.db.session() as s:
        question_id = s.exec(select(StaffQuestion.id)).one()
    chat.press(cb.build(cb.ANSWER_QUESTION, str(question_id)))


# flow -> (how to get there, its step then, where resume leaves it, the step "back" goes to or None
# when back leaves the flow for the main menu)
CASES: dict[str, tuple[Callable[[Chat], None], str, str | None, str | None]] = {
    "eligibility": (_enter_eligibility, "activity", "activity", "legal_form"),
    "apply": (_enter_apply, "phone", "phone", "full_name"),
    "ask_staff": (_enter_ask_staff, "wait_text", "wait_text", None),
    "reminders": (_enter_reminders, "province", "province", None),
    "privacy": (_enter_privacy, "confirm_erase", "confirm_erase", None),
    "staff_answer": (_enter_staff, "wait_text", "wait_text", None),
}


def test_every_flow_has_a_back_and_resume_case() -> None:
    assert set(CASES) == set(FLOWS)


@pytest.fixture
def staff_chat(database: Database, catalog: Catalog) -> Chat:
    return Chat(Dialogue(database, catalog, staff_telegram_ids={STAFF_ID}), chat_id=STAFF_ID)


@pytest.mark.parametrize("name", sorted(CASES))
def test_resume_reshows_the_pending_step_or_the_menu(name: str, staff_chat: Chat) -> None:
    enter, step, _, _ = CASES[name]
    enter(staff_chat)
    assert (staff_chat.state()[0].flow, staff_chat.state()[0].step) == (name, step)
    staff_chat.media("sticker")
    conversation = staff_chat.state()[0]
    assert (conversation.flow, conversation.step) == (name, step)
    shown = staff_chat.last[-1]
    if name in ("privacy", "staff_answer"):  # nothing to re-ask there: the main menu
        assert cb.CHECK in [b.data for b in shown.flat_buttons]
    else:
        assert shown.buttons, "the pending question is asked again, with its buttons"


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("how", ["button", "word"])
def test_back_goes_one_step_back_or_to_the_menu(name: str, how: str, staff_chat: Chat) -> None:
    enter, _, _, previous = CASES[name]
    enter(staff_chat)
    version = staff_chat.state()[0].menu_version
    if how == "button":
        staff_chat.press(cb.back(version))
    else:
        staff_chat.send("quay lại")
    conversation = staff_chat.state()[0]
    if previous is not None:
        assert (conversation.flow, conversation.step) == (name, previous)
    elif how == "word":
        assert conversation.flow == "menu"  # the typed word shows the main menu
    else:  # a back button where there is none is stale: said so, and the flow goes on
        assert conversation.flow == name and len(staff_chat.last) >= 2


# --- conversation rows stored before the state was typed ---


def _store_old_row(
    database: Database, flow: str, step: str | None, data: dict[str, Any], version: int
) -> None:
    with database.session() as s:
        repos = Repos(s)
        user = repos.users.get_or_create("zalo", "old1", "Nguyễn Văn An")
        repos.conversations.save(saved_id(user), flow, step, data, version)


def test_an_old_apply_row_loads_and_the_form_goes_on(database: Database, catalog: Catalog) -> None:
    old = {
        "_draft": {
            "id": "0123456789abcdef",
            "values": {"programme": "machinery-national", "full_name": "Nguyễn Văn An"},
            "asked": ["full_name"],
            "retries": 1,
        },
        "_buttons": [["Quay lại", "b:7"], ["Hủy", "x"]],
        "_command_text": "",
        "_last_entry": "machinery-national",
        "_last_question": "máy sấy được hỗ trợ không",
    }
    _store_old_row(database, "apply", "phone", old, 7)
    chat = Chat(Dialogue(database, catalog), channel="zalo", chat_id="old1")
    chat.send("0912 345 678")
    conversation = chat.state()[0]
    assert (conversation.flow, conversation.step) == ("apply", "establishment_name")
    draft = conversation.data["_draft"]
    assert draft["values"]["phone"] == "0912345678" and draft["asked"] == ["full_name", "phone"]
    assert conversation.data["_last_question"] == "máy sấy được hỗ trợ không"
    assert "_command_text" not in conversation.data and "_last_entry" not in conversation.data
    assert all(isinstance(b, dict) for b in conversation.data["_buttons"])
    chat.send("quay lại")
    assert chat.state()[0].step == "phone"


def test_an_old_menu_of_pairs_still_answers_its_numbers(database: Database, catalog: Catalog) -> None:
    _store_old_row(database, "menu", None, {"_buttons": [["Tra cứu", "mb"], ["Đăng ký", "a"]]}, 3)
    chat = Chat(Dialogue(database, catalog), channel="zalo", chat_id="old1")
    chat.send("2")
    assert chat.state()[0].flow == "apply"


def test_an_old_eligibility_row_loads_and_the_check_goes_on(database: Database, catalog: Catalog) -> None:
    old = {"target": None, "asked": ["legal_form"], "skipped": [], "retries": 0, "pending": "activity"}
    _store_old_row(database, "eligibility", "activity", old, 4)
    with database.session() as s:
        repos = Repos(s)
        repos.profiles.update(
            saved_id(one(repos.users.find("zalo", "old1"))), legal_form="household_business"
        )
    chat = Chat(Dialogue(database, catalog), channel="zalo", chat_id="old1")
    chat.press(cb.answer(4, "production"))
    conversation, profile = chat.state()
    assert profile.activity == "production"
    assert conversation.data["asked"] == ["legal_form", "activity"]
    chat.press(cb.back(conversation.menu_version))
    conversation, profile = chat.state()
    assert (conversation.step, profile.activity) == ("activity", None)


def test_state_stores_the_shape_it_loads() -> None:
    stored = {
        "asked": ["legal_form"],
        "_buttons": [{"row": 0, "label": "Có", "data": "s:1:yes"}],
        "_read": {"province": "Nghệ An"},
    }
    state = State.load("eligibility", "craft_village", stored, 1)
    assert state.memory.read_facts == {"province": "Nghệ An"}
    assert state.stored() == stored


# --- the last menu delivered by the outbox ---


def _deliver(
    database: Database, chat: Chat, buttons: list[dict[str, Any]], ago: timedelta, priority: int
) -> None:
    """A message with ``buttons`` to ``chat``'s user, marked sent ``ago``."""
    with database.session() as s:
        repos = Repos(s)
        user = one(repos.users.find(chat.channel, chat.chat_id))
        row = repos.outbox.add("broadcast", 1, user, "Tin mới", buttons, priority, dedupe_key=None)
        assert row is not None
        row.status, row.sent_at = "sent", utcnow() - ago


APPLY_MENU = [{"row": 0, "label": "Đăng ký ngay", "data": "a"}, {"row": 1, "label": "Menu", "data": "m"}]


@pytest.fixture
def zalo_chat(database: Database, catalog: Catalog) -> Chat:
    chat = Chat(Dialogue(database, catalog), channel="zalo", chat_id="z1")
    chat.send("/start")  # the main menu: its first item is "Tra cứu"
    return chat


def test_a_menu_sent_after_the_last_message_answers_the_number(database: Database, zalo_chat: Chat) -> None:
    _deliver(database, zalo_chat, APPLY_MENU, timedelta(0), PRIORITY_BROADCAST)
    zalo_chat.send("1")
    assert zalo_chat.state()[0].flow == "apply"


def test_a_menu_sent_before_the_last_message_does_not(database: Database, zalo_chat: Chat) -> None:
    _deliver(database, zalo_chat, APPLY_MENU, timedelta(hours=1), PRIORITY_BROADCAST)
    zalo_chat.send("1")
    assert zalo_chat.state()[0].flow == "menu" and cb.CATEGORY + ":machinery" in zalo_chat.buttons


def test_the_latest_of_several_menus_wins(database: Database, zalo_chat: Chat) -> None:
    _deliver(database, zalo_chat, [{"row": 0, "label": "Tra cứu", "data": "mb"}], timedelta(0), 10)
    _deliver(database, zalo_chat, APPLY_MENU, timedelta(0), PRIORITY_BROADCAST)
    _deliver(database, zalo_chat, [], timedelta(0), PRIORITY_BROADCAST)  # no buttons: not a menu
    zalo_chat.send("1")
    assert zalo_chat.state()[0].flow == "apply"


def test_live_replies_and_telegram_messages_are_not_menus_to_adopt(
    database: Database, catalog: Catalog
) -> None:
    for channel in ("zalo", "telegram"):
        chat = Chat(Dialogue(database, catalog), channel=channel, chat_id="t1")
        chat.send("/start")
        priority = PRIORITY_REPLY if channel == "zalo" else PRIORITY_BROADCAST
        _deliver(database, chat, APPLY_MENU, timedelta(0), priority)
        chat.send("1")
        assert chat.state()[0].flow == "menu", channel  # the main menu's first item: browsing


def test_last_menu_reads_only_sent_proactive_rows(database: Database, zalo_chat: Chat) -> None:
    with database.session() as s:
        repos = Repos(s)
        user = one(repos.users.find("zalo", "z1"))
        since = utcnow() - timedelta(minutes=1)
        assert repos.outbox.last_menu(saved_id(user), since, 0) == []
        repos.outbox.add("broadcast", 2, user, "Chưa gửi", APPLY_MENU, PRIORITY_BROADCAST)
        s.flush()
        assert repos.outbox.last_menu(saved_id(user), since, 0) == []  # still pending
        row = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "broadcast")).one()
        row.status, row.sent_at = "sent", utcnow()
        s.add(row)
        s.flush()
        assert repos.outbox.last_menu(saved_id(user), since, 0) == APPLY_MENU
        assert repos.outbox.last_menu(saved_id(user), utcnow() + timedelta(seconds=1), 0) == []
