"""Zalo adapter on the Zalo Bot Platform API: updates in, the dialogue in a worker thread, replies out.

The Bot Platform (``{base}/bot{token}/{method}``, JSON in, ``{"ok", "result"}`` out) is close to
Telegram's Bot API but smaller: ids are hex strings, dates are in milliseconds, ``getUpdates`` returns
*one* update per call (HTTP 408 when nothing arrived), and there are no buttons. Replies are therefore
sent as plain text with the buttons as a numbered list; the dialogue remembers the last menu, so a
typed "2" or the option's words pick it.

Updates are stored in the inbox as they arrive (polling by default; webhook mode when
``ZALO_WEBHOOK_URL`` is set: the web app's ``/webhook/zalo`` route checks the secret, then stores),
and the inbox worker hands them to ``ZaloChannel.handle`` one chat at a time, in order. Replies go out
through the outbox over ``ZaloTransport``, within Zalo's own send budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

import httpx

from bot.channels.plaintext import html_to_text, numbered_menu, render, split_message
from bot.inbox import InboxWorker
from bot.outbox import Blocked, Pace, Permanent, RetryLater, Temporary
from bot.settings import Settings
from bot.typing import ChatActions
from handlers.dialogue import Dialogue
from handlers.texts import Texts
from handlers.types import Incoming, Kind, Receipt, Reply
from storage.models import InboxUpdate

log = logging.getLogger(__name__)

CHANNEL = "zalo"
SECRET_HEADER = "X-Bot-Api-Secret-Token"
DEFAULT_BASE_URL = "https://bot-api.zaloplatforms.com"
MAX_TEXT_LENGTH = 2000
MAX_CHAT_ID_LENGTH = 64  # users.external_id
SECRET_LENGTHS = range(8, 257)
POLL_TIMEOUT = 30.0
BACKOFF_START = 1.0
BACKOFF_MAX = 30.0

# Error codes with a meaning of their own. 0 means "no usable HTTP answer" (network error, garbage).
NO_ANSWER = 0
UNAUTHORIZED = 401
NOTHING_NEW = 408

TEXT_EVENT = "message.text.received"
_MEDIA_BY_EVENT = {
    "message.image.received": "photo",
    "message.sticker.received": "sticker",
    "message.voice.received": "voice",
}

JSONDict = dict[str, Any]


# --------------------------------------------------------------------------- the HTTP client


class ZaloError(Exception):
    """The API refused a call (``code`` = its error_code or HTTP status), or gave no usable answer."""

    def __init__(self, code: int, description: str = "") -> None:
        super().__init__(f"Zalo API error {code}: {description}" if description else f"Zalo API error {code}")
        self.code = code
        self.description = description


class ZaloClient:
    """A thin async client for ``POST {base_url}/bot{token}/{method}`` with JSON bodies.

    Every method checks the envelope's ``ok`` and raises ``ZaloError`` otherwise. The token is part
    of the URL, so neither URLs nor requests appear in errors or logs written here.
    """

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not token:
            raise ValueError("the Zalo bot token is empty")
        self._prefix = f"{base_url.rstrip('/')}/bot{token}"
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def __aenter__(self) -> ZaloClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def call(
        self, method: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Call ``method``; return the envelope's ``result`` (None when there is none)."""
        try:
            response = await self._http.post(
                f"{self._prefix}/{method}",
                json=dict(params or {}),
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx.HTTPError as error:
            raise ZaloError(NO_ANSWER, f"{method}: {type(error).__name__}") from error
        return _result(method, response)

    async def get_me(self) -> JSONDict:
        return await self.call("getMe")

    async def get_updates(self, timeout: float = POLL_TIMEOUT) -> JSONDict | None:
        """Wait up to ``timeout`` seconds for one update; None when nothing arrived (HTTP 408)."""
        seconds = max(int(timeout), 0)
        try:
            result = await self.call("getUpdates", {"timeout": seconds}, timeout=seconds + 10.0)
        except ZaloError as error:
            if error.code == NOTHING_NEW:
                return None
            raise
        if result is None or isinstance(result, dict):
            return result
        log.warning("Zalo getUpdates returned a %s instead of an update; ignored", type(result).__name__)
        return None

    async def set_webhook(self, url: str, secret_token: str) -> JSONDict:
        return await self.call("setWebhook", {"url": url, "secret_token": secret_token})

    async def delete_webhook(self) -> JSONDict:
        return await self.call("deleteWebhook")

    async def send_chat_action(self, chat_id: str, action: str = "typing") -> None:
        """Show "typing" (or "upload_photo") in the chat until the next message, for a few seconds."""
        await self.call("sendChatAction", {"chat_id": chat_id, "action": action})

    async def send_message(self, chat_id: str, text: str) -> JSONDict:
        """Send plain text (1-2000 characters; longer text is refused here, split it first)."""
        _check_text(text, "text")
        return await self.call("sendMessage", {"chat_id": chat_id, "text": text})


def _check_text(text: str, name: str) -> None:
    if not 1 <= len(text) <= MAX_TEXT_LENGTH:
        raise ValueError(f"Zalo {name} must be 1-{MAX_TEXT_LENGTH} characters, got {len(text)}")


def _result(method: str, response: httpx.Response) -> Any:
    """The ``result`` of an ``ok`` envelope; ZaloError for anything else."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("ok") is True:
        return body.get("result")
    code = body.get("error_code") if isinstance(body, dict) else None
    if not isinstance(code, int) or isinstance(code, bool):
        code = response.status_code if response.is_error else NO_ANSWER
    description = body.get("description") if isinstance(body, dict) else None
    if not isinstance(description, str):
        description = response.reason_phrase or "unexpected answer"
    raise ZaloError(code, f"{method}: {description}")


# --------------------------------------------------------------------------- updates


def unwrap(payload: object) -> object:
    """The update inside a ``{"ok": true, "result": {...}}`` envelope, or ``payload`` itself."""
    if isinstance(payload, dict) and "event_name" not in payload and isinstance(payload.get("result"), dict):
        return payload["result"]
    return payload


def to_incoming(update: object) -> Incoming | None:
    """The neutral event for a Zalo update; None for anything the bot cannot or should not answer.

    Text becomes text (or a command such as "/start"); images, stickers, voice and every other
    event with a message become ``Kind.UNSUPPORTED``. Malformed updates give None, never an error.
    """
    update = unwrap(update)
    if not isinstance(update, dict):
        return None
    event = update.get("event_name")
    message = update.get("message")
    if not isinstance(event, str) or not isinstance(message, dict):
        return None
    chat_id = _private_chat_id(message)
    sender = message.get("from")
    sender = sender if isinstance(sender, dict) else {}
    if chat_id is None or sender.get("is_bot") is True:
        return None
    name = sender.get("display_name")
    name = name.strip() if isinstance(name, str) else ""
    if event == TEXT_EVENT:
        text = message.get("text")
        if not isinstance(text, str):
            return None
        return Incoming.text_message(CHANNEL, chat_id, text, name)
    media = _MEDIA_BY_EVENT.get(event, "other")
    return Incoming(CHANNEL, chat_id, Kind.UNSUPPORTED, user_name=name, media=media)


def _private_chat_id(message: JSONDict) -> str | None:
    """The chat id (a non-empty string) of a private chat; None for groups or a missing id."""
    chat = message.get("chat")
    if not isinstance(chat, dict) or chat.get("chat_type", "PRIVATE") != "PRIVATE":
        return None
    chat_id = chat.get("id")
    if not isinstance(chat_id, str) or not chat_id.strip() or len(chat_id) > MAX_CHAT_ID_LENGTH:
        return None
    return chat_id


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int = MAX_TEXT_LENGTH) -> list[str]:
    """Non-blank parts of at most ``limit`` characters, counted in Python and in UTF-16 code units
    (emoji count twice in UTF-16; the platform's own count is undocumented, so both must fit)."""
    parts: list[str] = []
    for part in split_message(text, limit):
        if not part.strip():
            continue
        extra = _utf16_length(part) - len(part)
        if len(part) + extra <= limit:
            parts.append(part)
        else:
            # limit // 2 characters always fit, even when every one of them is an emoji.
            smaller = max(limit - extra, limit // 2)
            parts.extend(p for p in split_message(part, smaller) if p.strip())
    return parts


class ZaloChannel:
    """Connects the Zalo Bot Platform to the inbox (polling or the webhook route) and hands stored
    updates to the dialogue. Replies go out through the outbox over ``ZaloTransport``."""

    name = CHANNEL

    def __init__(
        self,
        settings: Settings,
        dialogue: Dialogue,
        texts: Texts,
        inbox: InboxWorker,
        *,
        client: ZaloClient | None = None,
        poll_timeout: float = POLL_TIMEOUT,
    ) -> None:
        token = settings.zalo_token()  # ValueError when it is not set
        secret = settings.zalo_webhook_secret.get_secret_value() if settings.zalo_webhook_secret else ""
        if settings.zalo_webhook_url and len(secret) not in SECRET_LENGTHS:
            raise ValueError("ZALO_WEBHOOK_URL needs ZALO_WEBHOOK_SECRET (8-256 characters)")
        self.settings = settings
        self.dialogue = dialogue
        self.texts = texts
        self.inbox = inbox
        self.poll_timeout = poll_timeout
        self._secret = secret
        self._owns_client = client is None
        self.client = client or ZaloClient(token, settings.zalo_api_base_url)
        self.typing = ChatActions(self._send_typing)
        self._poll_task: asyncio.Task[None] | None = None
        self._started = False

    @property
    def webhook_mode(self) -> bool:
        return bool(self.settings.zalo_webhook_url)

    @property
    def running(self) -> bool:
        """Started and still receiving updates (False once polling gave up on a rejected token)."""
        if not self._started:
            return False
        return self.webhook_mode or (self._poll_task is not None and not self._poll_task.done())

    # --- lifecycle ---

    async def start(self) -> None:
        """Check the token, then register the webhook or start polling (after deleteWebhook)."""
        if self._started:
            raise RuntimeError("the Zalo channel is already started")
        me = await self.client.get_me()
        if webhook_url := self.settings.zalo_webhook_url:  # webhook mode
            await self.client.set_webhook(webhook_url, self._secret)
        else:
            await self.client.delete_webhook()
            self._poll_task = asyncio.create_task(self._poll(), name="zalo-polling")
        self._started = True
        mode = "webhook" if self.webhook_mode else "polling"
        log.info(
            "Zalo started as %s (%s)", me.get("account_name", "?") if isinstance(me, dict) else "?", mode
        )

    async def stop_intake(self) -> None:
        """Stop polling at once (stored updates wait in the inbox)."""
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
            self._poll_task = None

    async def stop(self) -> None:
        """Stop intake and close the client: call once the inbox and the outbox are done with it."""
        await self.stop_intake()
        await self.typing.close()
        if self._owns_client:
            await self.client.close()
        self._started = False

    async def _poll(self) -> None:
        """getUpdates in a loop: 408 means nothing new, 401 is fatal, other errors back off 1→30 s."""
        delay = BACKOFF_START
        while True:
            try:
                await self.inbox.wait_admitting()  # over the backlog bound: Zalo keeps them
                update = await self.client.get_updates(self.poll_timeout)
                if update is not None:
                    await self.store(update)
            except ZaloError as error:
                if error.code == UNAUTHORIZED:
                    log.error("Zalo rejected the bot token (401); polling stopped")
                    return
                log.warning("Zalo getUpdates failed (%s); retrying in %.0f s", error, delay)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("unexpected error while polling Zalo; retrying in %.0f s", delay)
            else:
                delay = BACKOFF_START
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    # --- intake ---

    def secret_ok(self, header: str | None) -> bool:
        return bool(self._secret) and hmac.compare_digest((header or "").encode(), self._secret.encode())

    async def accept_webhook(self, payload: object) -> int:
        """Store one webhook update (its secret already checked): 400 for a body that is not an
        update, 200 once it is stored."""
        update = unwrap(payload)
        if not isinstance(update, dict) or not isinstance(update.get("event_name"), str):
            return 400
        await self.store(update)
        return 200

    async def store(self, update: object) -> bool:
        """Store one update (False: stored before); "typing" at once if the bot will answer it."""
        update = unwrap(update)
        if not isinstance(update, dict):
            return False
        if not await self.inbox.accept(CHANNEL, update_key(update), _chat_key(update), update):
            return False
        incoming = to_incoming(update)
        if incoming is not None:
            self.typing.show(incoming.chat_id)
        return True

    async def _send_typing(self, chat: str) -> None:
        try:
            await self.client.send_chat_action(chat)
        except ZaloError as error:
            if error.code == 429:
                raise RetryLater(1.0, str(error)) from error
            raise

    # --- handling stored updates ---

    def chat_of(self, row: InboxUpdate) -> str | None:
        message = row.payload.get("message")
        return _private_chat_id(message) if isinstance(message, dict) else None

    async def handle(self, row: InboxUpdate, receipt: Receipt) -> None:
        incoming = to_incoming(row.payload)
        if incoming is None:
            log.debug("ignored a Zalo update (%s)", _event_name(row.payload))
            return
        await asyncio.to_thread(self.dialogue.handle, incoming, receipt)


def update_key(update: JSONDict) -> str:
    """Zalo has no update id: the message id, or a digest of the update when it has none."""
    message = update.get("message")
    message_id = message.get("message_id") if isinstance(message, dict) else None
    if isinstance(message_id, str) and message_id.strip():
        return f"m:{message_id[:120]}"
    digest = hashlib.sha256(json.dumps(update, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return f"h:{digest}"


def _chat_key(update: JSONDict) -> str:
    message = update.get("message")
    chat = message.get("chat") if isinstance(message, dict) else None
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    return chat_id[:64] if isinstance(chat_id, str) and chat_id else "-"


def render_parts(reply: Reply, hint: str, hint_one: str | None = None) -> list[str]:
    """The reply as plain-text messages: no HTML, buttons as a numbered list, each ≤ 2000 chars.

    A long reply is split at line or sentence ends; the numbered menu is never cut: it ends the
    last message, or comes as a message of its own.
    """
    text = render(reply, hint, hint_one).strip()
    if _utf16_length(text) <= MAX_TEXT_LENGTH:
        return [text] if text else []
    parts = fit(html_to_text(reply.text).strip())
    menu = numbered_menu(reply, hint, hint_one)
    if not menu:
        return parts
    if parts and _utf16_length(f"{parts[-1]}\n\n{menu}") <= MAX_TEXT_LENGTH:
        parts[-1] = f"{parts[-1]}\n\n{menu}"
        return parts
    return parts + fit(menu)


def _event_name(update: object) -> str:
    update = unwrap(update)
    event = update.get("event_name") if isinstance(update, dict) else None
    return event if isinstance(event, str) else "no event name"


class ZaloTransport:
    """The outbox's own Zalo client: plain text with numbered menus, errors mapped for the outbox.

    Zalo does not document its error codes; 429 is read as a flood limit, 408/5xx/no answer as
    temporary, "chat not found" or 403 as a user who is gone, anything else as a refusal.
    """

    channel = CHANNEL
    native_buttons = False

    def __init__(
        self,
        settings: Settings,
        texts: Texts,
        *,
        client: ZaloClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        token = settings.zalo_token()
        self._owns_client = client is None
        self.client = client or ZaloClient(token, settings.zalo_api_base_url, transport=transport)
        self._hint = texts.label("plain_menu_hint")
        self._hint_one = texts.label("plain_menu_hint_one")

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._owns_client:
            await self.client.close()

    async def deliver(self, chat_id: str, reply: Reply, pace: Pace) -> None:
        try:
            for i, part in enumerate(render_parts(reply, self._hint, self._hint_one)):
                if i:
                    await pace()
                await self.client.send_message(chat_id, part)
        except ZaloError as error:
            if error.code == 429:
                raise RetryLater(1.0, str(error)) from error
            if error.code in (NO_ANSWER, 408) or error.code >= 500:
                raise Temporary(str(error)) from error
            if error.code == 403 or "not found" in error.description.lower():
                raise Blocked(str(error)) from error
            raise Permanent(str(error)) from error
