"""Applications over Telegram end to end: the whole form, a restart in the middle, a double tap on
"Gửi", and the staff side (new lead in the staff chat, status buttons, the producer told)."""

from __future__ import annotations

from functools import partial

from sqlmodel import select

from storage.models import Lead
from tests.e2e.conftest import STAFF_CHAT, TelegramBot, conversation
from tests.e2e.test_telegram import buttons, exchange, texts
from tests.fakes.telegram import FakeTelegram
from tests.support.checks import one

PRODUCER = 5151


def answer_button(message: dict, suffix: str) -> str:
    return next(b for b in buttons(message) if b.endswith(suffix))


def step(bot: TelegramBot) -> tuple[str, str | None]:
    state = conversation(bot.services, "telegram", PRODUCER)
    return state.flow, state.step


async def start_application(fake: FakeTelegram, bot: TelegramBot) -> None:
    await exchange(fake, PRODUCER, lambda: fake.send_text(PRODUCER, "/start", first_name="Hoa"))
    await exchange(fake, PRODUCER, lambda: fake.press_button(PRODUCER, "p:machinery-national"))
    await exchange(fake, PRODUCER, lambda: fake.press_button(PRODUCER, "a:machinery-national"))
    assert step(bot) == ("apply", "full_name")


async def finish_application(fake: FakeTelegram, bot: TelegramBot, after_name: bool = False) -> list[dict]:
    say = fake.send_text
    if not after_name:
        replies = await exchange(fake, PRODUCER, lambda: say(PRODUCER, "Trần Thị Hoa"))
        contact_keyboard = replies[-1]["reply_markup"]
        assert contact_keyboard["keyboard"][0][0]["request_contact"] is True
    await exchange(fake, PRODUCER, lambda: fake.send_contact(PRODUCER, "+84912345678", user_id=PRODUCER))
    replies = await exchange(fake, PRODUCER, lambda: say(PRODUCER, "Cơ sở mộc Hoa Phát"))
    replies = await exchange(
        fake, PRODUCER, lambda: fake.press_button(PRODUCER, answer_button(replies[-1], ":sme"))
    )
    for text in ("Thanh Hoa", "xã Quảng Tân", "Đồ gỗ nội thất", "Mua máy CNC khắc gỗ thay làm tay"):
        replies = await exchange(fake, PRODUCER, partial(say, PRODUCER, text))
    replies = await exchange(fake, PRODUCER, lambda: say(PRODUCER, "nửa tỷ"))
    replies = await exchange(
        fake, PRODUCER, lambda: fake.press_button(PRODUCER, answer_button(replies[-1], ":yes"))
    )
    assert step(bot) == ("apply", "summary")
    return replies


async def test_full_application_reaches_staff_and_status_changes_reach_the_producer(
    fake_telegram: FakeTelegram, telegram_bot: TelegramBot
) -> None:
    fake = fake_telegram
    await start_application(fake, telegram_bot)
    summary = await finish_application(fake, telegram_bot)
    assert "0912 345 678" in summary[-1]["text"] and "500 triệu đồng" in summary[-1]["text"]
    submit = next(b for b in buttons(summary[-1]) if b.startswith("as:"))
    done = await exchange(fake, PRODUCER, lambda: fake.press_button(PRODUCER, submit))
    assert "KC-" in texts(done)

    staff_messages = await fake.wait_for_messages(STAFF_CHAT, 1)
    assert "Trần Thị Hoa" in staff_messages[0]["text"] and "0912345678" in staff_messages[0]["text"]
    status_button = next(b for b in buttons(staff_messages[0]) if b.endswith(":contacted"))
    before = len(fake.messages(PRODUCER))
    await exchange(fake, STAFF_CHAT, lambda: fake.press_button(STAFF_CHAT, status_button))
    told = await fake.wait_for_messages(PRODUCER, before + 1)
    contacted = telegram_bot.services.texts.labels["lead_status"]["contacted"]
    with telegram_bot.services.db.session() as s:
        lead = s.exec(select(Lead)).one()
    assert lead.status == "contacted"
    assert lead.ref_code in told[-1]["text"] and contacted in told[-1]["text"]  # the producer is told

    replies = await exchange(fake, PRODUCER, lambda: fake.send_text(PRODUCER, "/hoso"))
    assert lead.ref_code in replies[-1]["text"] and contacted in replies[-1]["text"]


async def test_restart_in_the_middle_of_an_application(
    fake_telegram: FakeTelegram, telegram_bot: TelegramBot
) -> None:
    fake = fake_telegram
    await start_application(fake, telegram_bot)
    await exchange(fake, PRODUCER, lambda: fake.send_text(PRODUCER, "Trần Thị Hoa"))
    await telegram_bot.restart()
    summary = await finish_application(fake, telegram_bot, after_name=True)
    assert "Trần Thị Hoa" in summary[-1]["text"]


async def test_double_tap_on_submit_creates_one_lead(
    fake_telegram: FakeTelegram, telegram_bot: TelegramBot
) -> None:
    fake = fake_telegram
    await start_application(fake, telegram_bot)
    summary = await finish_application(fake, telegram_bot)
    submit = next(b for b in buttons(summary[-1]) if b.startswith("as:"))
    message_id = summary[-1]["message_id"]
    fake.press_button(PRODUCER, submit, message_id=message_id)
    replies = await exchange(
        fake, PRODUCER, lambda: fake.press_button(PRODUCER, submit, message_id=message_id)
    )
    with telegram_bot.services.db.session() as s:
        leads = s.exec(select(Lead)).all()
        assert len(leads) == 1
        assert one(leads[0].ref_code) in texts(replies)
