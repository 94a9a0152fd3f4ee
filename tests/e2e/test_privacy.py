"""The producer's rights over their data (Decree 13/2023), end to end on Telegram and Zalo through the
fake platforms, and in the console: /dulieu shows what is stored, /xoadulieu deletes it after a
confirmation (every table, the message log and stored updates included, and the bytes of the SQLite
file), applications already with the centre are anonymised with a note in their history, consent
can be withdrawn, and the retention sweep purges old messages and stale drafts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial
from pathlib import Path

import time_machine
from sqlmodel import col, select

from bot.scheduler import ReminderScheduler
from knowledge.catalog import Catalog
from services.leads import LeadService
from storage.db import Database
from storage.models import (
    ChatPacing,
    Conversation,
    InboxUpdate,
    Lead,
    LeadEvent,
    MessageLog,
    OutboxMessage,
    Profile,
    Reminder,
    StaffQuestion,
    Subscription,
    User,
    utcnow,
)
from storage.personal_data import ANONYMISED_NAME
from storage.repositories import Repos
from tests.e2e.conftest import TelegramBot
from tests.e2e.test_telegram import buttons, exchange
from tests.fakes.telegram import FakeTelegram
from tests.fakes.zalo import FakeZalo
from tests.handlers.conftest import Chat, recording_dialogue
from tests.handlers.test_losses import fill_form
from tests.support.checks import one

CHAT = 5150
NAME = "Hoàng Thị Xuân"
PHONE = "0987 654 321"


async def apply_subscribe_and_ask(fake: FakeTelegram, chat: int) -> None:
    """A producer who left data everywhere: an application, reminders, a question to staff."""
    send, press = fake.send_text, fake.press_button
    await exchange(fake, chat, lambda: send(chat, "/start", first_name="Xuân"))
    replies = await exchange(fake, chat, lambda: press(chat, "a:machinery-national"))
    for text in (NAME, PHONE, "Cơ sở mây tre Xuân"):
        replies = await exchange(fake, chat, partial(send, chat, text))
    answer = next(b for b in buttons(replies[-1]) if b.endswith(":household_business"))
    replies = await exchange(fake, chat, lambda: press(chat, answer))
    for text in (
        "Thanh Hóa",
        "xã Nga Sơn",
        "Đan cói xuất khẩu",
        "Mua máy dệt chiếu cói tự động",
        "200 triệu",
    ):
        replies = await exchange(fake, chat, partial(send, chat, text))
    consent = next(b for b in buttons(replies[-1]) if b.endswith(":yes"))
    replies = await exchange(fake, chat, lambda: press(chat, consent))
    submit = next(b for b in buttons(replies[-1]) if b.startswith("as:"))
    await exchange(fake, chat, lambda: press(chat, submit))
    replies = await exchange(fake, chat, lambda: press(chat, "r"))
    if not any(b.endswith(":all") for b in buttons(replies[-1])):
        replies = await exchange(fake, chat, lambda: send(chat, "Thanh Hóa"))
    everything = next(b for b in buttons(replies[-1]) if b.endswith(":all"))
    await exchange(fake, chat, lambda: press(chat, everything))
    await exchange(fake, chat, lambda: press(chat, "h"))
    await exchange(fake, chat, lambda: send(chat, "Bao giờ cán bộ gọi lại cho em ạ?"))


def personal_rows(database: Database, chat: str) -> dict[str, int]:
    """How many rows of each table still point to this chat's producer."""
    with database.session() as s:
        user = s.exec(select(User).where(User.external_id == chat)).first()
        ids = [user.id] if user else []
        counts = {
            model.__tablename__: len(s.exec(select(model).where(col(model.user_id).in_(ids))).all())
            for model in (
                Profile,
                Conversation,
                Subscription,
                Reminder,
                StaffQuestion,
                MessageLog,
                OutboxMessage,
                ChatPacing,
            )
        }
        counts["users"] = len(ids)
        counts["inbox"] = len(s.exec(select(InboxUpdate).where(InboxUpdate.chat_key == chat)).all())
    return counts


