"""The fake Telegram Bot API, driven by the real python-telegram-bot Application and Bot."""

from __future__ import annotations

import asyncio
import datetime as dtm
import html
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    MenuButtonCommands,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.support.checks import one

from .telegram import SECRET_HEADER, FakeTelegram, HtmlError, parse_html, post_webhook_update

CHAT = 42
MENU = [("Hỏi đáp", "menu:ask"), ("Đăng ký", "menu:apply"), ("Sửa tin", "menu:edit")]


# --------------------------------------------------------------------------- a tiny bot


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.effective_user is not None
    buttons = [InlineKeyboardButton(text, callback_data=data) for text, data in MENU]
    markup = InlineKeyboardMarkup([buttons[:2], buttons[2:]])
    name = html.escape(update.effective_user.first_name)
    await update.message.reply_html(f"<b>Xin chào</b> {name} &amp; chào mừng!", reply_markup=markup)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None and query.message is not None
    await query.answer()
    if query.data == "menu:edit":
        await query.edit_message_text("Đã sửa")
        return
    await context.bot.send_message(query.message.chat.id, f"Bạn chọn {query.data}")


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    await update.message.reply_text(f"Bạn nói: {update.message.text}")


def build_app(fake: FakeTelegram) -> Application:
    app = ApplicationBuilder().token(fake.token).base_url(fake.base_url).build()
    app.add_handler(CommandHandler("start", on_start))
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_text))
    return app


@asynccontextmanager
async def polling(app: Application) -> AsyncIterator[Application]:
    """Run the Application with long polling inside the test's event loop."""
    updater = one(app.updater)  # the builder makes one unless told not to
    async with app:
        await updater.start_polling(poll_interval=0, timeout=1)
        await app.start()
        try:
            yield app
        finally:
            await updater.stop()
            await app.stop()


@pytest.fixture
def fake(fake_telegram: FakeTelegram) -> FakeTelegram:
    return fake_telegram


@pytest.fixture
async def bot_app(fake: FakeTelegram) -> AsyncIterator[Application]:
    async with polling(build_app(fake)) as app:
        yield app


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.base_url) as plain_bot:
        yield plain_bot


def method_url(fake: FakeTelegram, method: str, token: str | None = None) -> str:
    return f"{fake.base_url}{token or fake.token}/{method}"


def retry_seconds(error: RetryAfter) -> float:
    value = error.retry_after  # an int in PTB 22 (with a warning), a timedelta with PTB_TIMEDELTA=1
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


# --------------------------------------------------------------------------- the Application end to end


async def test_start_gets_html_reply_with_buttons(fake: FakeTelegram, bot_app: Application) -> None:
    fake.send_text(CHAT, "/start", first_name="Lan")

    [reply] = await fake.wait_for_messages(CHAT, 1)

    assert reply["text"] == "Xin chào Lan & chào mừng!"
    assert reply["entities"] == [{"type": "bold", "offset": 0, "length": 8}]
    assert reply["raw_text"].startswith("<b>Xin chào</b>")
    assert reply["parse_mode"] == "HTML"
    assert fake.last_buttons(CHAT) == MENU
    assert [method for method, _ in fake.calls[:2]] == ["getMe", "deleteWebhook"]


async def test_pressing_a_button_answers_and_sends(fake: FakeTelegram, bot_app: Application) -> None:
    fake.send_text(CHAT, "/start")
    await fake.wait_for_messages(CHAT, 1)

    fake.press_button(CHAT, "menu:ask")
    messages = await fake.wait_for_messages(CHAT, 2)

    assert messages[1]["text"] == "Bạn chọn menu:ask"
    [answer] = fake.calls_to("answerCallbackQuery")
    assert answer["callback_query_id"] in fake.callback_answers


async def test_edit_from_a_button_and_edit_refusals(fake: FakeTelegram, bot_app: Application) -> None:
    fake.send_text(CHAT, "/start")
    [menu] = await fake.wait_for_messages(CHAT, 1)

    fake.press_button(CHAT, "menu:edit")
    edited = (await fake.wait_for_messages(CHAT, 2))[1]

    assert (edited["method"], edited["text"]) == ("editMessageText", "Đã sửa")
    assert edited["message_id"] == menu["message_id"]
    current = fake.current_message(CHAT, menu["message_id"])
    assert current is not None and "reply_markup" not in current  # editing without markup drops it
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot_app.bot.edit_message_text("Đã sửa", chat_id=CHAT, message_id=menu["message_id"])
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot_app.bot.edit_message_text("x", chat_id=CHAT, message_id=987_654)
    await bot_app.bot.edit_message_reply_markup(CHAT, menu["message_id"], reply_markup=_one_button("b"))
    rekeyed = fake.current_message(CHAT, menu["message_id"])
    assert rekeyed is not None
    assert rekeyed["reply_markup"] == {"inline_keyboard": [[{"text": "Nút", "callback_data": "b"}]]}
    assert len(fake.messages(CHAT)) == 2  # editMessageReplyMarkup changes the message, not the log


