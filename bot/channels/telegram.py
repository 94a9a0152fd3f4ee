"""Telegram adapter on python-telegram-bot: updates into the inbox, from the inbox through the PTB
``Application`` to the dialogue, and the outbox's transport for everything sent back.

Intake: polling (our own ``getUpdates`` loop, which moves the offset on only once the updates are
stored) or webhook mode when ``TELEGRAM_WEBHOOK_URL`` is set (the web app's ``/webhook/telegram``
route checks the secret and stores the update before answering 200). The inbox worker then hands
each stored update to ``TelegramChannel.handle``, which runs it through the Application's handler.
Replies are queued by the dialogue and sent by the outbox over ``TelegramTransport``, on the same
bot client, within the one send budget of this bot token.

Under load (``bot.inbox``): while the stored backlog is over ``INBOX_MAX_BACKLOG`` the webhook route
answers 503 with Retry-After (Telegram keeps the update and sends it again) and polling stops
fetching; every update the bot will answer gets "typing" at once (``bot.typing``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hmac
import logging
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    LinkPreviewOptions,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.constants import ChatAction, ChatMemberStatus, ChatType, MessageLimit, ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, ExtBot, JobQueue, TypeHandler

from bot.channels.plaintext import split_message
from bot.inbox import InboxWorker
from bot.outbox import Blocked, Pace, Permanent, RetryLater, Temporary
from bot.settings import Settings
from bot.typing import ChatActions
from handlers.dialogue import Dialogue
from handlers.texts import Texts
from handlers.types import Incoming, Kind, Receipt, Reply
from storage.models import InboxUpdate

log = logging.getLogger(__name__)
CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
POLL_TIMEOUT = 10
BACKOFF_MAX = 30.0
_MEDIA_FIELDS = (
    ("sticker", "sticker"),
    ("photo", "photo"),
    ("voice", "voice"),
    ("audio", "voice"),
    ("video_note", "voice"),
    ("video", "photo"),
    ("animation", "photo"),
    ("location", "location"),
    ("venue", "location"),
    ("document", "document"),
)


def to_incoming(update: Update) -> Incoming | None:
    """The neutral event for a Telegram update; None for updates the bot does not answer."""
    chat = update.effective_chat
    user = update.effective_user
    if chat is None or user is None or chat.type != ChatType.PRIVATE or user.is_bot:
        return None
    chat_id = str(chat.id)
    name = user.full_name or ""
    if update.callback_query is not None:
        return Incoming(
            CHANNEL,
            chat_id,
            Kind.CHOICE,
            user_name=name,
            username=user.username,
            choice=update.callback_query.data or "",
        )
    message = update.message
    if message is None:
        return None
    if message.contact is not None:
        return Incoming(
            CHANNEL,
            chat_id,
            Kind.CONTACT,
            user_name=name,
            username=user.username,
            contact_phone=message.contact.phone_number,
        )
    if message.text is not None:
        incoming = Incoming.text_message(CHANNEL, chat_id, message.text, name)
        return Incoming(
            incoming.channel,
            incoming.chat_id,
            incoming.kind,
            incoming.text,
            name,
            user.username,
            incoming.command,
        )
    for attribute, media in _MEDIA_FIELDS:
        if getattr(message, attribute, None):
            return Incoming(CHANNEL, chat_id, Kind.UNSUPPORTED, user_name=name, media=media)
    return Incoming(CHANNEL, chat_id, Kind.UNSUPPORTED, user_name=name, media="other")


def reply_markup(reply: Reply, texts: Texts) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | None:
    if reply.ask_contact:
        label = texts.label("buttons", "share_phone")
        return ReplyKeyboardMarkup(
            [[KeyboardButton(label, request_contact=True)]], one_time_keyboard=True, resize_keyboard=True
        )
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in reply.buttons]
    )


def telegram_messages(reply: Reply, texts: Texts) -> list[tuple[str, Any]]:
    """(text, markup) per message: long texts are split, the markup goes with the last part."""
    markup = reply_markup(reply, texts)
    chunks = split_message(reply.text, MessageLimit.MAX_TEXT_LENGTH) if reply.text else []
    return [(chunk, markup if i == len(chunks) - 1 else None) for i, chunk in enumerate(chunks)]


def _seconds(value: Any) -> float:
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)


# What ``ApplicationBuilder().build()`` makes: PTB's default bot, context and data types.
DefaultApplication = Application[
    ExtBot[None],
    ContextTypes.DEFAULT_TYPE,
    dict[Any, Any],
    dict[Any, Any],
    dict[Any, Any],
    JobQueue[ContextTypes.DEFAULT_TYPE],
]


class TelegramTransport:
    """The outbox's way to Telegram: HTML text, inline keyboards, errors mapped for the outbox."""

    channel = CHANNEL
    native_buttons = True

    def __init__(self, settings: Settings, texts: Texts, bot: Bot | None = None):
        self._owns_bot = bot is None
        token = settings.telegram_token()
        self.bot = bot or Bot(token, base_url=settings.telegram_api_base_url)
        self.texts = texts

    async def start(self) -> None:
        if self._owns_bot:
            await self.bot.initialize()

    async def stop(self) -> None:
        if self._owns_bot:
            await self.bot.shutdown()

    async def deliver(self, chat_id: str, reply: Reply, pace: Pace) -> None:
        try:
            for i, (text, markup) in enumerate(telegram_messages(reply, self.texts)):
                if i:
                    await pace()
                await self.bot.send_message(
                    chat_id=int(chat_id),
                    text=text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
        except Forbidden as exc:
            raise Blocked(str(exc)) from exc
        except RetryAfter as exc:
            # The private field is always a timedelta; the public one warns about its type changing.
            raise RetryLater(_seconds(exc._retry_after), str(exc)) from exc
        except BadRequest as exc:
            if "chat not found" in str(exc).lower():
                raise Blocked(str(exc)) from exc
            raise Permanent(str(exc)) from exc
        except NetworkError as exc:  # includes TimedOut
            raise Temporary(str(exc)) from exc


def chat_key(payload: dict[str, Any]) -> str:
    """The chat an update belongs to (its updates are handled in order), "-" when it has none."""
    return intake_keys(payload)[0]


def intake_keys(payload: dict[str, Any]) -> tuple[str, str | None]:
    """The update's chat key (``chat_key``) and the chat to show "typing" in: the private chat of an
    update the bot answers, None for the rest (groups, edits, the bot being blocked...)."""
    try:
        update = Update.de_json(payload, None)
    except Exception:
        return "-", None
    chat = update.effective_chat if update is not None else None
    user = update.effective_user if update is not None else None
    key = str(chat.id) if chat is not None else str(user.id) if user is not None else "-"
    incoming = to_incoming(update) if update is not None else None
    return key, incoming.chat_id if incoming is not None else None


# The inbox receipt of the update being handled, and where its handler leaves an error.
_receipt: contextvars.ContextVar[Receipt | None] = contextvars.ContextVar("receipt", default=None)
_errors: contextvars.ContextVar[list[BaseException] | None] = contextvars.ContextVar("errors", default=None)


class TelegramChannel:
    """Owns the PTB ``Application``: intake into the inbox, and handling of stored updates."""

    name = CHANNEL

    def __init__(
        self,
        settings: Settings,
        dialogue: Dialogue,
        texts: Texts,
        commands: dict[str, str],
        inbox: InboxWorker,
    ):
        settings.telegram_token()  # ValueError when it is not set
        self.settings = settings
        self.dialogue = dialogue
        self.texts = texts
        self.commands = commands
        self.inbox = inbox
        self.application = self._build()
        self.typing = ChatActions(self._send_typing)
        self._poll_task: asyncio.Task[None] | None = None

    @property
    def webhook_mode(self) -> bool:
        return bool(self.settings.telegram_webhook_url)

    def _build(self) -> DefaultApplication:
        token = self.settings.telegram_token()
        # No updater (the inbox fetches and stores updates) and no rate limiter (the outbox's shared
        # budget paces every message this bot sends).
        application = (
            ApplicationBuilder()
            .token(token)
            .base_url(self.settings.telegram_api_base_url)
            .updater(None)
            .build()
        )
        # One catch-all handler; the dialogue does the routing.
        application.add_handler(TypeHandler(Update, self._on_update))
        return application

    # --- lifecycle ---

    async def start(self) -> None:
        await self.application.initialize()
        commands = [BotCommand(name, description) for name, description in self.commands.items()]
        await self.application.bot.set_my_commands(commands)
        if webhook_url := self.settings.telegram_webhook_url:  # webhook mode
            secret = self.settings.telegram_webhook_secret
            await self.application.bot.set_webhook(
                webhook_url,
                secret_token=secret.get_secret_value() if secret else None,
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            await self.application.bot.delete_webhook()
            self._poll_task = asyncio.create_task(self._poll(), name="telegram-polling")
        await self.application.start()
        log.info("Telegram started (%s)", "webhook" if self.webhook_mode else "polling")

    async def stop_intake(self) -> None:
        """Stop fetching updates (the webhook route stops with the web server)."""
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
            self._poll_task = None

    async def stop(self) -> None:
        """Stop intake and close the client: call once the inbox and the outbox are done with it."""
        await self.stop_intake()
        await self.typing.close()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    # --- intake ---

    async def _poll(self) -> None:
        """getUpdates in a loop; the offset moves on only after the updates are stored."""
        offset: int | None = None
        delay = 1.0
        while True:
            try:
                await self.inbox.wait_admitting()  # over the backlog bound: Telegram keeps them
                updates = await self.application.bot.get_updates(
                    offset=offset, timeout=POLL_TIMEOUT, allowed_updates=Update.ALL_TYPES
                )
                if updates:
                    rows, chats = [], []
                    for u in updates:
                        payload = u.to_dict()
                        key, typing_chat = intake_keys(payload)
                        rows.append((str(u.update_id), key, payload))
                        chats.append(typing_chat)
                    await self.inbox.accept_many(CHANNEL, rows)
                    self._show_typing(chats)
                    offset = updates[-1].update_id + 1
                delay = 1.0
            except InvalidToken:
                log.error("Telegram rejected the bot token; polling stopped")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("Telegram getUpdates failed (%s); retrying in %.0f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    def secret_ok(self, header: str | None) -> bool:
        expected = self.settings.telegram_webhook_secret
        expected_value = expected.get_secret_value() if expected else ""
        return bool(expected_value) and hmac.compare_digest((header or "").encode(), expected_value.encode())

    async def accept_webhook(self, payload: object) -> int:
        """Store one webhook update (its secret already checked); the HTTP status to answer with."""
        if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
            return 400
        key, typing_chat = intake_keys(payload)
        if await self.inbox.accept(CHANNEL, str(payload["update_id"]), key, payload):
            self._show_typing([typing_chat])
        return 200

    def _show_typing(self, chats: list[str | None]) -> None:
        for chat in chats:
            if chat is not None:
                self.typing.show(chat)

    async def _send_typing(self, chat: str) -> None:
        try:
            await self.application.bot.send_chat_action(chat_id=int(chat), action=ChatAction.TYPING)
        except RetryAfter as exc:
            raise RetryLater(_seconds(exc._retry_after), str(exc)) from exc

    # --- handling stored updates ---

    def chat_of(self, row: InboxUpdate) -> str | None:
        """The private chat to tell when this update cannot be handled."""
        try:
            update = Update.de_json(row.payload, None)
        except Exception:
            return None
        chat = update.effective_chat if update is not None else None
        return str(chat.id) if chat is not None and chat.type == ChatType.PRIVATE else None

    async def handle(self, row: InboxUpdate, receipt: Receipt) -> None:
        """Run one stored update through the Application; re-raise what its handler raised."""
        update = Update.de_json(row.payload, self.application.bot)
        errors: list[BaseException] = []
        receipt_token, errors_token = _receipt.set(receipt), _errors.set(errors)
        try:
            await self.application.process_update(update)
        finally:
            _receipt.reset(receipt_token)
            _errors.reset(errors_token)
        if errors:
            raise errors[0]

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            await self._dispatch(update, _receipt.get())
        except Exception as exc:
            errors = _errors.get()
            if errors is None:
                raise
            errors.append(exc)

    async def _dispatch(self, update: Update, receipt: Receipt | None) -> None:
        member = update.my_chat_member
        if member is not None and member.chat.type == ChatType.PRIVATE:
            blocked = member.new_chat_member.status == ChatMemberStatus.BANNED
            await asyncio.to_thread(self.dialogue.set_blocked, CHANNEL, str(member.chat.id), blocked, receipt)
            return
        if update.callback_query is not None:
            try:
                await update.callback_query.answer()
            except TelegramError:
                log.info("could not answer callback query %s (too old?)", update.callback_query.id)
        incoming = to_incoming(update)
        if incoming is None:
            return
        await asyncio.to_thread(self.dialogue.handle, incoming, receipt)