async def test_see_and_erase_everything_on_telegram(
    fake_telegram: FakeTelegram, telegram_bot: TelegramBot
) -> None:
    database = telegram_bot.services.db
    await apply_subscribe_and_ask(fake_telegram, CHAT)
    with database.session() as s:
        lead = s.exec(select(Lead)).one()
        LeadService.add_note(Repos(s), lead, "dashboard:canbo", f"Đã gọi chị {NAME}, số {PHONE}")

    replies = await exchange(fake_telegram, CHAT, lambda: fake_telegram.send_text(CHAT, "/dulieu"))
    shown = replies[-1]["text"]
    assert NAME in shown and "0987654321" in shown and lead.ref_code in shown
    assert "Nhắc hạn đăng ký: đang bật" in shown and "Câu hỏi gửi cán bộ: 1" in shown

    replies = await exchange(fake_telegram, CHAT, lambda: fake_telegram.send_text(CHAT, "/xoadulieu"))
    assert "Trung tâm chỉ giữ lại" in replies[-1]["text"]  # told what the centre keeps, and why
    erase = [b for row in replies[-1]["reply_markup"]["inline_keyboard"] for b in row if "Xóa" in b["text"]]
    assert erase, replies[-1]["reply_markup"]
    await exchange(fake_telegram, CHAT, lambda: fake_telegram.press_button(CHAT, erase[0]["callback_data"]))

    for _ in range(50):  # the last answer leaves the outbox once delivered
        if not any(personal_rows(database, str(CHAT)).values()):
            break
        await asyncio.sleep(0.1)
    assert personal_rows(database, str(CHAT)) == dict.fromkeys(personal_rows(database, str(CHAT)), 0)
    with database.session() as s:
        lead = s.exec(select(Lead)).one()
        assert (lead.full_name, lead.phone, lead.establishment_name, lead.commune, lead.plan) == (
            ANONYMISED_NAME,
            "",
            "",
            None,
            None,
        )
        assert (
            lead.province == "Thanh Hóa" and lead.programme_id == "machinery-national"
        )  # the centre's record
        notes = [e.note or "" for e in s.exec(select(LeadEvent).where(LeadEvent.lead_id == lead.id)).all()]
        assert any("Nghị định 13/2023" in note for note in notes)  # staff see why in the history
        assert not any(NAME in note or "0987" in note for note in notes)
        tombstone = one(s.get(User, lead.user_id))
        assert tombstone.display_name == "" and tombstone.external_id.startswith("erased:")
    if database.dialect == "sqlite":  # deleted means gone from the file too, not just unlinked
        path = Path(one(database.engine.url.database))
        for file in (path, path.with_name(path.name + "-wal")):
            if file.exists():
                raw = file.read_bytes()
                at = raw.find(NAME.encode())
                assert at < 0 and b"0987654321" not in raw, (file.name, raw[max(0, at - 300) : at + 100])
    # Writing again starts afresh.
    replies = await exchange(fake_telegram, CHAT, lambda: fake_telegram.send_text(CHAT, "/dulieu"))
    shown = replies[-1]["text"]
    assert NAME not in shown and "0987654321" not in shown and lead.ref_code not in shown


async def test_withdrawing_consent_anonymises_the_applications(
    fake_telegram: FakeTelegram, telegram_bot: TelegramBot
) -> None:
    await apply_subscribe_and_ask(fake_telegram, CHAT)
    replies = await exchange(fake_telegram, CHAT, lambda: fake_telegram.send_text(CHAT, "/dulieu"))
    assert "wc" in buttons(replies[-1])
    replies = await exchange(fake_telegram, CHAT, lambda: fake_telegram.press_button(CHAT, "wc"))
    confirm = next(b for b in buttons(replies[-1]) if b.endswith(":withdraw"))
    await exchange(fake_telegram, CHAT, lambda: fake_telegram.press_button(CHAT, confirm))
    with telegram_bot.services.db.session() as s:
        lead = s.exec(select(Lead)).one()
        profile = one(Repos(s).profiles.get(lead.user_id))
        notes = [e.note or "" for e in s.exec(select(LeadEvent).where(LeadEvent.lead_id == lead.id)).all()]
    assert lead.full_name == ANONYMISED_NAME and lead.phone == ""
    assert profile.full_name is None and profile.phone is None
    assert any("rút lại sự đồng ý" in note for note in notes)


async def test_erase_on_zalo_by_number(fake_zalo: FakeZalo, database_url: str) -> None:
    from tests.e2e.test_zalo import ZaloBot, say, zalo_settings

    fake = fake_zalo
    bot = ZaloBot(zalo_settings(fake, database_url))
    await bot.start()
    chat = "f00dbabe0001"
    try:
        await say(fake, bot, "/start", chat)
        await say(fake, bot, "/nhachan", chat)
        await say(fake, bot, "Nghệ An", chat)
        replies = await say(fake, bot, "/xoadulieu", chat)
        number = next(line.split(".")[0] for line in replies[-1].splitlines() if "Xóa hết" in line)
        await say(fake, bot, number, chat)
        await bot.settle()
        assert not any(personal_rows(bot.services.db, chat).values())
    finally:
        await bot.stop()


def test_console_producer_has_the_same_rights(database: Database, catalog: Catalog) -> None:
    chat = Chat(recording_dialogue(database, catalog), channel="console", chat_id="lan")
    chat.press("a:machinery-national")
    fill_form(chat)
    chat.press(chat.button_for("as:"))
    chat.send("/dulieu")
    assert "Nguyễn Thị Lan" in chat.text
    chat.send("/xoadulieu")
    chat.press(chat.button_for("s:"))
    assert "privacy_erased" in chat.templates
    assert not any(personal_rows(database, "lan").values())


def test_retention_purges_old_messages_and_stale_drafts(database: Database, catalog: Catalog) -> None:
    from bot.services import Services
    from bot.settings import load_settings
    from handlers.dialogue import Dialogue
    from handlers.texts import Texts

    texts = Texts()
    dialogue = Dialogue(database, catalog, texts)
    chat = Chat(dialogue, chat_id="old")
    with time_machine.travel(utcnow() - timedelta(days=800), tick=False):
        chat.send("/start")
        chat.press("a:machinery-national")
        chat.send("Nguyễn Văn Cũ")  # a draft, abandoned
    fresh = Chat(dialogue, chat_id="new")
    fresh.send("/start")
    settings = load_settings(_env_file=None, database_url=database.url)
    sweeper = ReminderScheduler(Services(settings, database, catalog, texts, dialogue, dialogue.services))
    sweeper.sweep_once()
    with database.session() as s:
        old_user = one(Repos(s).users.find("telegram", "old"))
        old_messages = s.exec(select(MessageLog).where(MessageLog.user_id == old_user.id)).all()
        conversation = one(s.get(Conversation, old_user.id))
        new_user = one(Repos(s).users.find("telegram", "new"))
        new_messages = s.exec(select(MessageLog).where(MessageLog.user_id == new_user.id)).all()
    assert old_messages == [] and "_draft" not in conversation.data
    assert new_messages  # recent messages stay