async def test_each_update_is_delivered_once(fake: FakeTelegram, bot_app: Application) -> None:
    ids = [fake.send_text(CHAT, f"câu {n}") for n in range(3)]

    await fake.wait_for_messages(CHAT, 3)
    await asyncio.sleep(0.3)  # several more polling rounds

    assert ids == sorted(ids)
    assert [m["text"] for m in fake.messages(CHAT)] == [f"Bạn nói: câu {n}" for n in range(3)]
    offsets = [params.get("offset", 0) for params in fake.calls_to("getUpdates")]
    assert offsets == sorted(offsets) and offsets[-1] == ids[-1] + 1
    assert fake.pending_updates == []


# --------------------------------------------------------------------------- getUpdates semantics


async def test_get_updates_offset_limit_and_long_poll(fake: FakeTelegram) -> None:
    url = method_url(fake, "getUpdates")
    first, second = fake.send_text(CHAT, "a"), fake.send_text(CHAT, "b")
    async with httpx.AsyncClient(timeout=10) as client:

        async def fetch(**params: int) -> list[int]:
            response = await client.post(url, data={key: str(value) for key, value in params.items()})
            return [update["update_id"] for update in response.json()["result"]]

        assert await fetch(offset=0, limit=1) == [first]
        assert await fetch(offset=second) == [second]
        assert await fetch(offset=second + 1) == []

        started = time.monotonic()
        assert await fetch(offset=second + 1, timeout=1) == []
        assert time.monotonic() - started >= 0.9

        waiting = asyncio.create_task(fetch(offset=second + 1, timeout=5))
        await asyncio.sleep(0.1)
        third = fake.send_text(CHAT, "c")
        assert await asyncio.wait_for(waiting, 1) == [third]

        response = await client.post(url, json={"offset": third + 1})
        assert response.json() == {"ok": True, "result": []}


async def test_stop_answers_a_pending_long_poll(fake: FakeTelegram) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        waiting = asyncio.create_task(client.post(method_url(fake, "getUpdates"), data={"timeout": "30"}))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await fake.stop()
        response = await waiting

    assert time.monotonic() - started < 2
    assert response.json() == {"ok": True, "result": []}


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("<b>đậm</b> &lt;tag&gt; &amp; &quot;", 'đậm <tag> & "'),
        ('<a href="https://x.vn/?a=1&amp;b=2">link</a>', "link"),
        ('<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>', "st"),
        ('<pre><code class="language-python">x</code></pre><blockquote>q</blockquote>', "xq"),
        ("<b><i><u><s>x</s></u></i></b> &#128512;", "x 😀"),
    ],
)
def test_well_formed_html_parses(source: str, text: str) -> None:
    assert parse_html(source)[0] == text


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", "Unmatched end tag"),
        ("</b>", "Unexpected end tag"),
        ("a < b", 'Unsupported start tag ""'),
        ("<br>", 'Unsupported start tag "br"'),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
        ("R&D", 'Unescaped "&"'),
        ("1 > 0", 'Unescaped ">"'),
        ("<b", "Unclosed start tag"),
    ],
)
def test_malformed_html_is_an_error(source: str, error: str) -> None:
    with pytest.raises(HtmlError, match=error):
        parse_html(source)


async def test_send_message_refuses_bad_html_and_bad_lengths(fake: FakeTelegram, bot: Bot) -> None:
    for source in ("<b>đậm", "<b><i>x</b></i>", "Giá < 5 triệu", "R&D", "<br>"):
        with pytest.raises(BadRequest, match=r"(?i)Can't parse entities"):
            await bot.send_message(CHAT, source, parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)Message text is empty"):
        await bot.send_message(CHAT, "<b> </b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)Message is too long"):
        await bot.send_message(CHAT, "a" * 4097)

    sent = await bot.send_message(CHAT, f"<b>{'a' * 4096}</b>", parse_mode="HTML")  # 4096 after parsing

    assert sent.text == "a" * 4096
    assert len(fake.messages(CHAT)) == 1


