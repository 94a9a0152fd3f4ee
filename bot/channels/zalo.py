"""Zalo adapter on the Zalo Bot Platform API: updates in, the dialogue in a worker thread, replies out.

The Bot Platform (``{base}/bot{token}/{method}``, JSON in, ``{"ok", "result"}`` out) is close to
Telegram's Bot API but smaller: ids are hex strings, dates are in milliseconds, ``getUpdates`` returns
*one* update per call (HTTP 408 when nothing arrived), and there are no buttons. Replies are therefore
sent as plain text with the buttons as a numbered list; the dialogue remembers the last menu, so a
typed "2" or the option's words pick it.

Polling by default; webhook mode when ``ZALO_WEBHOOK_URL`` is set (the web app's ``/webhook/zalo``
route feeds ``ZaloChannel.process_webhook``). Updates of one chat are handled one at a time, in the
order they arrived; different chats concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import Any

import httpx

from bot.channels.plaintext import html_to_text, numbered_menu, render, split_message
from bot.outbox import Blocked, Permanent, RetryLater, Temporary
from bot.settings import Settings
from handlers.dialogue import Dialogue
from handlers.texts import Texts
from handlers.types import Incoming, Kind, Reply

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
SEND_ATTEMPTS = 3
STOP_GRACE = 5.0

# Error codes with a meaning of their own. 0 means "no usable HTTP answer" (network error, garbage).
NO_ANSWER = 0
UNAUTHORIZED = 401
NOTHING_NEW = 408
RETRYABLE = frozenset({NO_ANSWER, 408, 429, 500, 502, 503, 504})

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

    async def get_webhook_info(self) -> JSONDict:
        return await self.call("getWebhookInfo")

    async def send_message(self, chat_id: str, text: str) -> JSONDict:
        """Send plain text (1-2000 characters; longer text is refused here, split it first)."""
        _check_text(text, "text")
        return await self.call("sendMessage", {"chat_id": chat_id, "text": text})

    async def send_photo(self, chat_id: str, photo_url: str, caption: str | None = None) -> JSONDict:
        params: JSONDict = {"chat_id": chat_id, "photo": photo_url}
        if caption:
            _check_text(caption, "caption")
            params["caption"] = caption
        return await self.call("sendPhoto", params)

    async def send_chat_action(self, chat_id: str, action: str = "typing") -> None:
        await self.call("sendChatAction", {"chat_id": chat_id, "action": action})


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


class _Pacer:
    """Spaces sends at most ``rate`` per second overall (a slot is reserved before waiting)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        start = max(now, self._next)
        self._next = start + self._interval
        if start > now:
            await asyncio.sleep(start - now)


# --------------------------------------------------------------------------- the channel


