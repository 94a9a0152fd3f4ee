"""Broadcasts: audience filters, exact counts per channel, per-recipient rendering (escaped),
confirming twice queues nobody twice, and the staff's /broadcast in the chat."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from handlers.broadcasts import broadcast_buttons
from knowledge.catalog import Catalog
from services import broadcasts
from services.broadcasts import BroadcastService
from services.staff_directory import StaffDirectory
from storage.db import Database
from storage.models import Broadcast, OutboxMessage, Subscription, saved_id
from storage.repositories import Repos
from tests.handlers.conftest import Chat, recording_dialogue
from tests.support.checks import one

STAFF = "900"
SERVICE = BroadcastService(StaffDirectory.of([STAFF]))


def seed(database: Database) -> None:
    people = [
        ("telegram", "1", "Lan", "Nghệ An", "household_business", ["machinery"]),
        ("telegram", "2", "Bình", "Sơn La", "coop", ["trade_fair"]),
        ("zalo", "z3", "Cúc <b>", "Nghệ An", "sme", []),
        ("zalo", "z4", "Dũng", "Thanh Hóa", "household_business", ["branding"]),
        ("telegram", "5", "Blocked", "Nghệ An", "household_business", ["machinery"]),
    ]
    with database.session() as s:
        repos = Repos(s)
        for channel, ext, name, province, form, interests in people:
            user = repos.users.get_or_create(channel, ext, name)
            repos.profiles.update(
                saved_id(user),
                province=province,
                legal_form=form,
                interests=interests,
                establishment_name=f"Cơ sở {name}",
            )
            if ext == "5":
                repos.users.mark_blocked(saved_id(user))
        repos.users.get_or_create("telegram", STAFF, "Cán bộ")
        s.add(Subscription(user_id=saved_id(one(repos.users.find("zalo", "z4"))), categories=["trade_fair"]))


def chosen(database: Database, catalog: Catalog, **audience: Any) -> list[str]:
    with database.session() as s:
        picked = SERVICE.recipients(Repos(s), catalog.kb, broadcasts.Audience(**audience))
        return [u.external_id for u, _ in picked]


def test_audience_filters(database: Database, catalog: Catalog) -> None:
    seed(database)
    assert chosen(database, catalog) == ["1", "2", "z3", "z4"]  # blocked user and staff left out
    assert chosen(database, catalog, province="Nghệ An") == ["1", "z3"]
    assert chosen(database, catalog, legal_form="household_business") == ["1", "z4"]
    assert chosen(database, catalog, category="trade_fair") == ["2", "z4"]  # interest or subscription
    assert chosen(database, catalog, subscribers_only=True) == ["z4"]
    with database.session() as s:
        picked = SERVICE.recipients(Repos(s), catalog.kb, broadcasts.Audience())
        assert broadcasts.count_by_channel(picked) == {"telegram": 2, "zalo": 2}


def test_each_recipient_gets_their_own_escaped_message(database: Database, catalog: Catalog) -> None:
    seed(database)
    with database.session() as s:
        repos = Repos(s)
        draft = SERVICE.create(
            repos, "Chào {{ ten }} ở {{ tinh }} <nhớ nộp hồ sơ> & chuẩn bị", broadcasts.Audience(), [], "test"
        )
        assert SERVICE.confirm(repos, catalog.kb, draft) == 4
    with database.session() as s:
        texts = {m.chat_id: m.text for m in s.exec(select(OutboxMessage)).all()}
    assert texts["1"] == "Chào Lan ở Nghệ An &lt;nhớ nộp hồ sơ&gt; &amp; chuẩn bị"
    assert texts["z3"].startswith("Chào Cúc &lt;b&gt; ở Nghệ An")


def test_confirming_twice_queues_nobody_twice(database: Database, catalog: Catalog) -> None:
    seed(database)
    with database.session() as s:
        repos = Repos(s)
        draft = SERVICE.create(repos, "Thông báo", broadcasts.Audience(province="Nghệ An"), [], "test")
        assert SERVICE.confirm(repos, catalog.kb, draft) == 2
        assert SERVICE.confirm(repos, catalog.kb, draft) == 0
        assert SERVICE.report(repos, draft).counts == {
            "total": 2,
            "sent": 0,
            "unknown": 0,
            "blocked": 0,
            "failed": 0,
            "waiting": 2,
        }


@pytest.mark.parametrize(
    "template", ["", "{{ unknown_variable }}", "{% for %}", "x" * 3001, "{{ ten.__class__ }}"]
)
def test_unusable_templates_are_refused(database: Database, template: str) -> None:
    with database.session() as s, pytest.raises(broadcasts.TemplateProblem):
        SERVICE.create(Repos(s), template, broadcasts.Audience(), [], "test")


def test_broadcast_button_opens_a_flow(database: Database, catalog: Catalog) -> None:
    from handlers.texts import Texts

    buttons = broadcast_buttons(Texts(), "apply", "")
    assert buttons == [{"row": 0, "label": "📝 Đăng ký ngay", "data": "a"}]
    assert broadcast_buttons(Texts(), "p:machinery-national", "Xem")[0]["data"] == "p:machinery-national"


def test_staff_broadcast_in_the_chat_is_previewed_then_sent(database: Database, catalog: Catalog) -> None:
    seed(database)
    dialogue = recording_dialogue(database, catalog, staff_telegram_ids={STAFF})
    officer = Chat(dialogue, chat_id=STAFF, name="Cán bộ")
    officer.send("/broadcast Chào {{ ten }}, Trung tâm nhận hồ sơ năm 2027 đến 20/5.")
    preview = officer.shown("staff_broadcast_preview")
    assert preview["counts"] == {"telegram": 2, "zalo": 2}
    assert preview["sample"].startswith("Chào Cán bộ,")  # the text as the officer would get it
    send = officer.button_for("bc:")
    assert send.endswith(":ok")
    officer.press(send)
    assert officer.shown("staff_broadcast_done")["queued"] == 4
    officer.press(send)  # a second tap queues nobody again
    with database.session() as s:
        assert len(s.exec(select(OutboxMessage)).all()) == 4
        assert s.exec(select(Broadcast)).one().status == "sending"


def test_producers_cannot_broadcast(database: Database, catalog: Catalog) -> None:
    seed(database)
    producer = Chat(recording_dialogue(database, catalog, staff_telegram_ids={STAFF}), chat_id="1")
    producer.send("/broadcast spam")
    assert producer.shown("unknown_command")["command"] == "broadcast"
    assert "staff_broadcast_preview" not in producer.templates
    producer.press("bc:1:ok")
    assert "stale" in producer.templates
