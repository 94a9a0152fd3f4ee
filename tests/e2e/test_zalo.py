"""Zalo end to end: the real ZaloChannel polling the local fake Zalo Bot API over HTTP.

Zalo has no buttons, so every menu arrives as a numbered list and the user answers by typing a
number or the option's words.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import col, select

from bot.channels.plaintext import html_to_text
from bot.channels.zalo import SECRET_HEADER, ZaloChannel, ZaloError, render_parts, to_incoming
from bot.settings import Settings
from handlers.texts import Texts
from handlers.types import Button, Kind, Reply
from storage.models import OutboxMessage, saved_id
from storage.repositories import Repos
from tests.e2e.conftest import RunningBot, conversation
from tests.fakes.zalo import TEXT_EVENT, FakeZalo, make_update, post_webhook
from tests.support.checks import one

CHAT = "6ede9afa66b88fe6d6a9"
MENU_KEYS = ["browse", "eligibility", "apply", "reminders", "ask_staff"]
TAG = re.compile(r"</?[a-z][a-z0-9-]*(\s[^>]*)?>", re.IGNORECASE)
ENTITY = re.compile(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", re.IGNORECASE)
WEBHOOK_URL = "https://bot.example.org/webhook/zalo"
WEBHOOK_SECRET = "s3cret-token_123"
TEXTS = Texts()


# --------------------------------------------------------------------------- fixtures


def zalo_settings(fake: FakeZalo, database_url: str, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,
        zalo_bot_token=SecretStr(fake.token),
        zalo_api_base_url=fake.base_url,
        database_url=database_url,
        **{"web_port": 0, **extra},  # a free port: 8080 may be taken by another run on this machine
    )


class ZaloBot(RunningBot):
    """The bot process on Zalo (``bot.app.Runner``: inbox, dialogue, outbox); restartable."""

    @property
    def channel(self) -> ZaloChannel:
        assert self.runner.zalo is not None
        return self.runner.zalo

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every stored update is handled and every queued message sent."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            with self.services.db.session() as session:
                busy = (
                    Repos(session).inbox.waiting()
                    or session.exec(
                        select(OutboxMessage.id).where(col(OutboxMessage.status).in_(("pending", "sending")))
                    ).first()
                )
            if not busy:
                return
            assert asyncio.get_running_loop().time() < deadline, "the bot did not settle"
            await asyncio.sleep(0.02)


@pytest.fixture
async def zalo_bot(fake_zalo: FakeZalo, database_url: str) -> AsyncIterator[ZaloBot]:
    bot = ZaloBot(zalo_settings(fake_zalo, database_url))
    await bot.start()
    yield bot
    await bot.stop()


# --------------------------------------------------------------------------- helpers


async def exchange(fake: FakeZalo, bot: ZaloBot, act: Callable[[], object], chat: str = CHAT) -> list[str]:
    """Do ``act`` (queue an update) and return every message the bot sent in answer to it."""
    before = len(fake.messages(chat))
    act()
    await fake.wait_for_messages(chat, before + 1)
    await bot.settle()
    return fake.messages(chat)[before:]


async def say(fake: FakeZalo, bot: ZaloBot, text: str, chat: str = CHAT) -> list[str]:
    return await exchange(fake, bot, lambda: fake.send_text(chat, text), chat)


def main_menu_lines() -> list[str]:
    return [f"{i}. {TEXTS.labels['menu'][key]}" for i, key in enumerate(MENU_KEYS, 1)]


def hint(last: int) -> str:
    return TEXTS.label("plain_menu_hint").format(last=last)


def shows_main_menu(message: str) -> bool:
    return message.endswith("\n".join([*main_menu_lines(), hint(len(MENU_KEYS))]))


def assert_plain(messages: list[str]) -> None:
    for message in messages:
        assert 1 <= len(message) <= 2000
        assert not TAG.search(message), message
        assert not ENTITY.search(message), message


def pending(bot: ZaloBot, chat: str = CHAT) -> str | None:
    """The question the user is being asked."""
    return conversation(bot.services, "zalo", chat).data.get("pending")


def profile_of(bot: ZaloBot, chat: str = CHAT) -> tuple[str | None, str | None, str | None]:
    with bot.services.db.session() as session:
        repos = Repos(session)
        user = repos.users.find("zalo", chat)
        assert user is not None
        profile = one(repos.profiles.get(saved_id(user)))
        return profile.legal_form, profile.activity, profile.province


# --------------------------------------------------------------------------- conversations


async def test_start_shows_the_menu_as_a_numbered_list(fake_zalo: FakeZalo, zalo_bot: ZaloBot) -> None:
    replies = await exchange(fake_zalo, zalo_bot, lambda: fake_zalo.send_text(CHAT, "/start", "Lan"))
    assert "Lan" in replies[0]
    assert shows_main_menu(replies[-1])
    assert_plain(replies)
    assert fake_zalo.calls_to("deleteWebhook")  # polling starts by clearing any webhook
    with zalo_bot.services.db.session() as session:
        user = Repos(session).users.find("zalo", CHAT)
        assert user is not None and user.display_name == "Lan"
    other = "0a1b2c3d4e5f60718293"
    replies = await exchange(
        fake_zalo, zalo_bot, lambda: fake_zalo.send_text(other, "/start", "<i>Bé</i> & <b>"), other
    )
    assert "<i>Bé</i> & <b>" in replies[0]  # escaped by the templates, shown literally as plain text


async def test_typing_a_number_picks_the_menu_item(fake_zalo: FakeZalo, zalo_bot: ZaloBot) -> None:
    await say(fake_zalo, zalo_bot, "/start")
    replies = await say(fake_zalo, zalo_bot, "2")  # the second item: the eligibility check
    text = "\n".join(replies)
    assert pending(zalo_bot) == "legal_form"
    first_option = TEXTS.questions["legal_form"]["options"][0]["label"]
    assert f"\n1. {first_option}\n" in text
    assert replies[-1].endswith(hint(8))
    assert_plain(replies)


async def test_diacritic_free_question(fake_zalo: FakeZalo, zalo_bot: ZaloBot) -> None:
    replies = await say(fake_zalo, zalo_bot, "mua may say nong san duoc ho tro bao nhieu")
    assert "300 triệu" in "\n".join(replies)
    assert_plain(replies)


async def test_whole_eligibility_check_by_typing(fake_zalo: FakeZalo, zalo_bot: ZaloBot) -> None:
    await say(fake_zalo, zalo_bot, "/start")
    for typed, asked_next in (
        ("2", "legal_form"),  # the second menu item: the eligibility check
        ("hkd", "activity"),
        ("san xuat", "province"),
        ("nghe an", "difficult_area"),
        ("co", "new_to_area"),  # "Có", typed without accents
        ("2", "investment_cost_vnd"),  # "Không", by number
    ):
        await say(fake_zalo, zalo_bot, typed)
        assert pending(zalo_bot) == asked_next, typed
    replies = await say(fake_zalo, zalo_bot, "500 trieu")
    assert conversation(zalo_bot.services, "zalo", CHAT).step == "results"
    assert "triệu đồng" in "\n".join(replies)  # the amounts
    assert_plain(replies)
    assert profile_of(zalo_bot) == ("household_business", "production", "Nghệ An")


async def test_restart_in_the_middle_of_the_check(fake_zalo: FakeZalo, zalo_bot: ZaloBot) -> None:
    await say(fake_zalo, zalo_bot, "/start")
    await say(fake_zalo, zalo_bot, "2")
    await say(fake_zalo, zalo_bot, "htx")
    assert pending(zalo_bot) == "activity"

    await zalo_bot.restart()  # new services, a new channel and a new client on the same database

    await say(fake_zalo, zalo_bot, "1")  # "Trực tiếp sản xuất", from the remembered menu
    assert pending(zalo_bot) == "province"
    await say(fake_zalo, zalo_bot, "Sơn La")
    assert profile_of(zalo_bot) == ("coop", "production", "Sơn La")


# --------------------------------------------------------------------------- odd input


MEDIA_SENDERS: list[Callable[[FakeZalo, str], object]] = [
    FakeZalo.send_image,
    FakeZalo.send_sticker,
    FakeZalo.send_voice,
    FakeZalo.send_unsupported,
    lambda fake, chat: fake.send_raw(fake.make_update(chat, "message.link.received")),
    lambda fake, chat: fake.send_raw(fake.make_update(chat, "message.hologram.received")),  # unknown
]


async def test_media_and_unknown_events_get_a_polite_answer(fake_zalo: FakeZalo, zalo_bot: ZaloBot) -> None:
    answers = []
    for send in MEDIA_SENDERS:
        replies = await exchange(fake_zalo, zalo_bot, partial(send, fake_zalo, CHAT))
        assert replies[0].startswith("Dạ")
        assert shows_main_menu(replies[-1])
        assert_plain(replies)
        answers.append(replies[0])
    assert len(set(answers[:4])) == 4  # each kind gets its own explanation
    assert answers[-1] == answers[-2] == answers[3]  # link and unknown: "cannot read this kind"


MALFORMED: list[object] = [
    {},
    None,
    "garbage",
    [1, 2, 3],
    {"event_name": "message.unsupported.received"},  # documented: may come without a message
    {"event_name": TEXT_EVENT, "message": None},
    {"event_name": TEXT_EVENT, "message": {"text": "hi"}},
    {"event_name": TEXT_EVENT, "message": {"chat": {}, "text": "hi"}},
    {"event_name": TEXT_EVENT, "message": {"chat": {"id": 12345}, "text": "hi"}},
    {"event_name": TEXT_EVENT, "message": {"chat": {"id": ""}, "text": "hi"}},
    {"event_name": TEXT_EVENT, "message": {"chat": {"id": "a" * 65}, "text": "hi"}},
    {"event_name": TEXT_EVENT, "message": {"chat": {"id": CHAT}}},
    {"event_name": TEXT_EVENT, "message": {"chat": {"id": CHAT}, "text": ["hi"]}},
    {"event_name": 7, "message": {"chat": {"id": CHAT}, "text": "hi"}},
    {"message": {"chat": {"id": CHAT}, "text": "hi"}},
    {"event_name": TEXT_EVENT, "message": {"chat": {"id": CHAT, "chat_type": "GROUP"}, "text": "hi"}},
    {
        "event_name": TEXT_EVENT,
        "message": {"from": {"id": CHAT, "is_bot": True}, "chat": {"id": CHAT}, "text": "hi"},
    },
]


@pytest.mark.parametrize("update", MALFORMED)
def test_to_incoming_ignores_malformed_updates(update: object) -> None:
    assert to_incoming(update) is None


def test_to_incoming_reads_text_commands_and_media() -> None:
    text = to_incoming(make_update(CHAT, text="Xin chào", display_name=" Ted "))
    assert text is not None
    assert (text.channel, text.chat_id, text.kind, text.text, text.user_name) == (
        "zalo",
        CHAT,
        Kind.TEXT,
        "Xin chào",
        "Ted",
    )
    command = to_incoming({"ok": True, "result": make_update(CHAT, text="/start abc")})  # an envelope
    assert command is not None and (command.kind, command.command, command.text) == (
        Kind.COMMAND,
        "start",
        "abc",
    )
    for event, media in [
        ("message.image.received", "photo"),
        ("message.sticker.received", "sticker"),
        ("message.voice.received", "voice"),
        ("message.unsupported.received", "other"),
        ("message.link.received", "other"),
        ("bot.added.somewhere", "other"),
    ]:
        incoming = to_incoming(make_update(CHAT, event))
        assert incoming is not None and (incoming.kind, incoming.media) == (Kind.UNSUPPORTED, media)


async def test_malformed_updates_are_ignored_and_the_bot_keeps_answering(
    fake_zalo: FakeZalo, zalo_bot: ZaloBot
) -> None:
    for update in MALFORMED:
        fake_zalo.send_raw(update)
    replies = await say(fake_zalo, zalo_bot, "menu")
    assert len(replies) == 1 and shows_main_menu(replies[0])
    assert zalo_bot.channel.running
    assert fake_zalo.pending_updates == []


async def test_a_crash_in_the_dialogue_gets_a_polite_message(
    fake_zalo: FakeZalo, zalo_bot: ZaloBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(incoming: object, receipt: object = None) -> list[Reply]:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(zalo_bot.services.dialogue, "handle", broken)
    replies = await say(fake_zalo, zalo_bot, "hello")
    assert replies == [html_to_text(TEXTS.render("error"))]
    assert "Traceback" not in replies[0] and "fire" not in replies[0]


async def test_a_long_card_is_split_into_messages_of_at_most_2000_characters(
    fake_zalo: FakeZalo, zalo_bot: ZaloBot
) -> None:
    await say(fake_zalo, zalo_bot, "/tracuu")
    await say(fake_zalo, zalo_bot, "san pham tieu bieu")
    await say(fake_zalo, zalo_bot, "1")  # the national vote's card
    replies = await say(fake_zalo, zalo_bot, "3")  # its documents and steps: a page over 2,000 characters
    assert sum(len(r) for r in replies) > 2000, "the page is no longer long enough to test splitting"
    assert len(replies) >= 2
    assert_plain(replies)
    menu = replies[-1][replies[-1].rindex("1. ") :]  # the numbered menu, whole, comes last
    assert re.fullmatch(r"(\d+\. [^\n]+\n)+[^\n]+", menu) and menu.endswith(hint(menu.count("\n")))


async def test_long_replies_are_split_at_line_ends(
    fake_zalo: FakeZalo, zalo_bot: ZaloBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [f"<b>Line {i}</b> " + "word " * 30 + "&amp; 📚" for i in range(60)]
    long_reply = Reply("\n".join(lines), buttons=((Button("<i>First</i>", "m"), Button("Second", "h")),))
    monkeypatch.setattr(zalo_bot.services.dialogue, "_route", lambda ctx, incoming: [long_reply])
    replies = await say(fake_zalo, zalo_bot, "hello")
    assert len(replies) >= 5
    assert_plain(replies)
    assert replies == render_parts(long_reply, TEXTS.label("plain_menu_hint"))
    sent_lines = "\n".join(replies).split("\n")
    assert sent_lines[:60] == [html_to_text(line).rstrip() for line in lines]
    assert replies[-1].endswith(f"1. First\n2. Second\n{hint(2)}")
    assert all(len(r.encode("utf-16-le")) // 2 <= 2000 for r in replies)


def test_render_has_no_tags_and_a_numbered_menu() -> None:
    reply = Reply("<b>Hello</b> &amp; welcome", buttons=((Button("<i>A</i>", "m"),), (Button("B", "h"),)))
    menu_hint = TEXTS.label("plain_menu_hint")
    assert render_parts(reply, menu_hint) == [f"Hello & welcome\n\n1. A\n2. B\n{hint(2)}"]
    assert render_parts(Reply(""), menu_hint) == []


# --------------------------------------------------------------------------- API failures


async def test_polling_backs_off_after_an_error(fake_zalo: FakeZalo, zalo_bot: ZaloBot) -> None:
    fake_zalo.fail_next("getUpdates", 502, "Bad Gateway")
    fake_zalo.send_raw({})  # ends the poll in flight; the next one fails, then the bot waits 1 s
    await asyncio.sleep(0.2)
    replies = await say(fake_zalo, zalo_bot, "menu")
    assert shows_main_menu(replies[-1])
    assert zalo_bot.channel.running


async def test_a_refused_message_is_retried(fake_zalo: FakeZalo, zalo_bot: ZaloBot) -> None:
    fake_zalo.fail_next("sendMessage", 429, "Too Many Requests")
    replies = await say(fake_zalo, zalo_bot, "menu")
    assert len(replies) == 1 and shows_main_menu(replies[0])
    assert len(fake_zalo.calls_to("sendMessage")) == 2


async def test_a_rejected_token_stops_polling(fake_zalo: FakeZalo, zalo_bot: ZaloBot) -> None:
    fake_zalo.token = "1:revoked"
    fake_zalo.send_raw({})  # ends the poll in flight; the next one gets 401
    for _ in range(50):
        if not zalo_bot.channel.running:
            break
        await asyncio.sleep(0.02)
    assert not zalo_bot.channel.running


async def test_a_wrong_token_fails_at_start(fake_zalo: FakeZalo, database_url: str) -> None:
    settings = zalo_settings(fake_zalo, database_url).model_copy(update={"zalo_bot_token": None})
    with pytest.raises(ValueError):
        ZaloChannel(settings, None, TEXTS, None)  # type: ignore[arg-type]
    settings = Settings(
        _env_file=None, zalo_bot_token=SecretStr("1:wrong"), zalo_api_base_url=fake_zalo.base_url
    )
    channel = ZaloChannel(settings, None, TEXTS, None)  # type: ignore[arg-type]
    with pytest.raises(ZaloError) as error:
        await channel.start()
    assert error.value.code == 401
    await channel.stop()


# --------------------------------------------------------------------------- webhook mode


async def test_webhook_mode_checks_the_secret(fake_zalo: FakeZalo, database_url: str) -> None:
    settings = zalo_settings(
        fake_zalo, database_url, zalo_webhook_url=WEBHOOK_URL, zalo_webhook_secret=WEBHOOK_SECRET
    )
    bot = ZaloBot(settings)
    await bot.start()
    try:
        channel = bot.channel
        assert channel.webhook_mode and channel.running
        assert fake_zalo.webhook is not None
        assert (fake_zalo.webhook.url, fake_zalo.webhook.secret_token) == (WEBHOOK_URL, WEBHOOK_SECRET)
        assert fake_zalo.calls_to("getUpdates") == []

        transport = httpx.ASGITransport(app=bot.runner.web_app)
        url = "http://testserver/webhook/zalo"
        update = fake_zalo.make_update(CHAT, text="/start")
        for secret in ("wrong-secret", None, "", WEBHOOK_SECRET + "x"):
            response = await post_webhook(url, update, secret, transport)
            assert response.status_code == 403
        await bot.settle()
        assert fake_zalo.messages(CHAT) == []
        with bot.services.db.session() as session:
            assert Repos(session).users.find("zalo", CHAT) is None  # nothing changed

        response = await post_webhook(url, update, WEBHOOK_SECRET, transport)
        assert response.status_code == 200
        replies = await fake_zalo.wait_for_messages(CHAT, 1)
        await bot.settle()
        assert shows_main_menu(fake_zalo.messages(CHAT)[-1])
        assert_plain(replies)
        again = await post_webhook(url, update, WEBHOOK_SECRET, transport)  # the same message again
        assert again.status_code == 200
        await bot.settle()
        assert len(fake_zalo.messages(CHAT)) == len(replies)  # acknowledged, not answered twice

        bare = fake_zalo.make_update(CHAT, text="menu")  # a body without the envelope works too
        response = await post_webhook(url, bare, WEBHOOK_SECRET, transport, envelope=False)
        assert response.status_code == 200
        await fake_zalo.wait_for_messages(CHAT, len(replies) + 1)
        await bot.settle()
        assert shows_main_menu(fake_zalo.messages(CHAT)[-1])

        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            headers = {SECRET_HEADER: WEBHOOK_SECRET}
            for body in (b"not json", b"[1, 2]", b'{"ok": true}', b'{"ok": true, "result": 5}'):
                garbage = await client.post("/webhook/zalo", content=body, headers=headers)
                assert garbage.status_code == 400
            wrong = await client.post("/webhook/zalo", content=b"not json", headers={SECRET_HEADER: "x"})
            assert wrong.status_code == 403  # the secret is checked before the body is looked at
            huge = await client.post("/webhook/zalo", content=b"{" + b" " * 1_000_001 + b"}", headers=headers)
            assert huge.status_code == 413
    finally:
        await bot.stop()


async def test_webhook_needs_a_secret(fake_zalo: FakeZalo, database_url: str) -> None:
    with pytest.raises(ValueError):
        ZaloChannel(
            zalo_settings(fake_zalo, database_url, zalo_webhook_url=WEBHOOK_URL),
            None,  # type: ignore[arg-type]
            TEXTS,
            None,  # type: ignore[arg-type]
        )
    polling = ZaloChannel(zalo_settings(fake_zalo, database_url), None, TEXTS, None)  # type: ignore[arg-type]
    assert not polling.secret_ok(None) and not polling.secret_ok("")  # no secret configured: refused
    await polling.stop()