async def test_inline_keyboard_rules(fake: FakeTelegram, bot: Bot) -> None:
    too_long = "đ" * 33  # 33 characters but 66 bytes
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(CHAT, "x", reply_markup=_one_button(too_long))
    text_only = InlineKeyboardMarkup([[InlineKeyboardButton("Chỉ chữ")]])
    with pytest.raises(BadRequest, match=r"(?i)Text buttons are unallowed"):
        await bot.send_message(CHAT, "x", reply_markup=text_only)

    sent = await bot.send_message(CHAT, "x", reply_markup=_one_button("đ" * 32))  # exactly 64 bytes

    assert sent.reply_markup is not None
    assert fake.last_buttons(CHAT) == [("Nút", "đ" * 32)]


def _one_button(data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Nút", callback_data=data)]])


async def test_reply_keyboard_with_request_contact(fake: FakeTelegram, bot: Bot) -> None:
    button = KeyboardButton("Chia sẻ số điện thoại", request_contact=True)
    markup = ReplyKeyboardMarkup([[button]], one_time_keyboard=True, resize_keyboard=True)

    sent = await bot.send_message(CHAT, "Gửi số điện thoại", reply_markup=markup)

    assert sent.reply_markup is None  # Telegram echoes inline keyboards only
    [logged] = fake.messages(CHAT)
    assert logged["reply_markup"]["keyboard"][0][0]["request_contact"] is True
    assert fake.last_buttons(CHAT) == []


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_limit_raises_retry_after(fake: FakeTelegram, bot: Bot) -> None:
    fake.flood_limit_per_sec = 2
    await bot.send_message(1, "a")
    await bot.send_message(2, "b")

    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(3, "c")

    assert retry_seconds(caught.value) == 1
    assert fake.count_429() == 1
    assert fake.messages(3) == []
    assert fake.calls_to("sendMessage")[-1]["chat_id"] == 3


async def test_per_chat_limit_and_the_429_envelope(fake: FakeTelegram, bot: Bot) -> None:
    fake.per_chat_limit = True
    fake.retry_after_seconds = 3
    await bot.send_message(5, "a")
    await bot.send_message(6, "b")  # another chat is fine

    async with httpx.AsyncClient() as client:
        response = await client.post(method_url(fake, "sendMessage"), data={"chat_id": "5", "text": "c"})

    assert response.status_code == 429
    assert response.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }
    assert fake.count_429() == 1


async def test_blocked_chat_raises_forbidden(fake: FakeTelegram, bot: Bot) -> None:
    fake.blocked_chats.add(77)

    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(77, "x")
    await bot.send_message(78, "y")

    assert fake.messages(77) == []
    assert len(fake.messages(78)) == 1


async def test_set_my_commands_validation(fake: FakeTelegram, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("start", "Bắt đầu"), BotCommand("hoi_dap", "Hỏi đáp")])
    await bot.set_my_commands(
        [BotCommand("menu", "Trình đơn")], scope=BotCommandScopeChat(CHAT), language_code="vi"
    )

    assert [c.command for c in await bot.get_my_commands()] == ["start", "hoi_dap"]
    assert fake.my_commands({"type": "chat", "chat_id": CHAT}, "vi") == [
        {"command": "menu", "description": "Trình đơn"}
    ]
    for bad in (BotCommand("Start", "x"), BotCommand("a" * 33, "x"), BotCommand("hỏi", "x")):
        with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
            await bot.set_my_commands([bad])
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_DESCRIPTION_INVALID"):
        await bot.set_my_commands([BotCommand("ok", "")])
    await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()


async def test_wrong_token_unknown_method_and_missing_params(fake: FakeTelegram) -> None:
    with pytest.raises(InvalidToken, match="rejected by the server"):
        async with Bot("123456:WRONG", base_url=fake.base_url):
            pass
    async with httpx.AsyncClient() as client:
        wrong = await client.post(method_url(fake, "getMe", token="123456:WRONG"))
        unknown = await client.post(method_url(fake, "sendTelepathy"))
        missing = await client.post(method_url(fake, "sendMessage"), data={"chat_id": "42"})
        extra = await client.post(
            method_url(fake, "sendMessage"), data={"chat_id": "42", "text": "x", "colour": "1"}
        )
        by_get = await client.get(method_url(fake, "GETME"))

    assert (wrong.status_code, wrong.json()) == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert (unknown.status_code, unknown.json()["description"]) == (404, "Not Found: method not found")
    assert (missing.status_code, missing.json()["description"]) == (400, "Bad Request: message text is empty")
    assert extra.status_code == 400 and "colour" in extra.json()["description"]
    assert by_get.json()["result"]["username"] == "test_bot"