class ZaloChannel:
    """Connects the Zalo Bot Platform to the dialogue, by polling or through the webhook route."""

    def __init__(
        self,
        settings: Settings,
        dialogue: Dialogue,
        texts: Texts,
        *,
        client: ZaloClient | None = None,
        poll_timeout: float = POLL_TIMEOUT,
    ) -> None:
        if settings.zalo_bot_token is None:
            raise ValueError("ZALO_BOT_TOKEN is not set")
        secret = settings.zalo_webhook_secret.get_secret_value() if settings.zalo_webhook_secret else ""
        if settings.zalo_webhook_url and len(secret) not in SECRET_LENGTHS:
            raise ValueError("ZALO_WEBHOOK_URL needs ZALO_WEBHOOK_SECRET (8-256 characters)")
        self.settings = settings
        self.dialogue = dialogue
        self.texts = texts
        self.poll_timeout = poll_timeout
        self._secret = secret
        self._owns_client = client is None
        self.client = client or ZaloClient(
            settings.zalo_bot_token.get_secret_value(), settings.zalo_api_base_url
        )
        self._hint = texts.label("plain_menu_hint")
        self._pacer = _Pacer(settings.zalo_rate_per_sec)
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
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
        if self.webhook_mode:
            await self.client.set_webhook(self.settings.zalo_webhook_url, self._secret)  # type: ignore[arg-type]
        else:
            await self.client.delete_webhook()
            self._poll_task = asyncio.create_task(self._poll(), name="zalo-polling")
        self._started = True
        mode = "webhook" if self.webhook_mode else "polling"
        log.info(
            "Zalo started as %s (%s)", me.get("account_name", "?") if isinstance(me, dict) else "?", mode
        )

    async def stop(self) -> None:
        """Stop polling at once, let updates in progress finish (a few seconds at most), close."""
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
            self._poll_task = None
        try:
            await asyncio.wait_for(self.join(), STOP_GRACE)
        except TimeoutError:
            log.warning("Zalo updates still running after %.0f s; cancelled", STOP_GRACE)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._owns_client:
            await self.client.close()
        self._started = False

    async def join(self) -> None:
        """Wait until every update received so far has been handled and answered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _poll(self) -> None:
        """getUpdates in a loop: 408 means nothing new, 401 is fatal, other errors back off 1→30 s."""
        delay = BACKOFF_START
        while True:
            try:
                update = await self.client.get_updates(self.poll_timeout)
            except ZaloError as error:
                if error.code == UNAUTHORIZED:
                    log.error("Zalo rejected the bot token (401); polling stopped")
                    return
                log.warning("Zalo getUpdates failed (%s); retrying in %.0f s", error, delay)
            except Exception:
                log.exception("unexpected error while polling Zalo; retrying in %.0f s", delay)
            else:
                delay = BACKOFF_START
                if update is not None:
                    self._spawn(self.handle_update(update))
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- webhook ---

    async def process_webhook(self, secret_header: str | None, payload: object) -> int:
        """Check the secret header, queue the update and return the HTTP status to answer with:
        403 for a wrong or missing secret (or none configured), 400 for a body that is not an
        update, 200 otherwise. The update is handled in the background so Zalo gets its answer now.
        """
        if not self._secret or not hmac.compare_digest((secret_header or "").encode(), self._secret.encode()):
            return 403
        update = unwrap(payload)
        if not isinstance(update, dict) or not isinstance(update.get("event_name"), str):
            return 400
        self._spawn(self.handle_update(update))
        return 200

    # --- updates ---

    async def handle_update(self, update: object) -> None:
        """Answer one update. Never raises: a failure is logged and the user gets a polite message."""
        incoming = to_incoming(update)
        if incoming is None:
            log.debug("ignored a Zalo update (%s)", _event_name(update))
            return
        async with self._chat_lock(incoming.chat_id):
            try:
                replies = await asyncio.to_thread(self.dialogue.handle, incoming)
                for reply in replies:
                    await self.send(incoming.chat_id, reply)
            except Exception:
                log.exception("error while handling a Zalo update (%s)", _event_name(update))
                await self._send_error(incoming.chat_id)

    @contextlib.asynccontextmanager
    async def _chat_lock(self, chat_id: str) -> AsyncIterator[None]:
        """One update per chat at a time, first come first served; idle locks are dropped."""
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        self._lock_users[chat_id] = self._lock_users.get(chat_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[chat_id] -= 1
            if not self._lock_users[chat_id]:
                del self._lock_users[chat_id]
                del self._locks[chat_id]

    async def _send_error(self, chat_id: str) -> None:
        try:
            for part in fit(html_to_text(self.texts.render("error"))):
                await self._send_text(chat_id, part)
        except Exception:
            log.warning("could not send the error message to a Zalo chat", exc_info=True)

    # --- replies ---

    def render(self, reply: Reply) -> list[str]:
        return render_parts(reply, self._hint)

    async def send(self, chat_id: str, reply: Reply) -> None:
        """Send one reply, split into as many messages as needed; raises ZaloError on refusal."""
        for part in self.render(reply):
            await self._send_text(chat_id, part)
        if reply.attachment is not None:
            log.warning("Zalo cannot send file attachments; %s was not sent", reply.attachment.filename)

    async def _send_text(self, chat_id: str, text: str) -> JSONDict:
        """sendMessage, paced, retried twice (after 1 s, then 2 s) on rate limits and server errors."""
        for attempt in range(SEND_ATTEMPTS):
            await self._pacer.wait()
            try:
                return await self.client.send_message(chat_id, text)
            except ZaloError as error:
                if error.code not in RETRYABLE or attempt == SEND_ATTEMPTS - 1:
                    raise
                log.warning("Zalo sendMessage failed (%s); retrying", error)
                await asyncio.sleep(2.0**attempt)
        raise AssertionError("unreachable")


def render_parts(reply: Reply, hint: str) -> list[str]:
    """The reply as plain-text messages: no HTML, buttons as a numbered list, each ≤ 2000 chars.

    A long reply is split at line or sentence ends; the numbered menu is never cut: it ends the
    last message, or comes as a message of its own.
    """
    text = render(reply, hint).strip()
    if _utf16_length(text) <= MAX_TEXT_LENGTH:
        return [text] if text else []
    parts = fit(html_to_text(reply.text).strip())
    menu = numbered_menu(reply, hint)
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
        self, settings: Settings, texts: Texts, *, transport: httpx.AsyncBaseTransport | None = None
    ):
        token = settings.zalo_bot_token.get_secret_value()  # type: ignore[union-attr]
        self.client = ZaloClient(token, settings.zalo_api_base_url, transport=transport)
        self._hint = texts.label("plain_menu_hint")

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.client.close()

    async def deliver(self, chat_id: str, reply: Reply) -> None:
        try:
            for part in render_parts(reply, self._hint):
                await self.client.send_message(chat_id, part)
        except ZaloError as error:
            if error.code == 429:
                raise RetryLater(1.0, str(error)) from error
            if error.code in (NO_ANSWER, 408) or error.code >= 500:
                raise Temporary(str(error)) from error
            if error.code == 403 or "not found" in error.description.lower():
                raise Blocked(str(error)) from error
            raise Permanent(str(error)) from error
