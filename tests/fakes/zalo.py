"""A local fake of the Zalo Bot Platform API for end-to-end tests of the Zalo channel.

`FakeZalo` serves ``POST /bot{token}/{method}`` over real HTTP (uvicorn in the test's event loop),
so the bot under test runs its own httpx code path. Tests queue updates (`send_text`,
`send_image`, `send_raw`, ...), let the bot fetch them with ``getUpdates`` and then inspect what the
bot did (`calls`, `messages`, `webhook`).

The shapes follow the Zalo Bot Platform documentation (see ``shared/platforms.md`` section 1):
the envelope ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description"}`` with
the same HTTP status; hex-string ids; dates in milliseconds; ``getUpdates`` long-polls and returns
*one* update, or HTTP 408 "Request timeout" when none arrived in time; no buttons.

What the fake refuses, as the real API does or plausibly does: a wrong token (401), an unknown
method (404), missing or ill-typed parameters, parameters a method does not take (400, stricter
than documented, to catch e.g. a ``reply_markup`` the platform does not have), text outside 1-2000
characters, a chat that never wrote to the bot, a webhook URL that is not public HTTPS, a secret
token outside 8-256 characters, and ``getUpdates`` while a webhook is set (409).

Failure injection: `fail_next(method, code)`.
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import itertools
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.server import FakeServer

JSONDict = dict[str, Any]
Handler = Callable[[JSONDict, Request], Awaitable[Any]]

SECRET_HEADER = "X-Bot-Api-Secret-Token"
DEFAULT_DISPLAY_NAME = "Người dùng"
MAX_TEXT_LENGTH = 2000
SECRET_LENGTHS = range(8, 257)
DEFAULT_POLL_TIMEOUT = 30.0
NO_RESULT = object()  # a method whose answer is just {"ok": true}

TEXT_EVENT = "message.text.received"
IMAGE_EVENT = "message.image.received"
STICKER_EVENT = "message.sticker.received"
VOICE_EVENT = "message.voice.received"
UNSUPPORTED_EVENT = "message.unsupported.received"

# Parameters each method takes: name -> required.
_PARAMS: dict[str, dict[str, bool]] = {
    "getMe": {},
    "getUpdates": {"timeout": False},
    "setWebhook": {"url": True, "secret_token": True},
    "deleteWebhook": {},
    "getWebhookInfo": {},
    "sendMessage": {"chat_id": True, "text": True, "parse_mode": False, "text_styles": False},
    "sendPhoto": {"chat_id": True, "photo": True, "caption": False},
    "sendSticker": {"chat_id": True, "sticker": True},
    "sendChatAction": {"chat_id": True, "action": True},
}
PARSE_MODES = frozenset({"markdown", "html"})
CHAT_ACTIONS = frozenset({"typing", "upload_photo"})


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """A refusal, rendered as the error envelope with HTTP status = error_code."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description

    def response(self) -> JSONResponse:
        body = {"ok": False, "error_code": self.code, "description": self.description}
        return JSONResponse(body, status_code=self.code)


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


# --------------------------------------------------------------------------- update builders


def now_ms() -> int:
    """Unix time in milliseconds, the unit of every Zalo date."""
    return int(time.time() * 1000)


def make_update(
    chat_id: str,
    event_name: str = TEXT_EVENT,
    *,
    text: str | None = None,
    display_name: str = DEFAULT_DISPLAY_NAME,
    message_id: str = "0" * 20,
    **fields: Any,
) -> JSONDict:
    """One update as getUpdates returns it inside the envelope (and a webhook receives it)."""
    message: JSONDict = {
        "from": {"id": chat_id, "display_name": display_name, "is_bot": False},
        "chat": {"id": chat_id, "chat_type": "PRIVATE"},
        "message_id": message_id,
        "date": now_ms(),
        **fields,
    }
    if text is not None:
        message["text"] = text
    return {"event_name": event_name, "message": message}


