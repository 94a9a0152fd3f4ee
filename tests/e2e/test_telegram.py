"""Telegram end to end: the real PTB Application polling the local fake Bot API over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from storage.models import InboxUpdate, saved_id
from storage.repositories import Repos
from tests.e2e.conftest import TelegramBot, conversation, telegram_settings, template_text
from tests.fakes.telegram import FakeTelegram, post_webhook_update
from tests.support.checks import one

CHAT = 4242
SECRET = "s3cret-token_123"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAIN_MENU = ["mb", "e", "a", "r", "h"]


async def exchange(
    fake: FakeTelegram, chat: int, act: Callable[[], object], settle: float = 0.4
) -> list[dict]:
    """Do ``act`` (queue an update) and return the bot messages it produced, once they stop coming."""
    before = len(fake.messages(chat))
    act()
    await fake.wait_for_messages(chat, before + 1)
    while True:
        count = len(fake.messages(chat))
        await asyncio.sleep(settle)
        if len(fake.messages(chat)) == count:
            return fake.messages(chat)[before:]


def buttons(message: dict) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


def texts(messages: list[dict]) -> str:
    return "\n".join(m.get("text", "") for m in messages)


async def test_start_greets_registers_commands_and_shows_the_menu(
    fake_telegram: FakeTelegram, telegram_bot: TelegramBot
) -> None:
    replies = await exchange(
        fake_telegram, CHAT, lambda: fake_telegram.send_text(CHAT, "/start", first_name="Lan")
    )
    assert "Lan" in replies[0]["text"]
    assert buttons(replies[-1]) == MAIN_MENU
    commands = {c["command"]: c["description"] for c in fake_telegram.my_commands()}
    assert {"start", "menu", "help", "huy", "kiemtra", "tracuu", "hoicanbo"} <= set(commands)
    assert commands["kiemtra"] == "Kiểm tra điều kiện được hỗ trợ"


async def test_browse_to_a_programme_card(fake_telegram: FakeTelegram, telegram_bot: TelegramBot) -> None:
    await exchange(fake_telegram, CHAT, lambda: fake_telegram.send_text(CHAT, "/start"))
    replies = await exchange(fake_telegram, CHAT, lambda: fake_telegram.press_button(CHAT, "mb"))
    assert "c:machinery" in buttons(replies[-1])
    replies = await exchange(fake_telegram, CHAT, lambda: fake_telegram.press_button(CHAT, "c:machinery"))
    assert "p:machinery-national" in buttons(replies[-1])
    replies = await exchange(
        fake_telegram, CHAT, lambda: fake_telegram.press_button(CHAT, "p:machinery-national")
    )
    assert "tối đa 300 triệu đồng" in replies[-1]["text"]
    assert "e:machinery-national" in buttons(replies[-1])
    assert fake_telegram.callback_answers  # every button press is answered


async def test_diacritic_free_question(fake_telegram: FakeTelegram, telegram_bot: TelegramBot) -> None:
    replies = await exchange(
        fake_telegram,
        CHAT,
        lambda: fake_telegram.send_text(CHAT, "co so lam mien muon mua may say thi duoc ho tro bn"),
    )
    assert "300 triệu" in texts(replies)


async def test_whole_eligibility_check(fake_telegram: FakeTelegram, telegram_bot: TelegramBot) -> None:
    send = fake_telegram.send_text
    press = fake_telegram.press_button
    await exchange(fake_telegram, CHAT, lambda: send(CHAT, "/start"))
    replies = await exchange(fake_telegram, CHAT, lambda: press(CHAT, "e:machinery-national"))
    answer = next(b for b in buttons(replies[-1]) if b.endswith(":household_business"))
    replies = await exchange(fake_telegram, CHAT, lambda: press(CHAT, answer))
    production = next(b for b in buttons(replies[-1]) if b.endswith(":production"))
    await exchange(fake_telegram, CHAT, lambda: press(CHAT, production))
    replies = await exchange(fake_telegram, CHAT, lambda: send(CHAT, "hoa binh"))
    assert "Phú Thọ" in texts(replies)
    whole_line = next(b for b in buttons(replies[-1]) if b.endswith(":yes"))
    await exchange(fake_telegram, CHAT, lambda: press(CHAT, whole_line))
    replies = await exchange(fake_telegram, CHAT, lambda: send(CHAT, "1,2 tỷ"))
    assert conversation(telegram_bot.services, "telegram", CHAT).step == "results"
    assert "450 triệu đồng" in texts(replies)
    assert {"p:machinery-national", "a:machinery-national"} <= set(buttons(replies[-1]))  # eligible


async def test_restart_in_the_middle_of_the_check(
    fake_telegram: FakeTelegram, telegram_bot: TelegramBot
) -> None:
    await exchange(fake_telegram, CHAT, lambda: fake_telegram.send_text(CHAT, "/start"))
    replies = await exchange(fake_telegram, CHAT, lambda: fake_telegram.press_button(CHAT, "e"))
    coop = next(b for b in buttons(replies[-1]) if b.endswith(":coop"))
    replies = await exchange(fake_telegram, CHAT, lambda: fake_telegram.press_button(CHAT, coop))
    production = next(b for b in buttons(replies[-1]) if b.endswith(":production"))

    await telegram_bot.restart()  # a new Application and a new dialogue on the same database

    replies = await exchange(fake_telegram, CHAT, lambda: fake_telegram.press_button(CHAT, production))
    assert conversation(telegram_bot.services, "telegram", CHAT).data["pending"] == "province"
    replies = await exchange(fake_telegram, CHAT, lambda: fake_telegram.send_text(CHAT, "Sơn La"))
    with telegram_bot.services.db.session() as s:
        repos = Repos(s)
        user = one(repos.users.find("telegram", str(CHAT)))
        profile = one(repos.profiles.get(saved_id(user)))
        assert (profile.legal_form, profile.activity, profile.province) == ("coop", "production", "Sơn La")


@pytest.mark.parametrize(
    "send", ["send_sticker", "send_photo", "send_voice", "send_location", "send_document"]
)
async def test_unsupported_media_gets_a_polite_answer(
    fake_telegram: FakeTelegram, telegram_bot: TelegramBot, send: str
) -> None:
    replies = await exchange(fake_telegram, CHAT, lambda: getattr(fake_telegram, send)(CHAT))
    assert replies[0]["text"].startswith("Dạ")
    assert buttons(replies[-1]) == MAIN_MENU


async def test_bad_input_never_breaks_the_bot(fake_telegram: FakeTelegram, telegram_bot: TelegramBot) -> None:
    await exchange(fake_telegram, CHAT, lambda: fake_telegram.send_text(CHAT, "/start"))
    replies = await exchange(fake_telegram, CHAT, lambda: fake_telegram.send_text(CHAT, "máy " * 1500))
    assert replies and "Traceback" not in texts(replies)
    stale = template_text(telegram_bot.services, "stale")
    replies = await exchange(fake_telegram, CHAT, lambda: fake_telegram.press_button(CHAT, "forged:data"))
    assert replies[0]["raw_text"] == stale
    replies = await exchange(fake_telegram, CHAT, lambda: fake_telegram.press_button(CHAT, "s:999:yes"))
    assert replies[0]["raw_text"] == stale
    replies = await exchange(
        fake_telegram, CHAT, lambda: fake_telegram.send_text(CHAT, "<b>*hỗ trợ*</b> _máy_ & co")
    )
    assert replies
    html_name = 77
    replies = await exchange(
        fake_telegram,
        html_name,
        lambda: fake_telegram.send_text(html_name, "/start", first_name="<i>Bé</i> & <b>"),
    )
    assert (
        "<i>Bé</i> & <b>" in replies[0]["text"]
    )  # shown literally: it was escaped, and Telegram accepted it
    fake_telegram.edited_message(CHAT, "sửa tin nhắn")
    replies = await exchange(fake_telegram, CHAT, lambda: fake_telegram.send_text(CHAT, "menu"))
    assert buttons(replies[-1]) == MAIN_MENU


async def test_a_crash_in_the_dialogue_gets_a_polite_message(
    fake_telegram: FakeTelegram, telegram_bot: TelegramBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(incoming, receipt=None):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(one(telegram_bot.runner.telegram).dialogue, "handle", broken)
    replies = await exchange(fake_telegram, CHAT, lambda: fake_telegram.send_text(CHAT, "hello"))
    assert replies[0]["raw_text"] == telegram_bot.services.texts.render("error")
    assert "Traceback" not in replies[0]["text"] and "fire" not in replies[0]["text"]


async def test_webhook_mode_checks_the_secret_and_stores_before_answering(
    fake_telegram: FakeTelegram, database_url: str
) -> None:
    bot = TelegramBot(
        telegram_settings(
            fake_telegram,
            database_url,
            telegram_webhook_url="https://bot.example.org/webhook/telegram",
            telegram_webhook_secret=SECRET,
        )
    )
    await bot.start()
    try:
        webhook = one(fake_telegram.webhook)
        assert webhook.url == "https://bot.example.org/webhook/telegram"
        assert webhook.secret_token == SECRET
        transport = httpx.ASGITransport(app=bot.runner.web_app)
        update = fake_telegram.text_update(CHAT, "/start")
        url = "http://testserver/webhook/telegram"
        wrong = await post_webhook_update(url, update, "wrong-secret", transport=transport)
        missing = await post_webhook_update(url, update, None, transport=transport)
        assert wrong.status_code == 403 and missing.status_code == 403
        await asyncio.sleep(0.3)
        assert fake_telegram.messages(CHAT) == []
        with bot.services.db.session() as s:
            assert Repos(s).users.find("telegram", str(CHAT)) is None  # nothing changed
            assert Repos(s).inbox.waiting() == 0  # nothing stored
        ok = await post_webhook_update(url, update, SECRET, transport=transport)
        assert ok.status_code == 200
        replies = await fake_telegram.wait_for_messages(CHAT, 1)
        assert buttons(replies[-1]) == MAIN_MENU
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            garbage = await client.post(
                "/webhook/telegram", content=b"not json", headers={SECRET_HEADER: SECRET}
            )
            assert garbage.status_code == 400
            health = await client.get("/healthz")
            assert health.status_code == 200 and health.json()["status"] == "ok"
    finally:
        await bot.stop()


async def test_webhook_refuses_before_reading_and_answers_a_repeated_update_once(
    fake_telegram: FakeTelegram, database_url: str
) -> None:
    bot = TelegramBot(
        telegram_settings(
            fake_telegram,
            database_url,
            telegram_webhook_url="https://bot.example.org/webhook/telegram",
            telegram_webhook_secret=SECRET,
        )
    )
    await bot.start()
    try:
        transport = httpx.ASGITransport(app=bot.runner.web_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            # The secret is checked before the body is even parsed: garbage with a wrong secret is a 403.
            forged = await client.post(
                "/webhook/telegram", content=b"{not json", headers={SECRET_HEADER: "x"}
            )
            assert forged.status_code == 403
            huge = b'{"update_id": 1, "message": {"text": "' + b"a" * 1_100_000 + b'"}}'
            too_big = await client.post("/webhook/telegram", content=huge, headers={SECRET_HEADER: SECRET})
            assert too_big.status_code == 413

            async def chunks():
                for _ in range(20):
                    yield b"x" * 100_000

            streamed = await client.post(
                "/webhook/telegram", content=chunks(), headers={SECRET_HEADER: SECRET}
            )
            assert streamed.status_code == 413  # no Content-Length: cut off once past the limit
        update = fake_telegram.text_update(CHAT, "/start")
        first = await post_webhook_update(
            "http://testserver/webhook/telegram", update, SECRET, transport=transport
        )
        again = await post_webhook_update(
            "http://testserver/webhook/telegram", update, SECRET, transport=transport
        )
        assert first.status_code == again.status_code == 200  # Telegram retried after a timeout
        await fake_telegram.wait_for_messages(CHAT, 1)
        await asyncio.sleep(1.0)
        greetings = [m for m in fake_telegram.messages(CHAT) if buttons(m) == MAIN_MENU]
        assert len(greetings) == 1  # handled once
        with bot.services.db.session() as s:
            assert s.exec(select(func.count()).select_from(InboxUpdate)).one() == 1
    finally:
        await bot.stop()


async def test_blocking_the_bot_is_recorded(fake_telegram: FakeTelegram, telegram_bot: TelegramBot) -> None:
    await exchange(fake_telegram, CHAT, lambda: fake_telegram.send_text(CHAT, "/start"))

    def blocked() -> bool:
        with telegram_bot.services.db.session() as s:
            return one(Repos(s).users.find("telegram", str(CHAT))).is_blocked

    fake_telegram.enqueue(fake_telegram.bot_status_update(CHAT, "kicked"))
    for _ in range(50):
        if blocked():
            break
        await asyncio.sleep(0.05)
    assert blocked()
    fake_telegram.enqueue(fake_telegram.bot_status_update(CHAT, "member"))
    for _ in range(50):
        if not blocked():
            break
        await asyncio.sleep(0.05)
    assert not blocked()