async def test_document_upload_and_other_methods(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_document(
        CHAT, document=b"%PDF-1.4 ho so", filename="ho_so.pdf", caption="<b>Hồ sơ</b>", parse_mode="HTML"
    )
    await bot.send_chat_action(CHAT, "typing")
    await bot.set_chat_menu_button(menu_button=MenuButtonCommands())

    document = one(sent.document)
    assert (document.file_name, document.file_size, sent.caption) == ("ho_so.pdf", 14, "Hồ sơ")
    [upload] = fake.uploads
    assert (upload.filename, upload.size) == ("ho_so.pdf", 14)
    assert fake.messages(CHAT)[0]["method"] == "sendDocument"
    assert fake.menu_buttons[None] == {"type": "commands"}
    with pytest.raises(BadRequest, match=r"(?i)Wrong parameter action"):
        await bot.send_chat_action(CHAT, "dancing")
    with pytest.raises(BadRequest, match=r"(?i)Query is too old"):
        await bot.answer_callback_query("no-such-query")


async def test_webhook_registration(fake: FakeTelegram, bot: Bot) -> None:
    await bot.set_webhook("https://bot.example.vn/tg/webhook", secret_token="s3cret_-A")

    assert fake.webhook is not None and fake.webhook.secret_token == "s3cret_-A"
    assert (await bot.get_webhook_info()).url == "https://bot.example.vn/tg/webhook"
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates()
    with pytest.raises(BadRequest, match=r"(?i)HTTPS URL must be provided"):
        await bot.set_webhook("http://bot.example.vn/tg/webhook")
    with pytest.raises(BadRequest, match=r"(?i)secret token"):
        await bot.set_webhook("https://bot.example.vn/tg/webhook", secret_token="có dấu")
    await bot.delete_webhook()
    assert fake.webhook is None


async def test_post_webhook_update_sends_the_secret_header() -> None:
    fake = FakeTelegram()
    received: list[Update] = []

    async def webhook(request: Request) -> Response:
        if request.headers.get(SECRET_HEADER) != "s3cret":
            return Response(status_code=403)
        received.append(Update.de_json(await request.json(), None))
        return Response()

    transport = httpx.ASGITransport(app=Starlette(routes=[Route("/tg", webhook, methods=["POST"])]))
    url = "http://testserver/tg"

    refused = await post_webhook_update(url, fake.text_update(CHAT, "/start"), None, transport=transport)
    accepted = await post_webhook_update(url, fake.text_update(CHAT, "/start"), "s3cret", transport=transport)

    assert (refused.status_code, accepted.status_code) == (403, 200)
    [update] = received
    assert update.message is not None and update.message.text == "/start"


# --------------------------------------------------------------------------- update builders


def test_update_builders_parse_with_ptb() -> None:
    fake = FakeTelegram()
    bot = Bot(fake.token)

    def parse(data: dict) -> Update:
        update = Update.de_json(data, bot)
        assert update is not None
        return update

    command = parse(fake.text_update(CHAT, "/start@test_bot xin", first_name="Lan", username="lan"))
    later = parse(fake.text_update(CHAT, "chào"))  # the chat's user is remembered
    contact = parse(fake.contact_update(CHAT, "+84901234567"))
    edited = parse(fake.edited_update(CHAT, "sửa"))
    kinds = [parse(build(CHAT)) for build in (fake.sticker_update, fake.photo_update, fake.voice_update)]
    location = parse(fake.location_update(CHAT))
    document = parse(fake.document_update(CHAT))

    assert command.message is not None and command.message.entities[0].length == len("/start@test_bot")
    assert command.effective_user is not None and command.effective_user.username == "lan"
    assert later.effective_user == command.effective_user and one(later.message).entities == ()
    assert contact.message is not None and contact.message.contact is not None
    assert contact.message.contact.user_id == CHAT == one(contact.message.from_user).id
    assert (
        edited.edited_message is not None and edited.edited_message.message_id == contact.message.message_id
    )
    assert one(kinds[0].message).sticker is not None and one(kinds[1].message).photo[-1].width == 800
    assert one(kinds[2].message).voice is not None and one(location.message).location is not None
    assert one(one(document.message).document).file_name == "tai_lieu.pdf"
    ids = [u.update_id for u in (command, contact, edited, *kinds, location, document)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    with pytest.raises(ValueError, match="no bot message"):
        fake.callback_update(CHAT, "menu:ask")
    stale = parse(fake.callback_update(CHAT, "old", message_id=5))
    assert stale.callback_query is not None and stale.callback_query.data == "old"


async def test_wait_for_messages_times_out_with_what_it_saw() -> None:
    fake = FakeTelegram()
    with pytest.raises(AssertionError, match=r"expected 1 bot message\(s\) in chat 42 within 0.1s, got 0"):
        await fake.wait_for_messages(CHAT, 1, timeout=0.1)