async def post_webhook(
    url: str,
    update: object,
    secret: str | None,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    envelope: bool = True,
    timeout: float = 10.0,
) -> httpx.Response:
    """POST an update to a bot's webhook the way Zalo does: the envelope plus the secret header."""
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    body = {"ok": True, "result": update} if envelope else update
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
        return await client.post(url, json=body, headers=headers)


# --------------------------------------------------------------------------- request parsing


async def read_params(request: Request) -> JSONDict:
    """The JSON object body, or form fields (python-zalo-bot posts urlencoded forms)."""
    body = await request.body()
    if not body:
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        decoded = json.loads(body)
    except ValueError:
        raise bad_request("can't parse JSON body") from None
    if not isinstance(decoded, dict):
        raise bad_request("JSON body must be an object")
    return decoded


def check_params(method: str, params: JSONDict) -> None:
    allowed = _PARAMS[method]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise bad_request(f"unknown parameter {unknown[0]}")
    for name, required in allowed.items():
        if required and name not in params:
            raise bad_request(f"{name} is required")


def _text(params: JSONDict, name: str, *, required: bool = True) -> str | None:
    value = params.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TEXT_LENGTH:
        raise bad_request(f"{name} must be a string of 1-{MAX_TEXT_LENGTH} characters")
    return value


def _seconds(value: object) -> float:
    """getUpdates' timeout: a number, or a string of digits (the docs call it a String)."""
    if isinstance(value, bool):
        raise bad_request("timeout must be a number")
    if isinstance(value, int | float):
        return max(float(value), 0.0)
    if isinstance(value, str) and value.strip().isdigit():
        return float(value)
    raise bad_request("timeout must be a number")


def _public_https(url: object) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https" or not host or host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    return address.is_global


