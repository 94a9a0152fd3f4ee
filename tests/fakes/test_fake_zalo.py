"""The fake Zalo Bot API itself: envelope and error shapes, one update per getUpdates, 408 when
nothing arrives, the 2,000-character limit, tokens, and webhook/polling exclusion."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.channels.zalo import ZaloClient, ZaloError

from .zalo import SECRET_HEADER, TEXT_EVENT, FakeZalo, post_webhook

CHAT = "6ede9afa66b88fe6d6a9"
TIMEOUT_BODY = {"ok": False, "error_code": 408, "description": "Request timeout"}


@pytest.fixture
def fake(fake_zalo: FakeZalo) -> FakeZalo:
    return fake_zalo


@pytest.fixture
async def client(fake: FakeZalo) -> AsyncIterator[ZaloClient]:
    async with ZaloClient(fake.token, fake.base_url) as zalo:
        yield zalo


async def call(fake: FakeZalo, method: str, body: object = None, token: str | None = None) -> httpx.Response:
    """A raw JSON POST, to see exactly what the fake answers."""
    url = f"{fake.base_url}/bot{token or fake.token}/{method}"
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, json={} if body is None else body)


async def test_get_me_uses_the_envelope(fake: FakeZalo) -> None:
    response = await call(fake, "getMe")
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "result": {
            "id": fake.bot_id,
            "account_name": fake.account_name,
            "account_type": "BASIC",
            "can_join_groups": False,
        },
    }


async def test_get_updates_answers_408_when_nothing_arrives(fake: FakeZalo) -> None:
    response = await call(fake, "getUpdates", {"timeout": 0})
    assert response.status_code == 408 and response.json() == TIMEOUT_BODY
    started = time.monotonic()
    response = await call(fake, "getUpdates", {"timeout": 0.3})
    assert response.status_code == 408
    assert time.monotonic() - started >= 0.25  # it really long-polls


async def test_get_updates_returns_one_update_per_call(fake: FakeZalo, client: ZaloClient) -> None:
    fake.send_text(CHAT, "một", display_name="Lan")
    fake.send_image(CHAT)
    first = await client.get_updates(timeout=0)
    second = await client.get_updates(timeout=0)
    assert await client.get_updates(timeout=0) is None
    assert first is not None and second is not None
    assert first["event_name"] == TEXT_EVENT
    message = first["message"]
    assert message["text"] == "một"
    assert message["from"] == {"id": CHAT, "display_name": "Lan", "is_bot": False}
    assert message["chat"] == {"id": CHAT, "chat_type": "PRIVATE"}
    assert len(message["message_id"]) == 20 and int(message["message_id"], 16)
    assert message["date"] > 1_700_000_000_000  # milliseconds
    assert second["event_name"] == "message.image.received"


async def test_a_long_poll_wakes_up_when_an_update_arrives(fake: FakeZalo, client: ZaloClient) -> None:
    poll = asyncio.create_task(client.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    fake.send_text(CHAT, "hello")
    update = await poll
    assert update is not None and update["message"]["text"] == "hello"
    assert time.monotonic() - started < 1


async def test_an_abandoned_poll_does_not_swallow_the_next_update(fake: FakeZalo, client: ZaloClient) -> None:
    poll = asyncio.create_task(client.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    poll.cancel()  # the bot stops while its request is waiting
    await asyncio.gather(poll, return_exceptions=True)
    await asyncio.sleep(0.1)
    fake.send_text(CHAT, "still here")
    update = await client.get_updates(timeout=2)
    assert update is not None and update["message"]["text"] == "still here"


async def test_send_raw_queues_anything(fake: FakeZalo, client: ZaloClient) -> None:
    fake.send_raw({"event_name": "message.location.received"})
    fake.send_raw({})
    assert await client.get_updates(timeout=0) == {"event_name": "message.location.received"}
    assert await client.get_updates(timeout=0) == {}


async def test_send_message_allows_1_to_2000_characters(fake: FakeZalo, client: ZaloClient) -> None:
    fake.send_text(CHAT, "hi")
    result = await client.send_message(CHAT, "ạ" * 2000)
    assert len(result["message_id"]) == 20 and result["date"] > 1_700_000_000_000
    for text in ("x" * 2001, ""):
        response = await call(fake, "sendMessage", {"chat_id": CHAT, "text": text})
        assert response.status_code == 400 and response.json()["error_code"] == 400
    with pytest.raises(ValueError):
        await client.send_message(CHAT, "x" * 2001)  # the client refuses before sending
    assert fake.messages(CHAT) == ["ạ" * 2000]


@pytest.mark.parametrize(
    "body",
    [
        {"chat_id": CHAT},
        {"text": "hi"},
        {"chat_id": 42, "text": "hi"},
        {"chat_id": "0123456789abcdef0123", "text": "hi"},  # never wrote to the bot
        {"chat_id": CHAT, "text": "hi", "reply_markup": {"inline_keyboard": []}},
        {"chat_id": CHAT, "text": "hi", "parse_mode": "HTML5"},
    ],
)
async def test_send_message_refuses_bad_parameters(fake: FakeZalo, body: dict) -> None:
    fake.send_text(CHAT, "hi")
    response = await call(fake, "sendMessage", body)
    assert response.status_code == 400
    assert response.json()["ok"] is False
    assert fake.messages(CHAT) == []


async def test_send_photo_and_chat_action(fake: FakeZalo) -> None:
    fake.send_text(CHAT, "hi")
    await call(fake, "sendPhoto", {"chat_id": CHAT, "photo": "https://example.org/a.jpg", "caption": "A"})
    assert fake.sent(CHAT)[0]["photo"] == "https://example.org/a.jpg"
    response = await call(fake, "sendChatAction", {"chat_id": CHAT, "action": "typing"})
    assert response.json() == {"ok": True}


async def test_wrong_token_and_unknown_method(fake: FakeZalo) -> None:
    response = await call(fake, "getMe", token="1:wrong")
    assert response.status_code == 401 and response.json()["error_code"] == 401
    response = await call(fake, "sendKeyboard")
    assert response.status_code == 404 and response.json()["error_code"] == 404
    async with ZaloClient("1:wrong", fake.base_url) as wrong:
        with pytest.raises(ZaloError) as error:
            await wrong.get_me()
    assert error.value.code == 401


async def test_form_encoded_requests_work_too(fake: FakeZalo) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{fake.base_url}/bot{fake.token}/getUpdates", data={"timeout": "0"})
    assert response.status_code == 408


async def test_webhook_and_polling_exclude_each_other(fake: FakeZalo, client: ZaloClient) -> None:
    for url, secret in [
        ("http://bot.example.org/webhook/zalo", "s3cret-token"),
        ("https://localhost/webhook/zalo", "s3cret-token"),
        ("https://192.168.1.5/webhook/zalo", "s3cret-token"),
        ("https://bot.example.org/webhook/zalo", "short"),
        ("https://bot.example.org/webhook/zalo", "x" * 257),
    ]:
        with pytest.raises(ZaloError) as error:
            await client.set_webhook(url, secret)
        assert error.value.code == 400
    assert fake.webhook is None

    result = await client.set_webhook("https://bot.example.org/webhook/zalo", "s3cret-token")
    assert result["url"] == "https://bot.example.org/webhook/zalo"
    assert fake.webhook is not None and fake.webhook.secret_token == "s3cret-token"
    info = (await call(fake, "getWebhookInfo")).json()["result"]
    assert info["url"] == "https://bot.example.org/webhook/zalo" and "secret_token" not in info
    with pytest.raises(ZaloError) as error:
        await client.get_updates(timeout=0)
    assert error.value.code == 409

    assert (await client.delete_webhook())["url"] == ""
    assert fake.webhook is None
    assert await client.get_updates(timeout=0) is None


async def test_fail_next_injects_one_failure(fake: FakeZalo, client: ZaloClient) -> None:
    fake.fail_next("getMe", 502, "Bad Gateway")
    with pytest.raises(ZaloError) as error:
        await client.get_me()
    assert (error.value.code, error.value.description) == (502, "getMe: Bad Gateway")
    assert (await client.get_me())["account_name"] == fake.account_name


async def test_post_webhook_sends_the_envelope_and_the_secret(fake: FakeZalo) -> None:
    seen: list[tuple[str | None, object]] = []

    async def webhook(request: Request) -> JSONResponse:
        seen.append((request.headers.get(SECRET_HEADER), await request.json()))
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/webhook/zalo", webhook, methods=["POST"])])
    update = fake.make_update(CHAT, text="hi")
    transport = httpx.ASGITransport(app=app)
    response = await post_webhook("http://testserver/webhook/zalo", update, "s3cret-token", transport)
    assert response.status_code == 200
    await post_webhook("http://testserver/webhook/zalo", update, None, transport, envelope=False)
    assert seen == [("s3cret-token", {"ok": True, "result": update}), (None, update)]