async def _disconnected(request: Request) -> None:
    """Return when the client closes the connection (the body has already been read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@dataclass(frozen=True)
class WebhookConfig:
    """What the bot registered with setWebhook."""

    url: str
    secret_token: str
    updated_at: int


# --------------------------------------------------------------------------- the fake


class FakeZalo(FakeServer):
    """An in-process Zalo Bot API server with an update queue and a record of what the bot did."""

    def __init__(
        self, token: str = "1459232241454765289:fake-zalo-secret", account_name: str = "bot.FakeKhuyenCong"
    ) -> None:
        self.token = token
        self.bot_id = token.split(":", 1)[0]
        self.account_name = account_name
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["POST"])])
        # base_url is the value for ZALO_API_BASE_URL; the client appends /bot{token}/{method}.
        super().__init__(self.app, "FakeZalo")
        # What the bot did.
        self.calls: list[tuple[str, JSONDict]] = []
        self.webhook: WebhookConfig | None = None
        # Internal state.
        self._ids = itertools.count(1)
        self._queue: list[object] = []
        self._chats: dict[str, str] = {}
        self._log: dict[str, list[JSONDict]] = defaultdict(list)
        self._failures: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self._handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendSticker": self._send_sticker,
            "sendChatAction": self._send_chat_action,
        }

    # ----------------------------------------------------------------- the HTTP endpoint

    async def _endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return ApiError(401, "Unauthorized").response()
        method = request.path_params["method"]
        handler = self._handlers.get(method)
        if handler is None:
            return ApiError(404, "Not Found").response()
        try:
            params = await read_params(request)
            self.calls.append((method, copy.deepcopy(params)))
            self._injected_failure(method)
            check_params(method, params)
            result = await handler(params, request)
        except ApiError as error:
            return error.response()
        body: JSONDict = {"ok": True}
        if result is not NO_RESULT:
            body["result"] = result
        return JSONResponse(body)

    def _injected_failure(self, method: str) -> None:
        if self._failures[method]:
            code, description = self._failures[method].pop(0)
            raise ApiError(code, description)

    # ----------------------------------------------------------------- waking waiters

    # ----------------------------------------------------------------- queueing updates

    def _next_id(self) -> str:
        """A 20-hex-digit id like Zalo's message ids."""
        return f"{next(self._ids):020x}"

    def make_update(
        self,
        chat_id: str,
        event_name: str = TEXT_EVENT,
        *,
        text: str | None = None,
        display_name: str = DEFAULT_DISPLAY_NAME,
        **fields: Any,
    ) -> JSONDict:
        """An update from this user (who thereby becomes a chat the bot may write to)."""
        self._chats[chat_id] = display_name
        return make_update(
            chat_id, event_name, text=text, display_name=display_name, message_id=self._next_id(), **fields
        )

    def send_raw(self, update: object) -> None:
        """Queue anything as the next getUpdates result: unknown events, empty or malformed updates."""
        self._queue.append(copy.deepcopy(update))
        self._wake()

    def send_text(self, chat_id: str, text: str, display_name: str = DEFAULT_DISPLAY_NAME) -> JSONDict:
        update = self.make_update(chat_id, TEXT_EVENT, text=text, display_name=display_name)
        self.send_raw(update)
        return update

    def send_image(self, chat_id: str) -> JSONDict:
        update = self.make_update(chat_id, IMAGE_EVENT, photo_url="https://photo.example/1.jpg")
        self.send_raw(update)
        return update

    def send_sticker(self, chat_id: str) -> JSONDict:
        update = self.make_update(chat_id, STICKER_EVENT, sticker="bfe458bf64fa8da4d4eb")
        self.send_raw(update)
        return update

    def send_voice(self, chat_id: str) -> JSONDict:
        update = self.make_update(chat_id, VOICE_EVENT, url="https://voice.example/1.aac")
        self.send_raw(update)
        return update

    def send_unsupported(self, chat_id: str) -> JSONDict:
        update = self.make_update(chat_id, UNSUPPORTED_EVENT)
        self.send_raw(update)
        return update

    def fail_next(self, method: str, code: int, description: str = "Internal Server Error") -> None:
        """Refuse the next call to ``method`` with ``code`` (call again to queue more failures)."""
        self._failures[method].append((code, description))

    # ----------------------------------------------------------------- inspecting the bot

    @property
    def pending_updates(self) -> list[object]:
        """Updates queued and not yet fetched by getUpdates."""
        return copy.deepcopy(self._queue)

    def sent(self, chat_id: str) -> list[JSONDict]:
        """Everything the bot sent to the chat (sendMessage, sendPhoto, sendSticker), in order."""
        return copy.deepcopy(self._log.get(chat_id, []))

    def messages(self, chat_id: str) -> list[str]:
        """The texts the bot sent to the chat with sendMessage, in order."""
        return [entry["text"] for entry in self._log.get(chat_id, []) if entry["method"] == "sendMessage"]

    async def wait_for_messages(self, chat_id: str, count: int, timeout: float = 10.0) -> list[str]:
        """Wait until the chat has at least ``count`` bot messages in total; return them all."""
        if not await self._wait_until(lambda: len(self.messages(chat_id)) >= count, timeout):
            got = self.messages(chat_id)
            expected = f"expected {count} bot message(s) in chat {chat_id} within {timeout}s"
            raise AssertionError(f"{expected}, got {len(got)}: {got!r}")
        return self.messages(chat_id)

    def calls_to(self, method: str) -> list[JSONDict]:
        """The params of every call to ``method``, in order."""
        return [params for name, params in self.calls if name == method]

    # ----------------------------------------------------------------- methods: bot and updates

    async def _get_me(self, params: JSONDict, request: Request) -> JSONDict:
        return {
            "id": self.bot_id,
            "account_name": self.account_name,
            "account_type": "BASIC",
            "can_join_groups": False,
        }

    async def _get_updates(self, params: JSONDict, request: Request) -> object:
        if self.webhook is not None:
            raise ApiError(409, "Conflict: a webhook is active; call deleteWebhook before getUpdates")
        timeout = _seconds(params.get("timeout", DEFAULT_POLL_TIMEOUT))
        take = asyncio.create_task(self._take(timeout))
        gone = asyncio.create_task(_disconnected(request))
        try:
            await asyncio.wait({take, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not take.done():
                take.cancel()
            update = await asyncio.gather(take, return_exceptions=True)
        result = update[0]
        if gone.done() and not gone.cancelled():
            # The client went away (e.g. the bot stopped): keep the update for the next poll.
            if not isinstance(result, BaseException) and result is not NO_RESULT:
                self._queue.insert(0, result)
            raise ApiError(499, "Client Closed Request")
        if isinstance(result, BaseException) or result is NO_RESULT:
            raise ApiError(408, "Request timeout")
        return result

    async def _take(self, timeout: float) -> object:
        """Wait for an update and take it off the queue; NO_RESULT when none came in time."""
        if not self._stopping:
            await self._wait_until(lambda: bool(self._queue) or self._stopping, timeout)
        return self._queue.pop(0) if self._queue else NO_RESULT

    async def _set_webhook(self, params: JSONDict, request: Request) -> JSONDict:
        url, secret = params["url"], params["secret_token"]
        if not _public_https(url):
            raise bad_request("url must be a public HTTPS URL")
        if not isinstance(secret, str) or len(secret) not in SECRET_LENGTHS:
            raise bad_request("secret_token must be 8-256 characters")
        self.webhook = WebhookConfig(url, secret, now_ms())
        return {"url": url, "updated_at": self.webhook.updated_at}

    async def _delete_webhook(self, params: JSONDict, request: Request) -> JSONDict:
        self.webhook = None
        return {"url": "", "updated_at": now_ms()}

    async def _get_webhook_info(self, params: JSONDict, request: Request) -> JSONDict:
        if self.webhook is None:
            return {"url": "", "updated_at": now_ms()}
        return {"url": self.webhook.url, "updated_at": self.webhook.updated_at}

    # ----------------------------------------------------------------- methods: sending

    def _target_chat(self, params: JSONDict) -> str:
        chat_id = params["chat_id"]
        if not isinstance(chat_id, str) or not chat_id:
            raise bad_request("chat_id must be a non-empty string")
        if chat_id not in self._chats:
            raise bad_request("chat not found")
        return chat_id

    def _record(self, chat_id: str, method: str, content: JSONDict) -> JSONDict:
        result = {"message_id": self._next_id(), "date": now_ms()}
        self._log[chat_id].append({"method": method, **content, **result, "at": time.time()})
        self._wake()
        return result

    async def _send_message(self, params: JSONDict, request: Request) -> JSONDict:
        chat_id = self._target_chat(params)
        text = _text(params, "text")
        if params.get("parse_mode") is not None and params["parse_mode"] not in PARSE_MODES:
            raise bad_request("parse_mode must be markdown or html")
        return self._record(chat_id, "sendMessage", {"text": text})

    async def _send_photo(self, params: JSONDict, request: Request) -> JSONDict:
        chat_id = self._target_chat(params)
        photo = params["photo"]
        if not isinstance(photo, str) or urlsplit(photo).scheme not in ("http", "https"):
            raise bad_request("photo must be a URL")
        caption = _text(params, "caption", required=False)
        return self._record(chat_id, "sendPhoto", {"photo": photo, "caption": caption})

    async def _send_sticker(self, params: JSONDict, request: Request) -> JSONDict:
        chat_id = self._target_chat(params)
        sticker = params["sticker"]
        if not isinstance(sticker, str) or not sticker:
            raise bad_request("sticker must be a sticker id")
        return self._record(chat_id, "sendSticker", {"sticker": sticker})

    async def _send_chat_action(self, params: JSONDict, request: Request) -> object:
        self._target_chat(params)
        if params["action"] not in CHAT_ACTIONS:
            raise bad_request("action must be typing or upload_photo")
        return NO_RESULT
