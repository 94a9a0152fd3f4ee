"""Telegram adapter on python-telegram-bot: updates in, the dialogue in a worker thread, replies out.

Polling by default; webhook mode when ``TELEGRAM_WEBHOOK_URL`` is set (the web app's
``/webhook/telegram`` route feeds ``TelegramChannel.process_webhook``). Updates of one chat are
handled one at a time, different chats concurrently.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections import defaultdict
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    LinkPreviewOptions,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, MessageLimit, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, ContextTypes, TypeHandler

from bot.channels.plaintext import split_message
from bot.outbox import Blocked, Permanent, RetryLater, Temporary
from bot.settings import Settings
from handlers.dialogue import Dialogue
from handlers.texts import Texts
from handlers.types import Incoming, Kind, Reply

log = logging.getLogger(__name__)
CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
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


class TelegramTransport:
    """The outbox's own Telegram client (no shared rate limiter: the outbox paces itself)."""

    channel = CHANNEL
    native_buttons = True

    def __init__(self, settings: Settings, texts: Texts):
        token = settings.telegram_bot_token.get_secret_value()  # type: ignore[union-attr]
        self.bot = Bot(token, base_url=settings.telegram_api_base_url)
        self.texts = texts

    async def start(self) -> None:
        await self.bot.initialize()

    async def stop(self) -> None:
        await self.bot.shutdown()

    async def deliver(self, chat_id: str, reply: Reply) -> None:
        try:
            for text, markup in telegram_messages(reply, self.texts):
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


class TelegramChannel:
    """Owns the PTB ``Application`` and connects it to the dialogue."""

    def __init__(self, settings: Settings, dialogue: Dialogue, texts: Texts, commands: dict[str, str]):
        if settings.telegram_bot_token is None:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        self.settings = settings
        self.dialogue = dialogue
        self.texts = texts
        self.commands = commands
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.application = self._build()

    @property
    def webhook_mode(self) -> bool:
        return bool(self.settings.telegram_webhook_url)

    def _build(self) -> Application:
        token = self.settings.telegram_bot_token.get_secret_value()  # type: ignore[union-attr]
        builder = (
            ApplicationBuilder()
            .token(token)
            .base_url(self.settings.telegram_api_base_url)
            .concurrent_updates(True)
            .rate_limiter(AIORateLimiter(max_retries=3))
            .post_init(self._post_init)
        )
        if self.webhook_mode:
            builder = builder.updater(None)
        application = builder.build()
        # Order matters: one catch-all handler; the dialogue does the routing.
        application.add_handler(TypeHandler(Update, self._on_update))
        application.add_error_handler(self._on_error)
        return application

    async def _post_init(self, application: Application) -> None:
        commands = [BotCommand(name, description) for name, description in self.commands.items()]
        await application.bot.set_my_commands(commands)

    # --- lifecycle ---

    async def start(self) -> None:
        await self.application.initialize()
        if self.application.post_init:
            await self.application.post_init(self.application)
        if self.webhook_mode:
            secret = self.settings.telegram_webhook_secret
            await self.application.bot.set_webhook(
                self.settings.telegram_webhook_url,  # type: ignore[arg-type]
                secret_token=secret.get_secret_value() if secret else None,
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            await self.application.updater.start_polling(  # type: ignore[union-attr]
                allowed_updates=Update.ALL_TYPES, poll_interval=0.0, timeout=10
            )
        await self.application.start()
        log.info("Telegram started (%s)", "webhook" if self.webhook_mode else "polling")

    async def stop(self) -> None:
        if self.application.updater is not None and self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def process_webhook(self, secret_header: str | None, payload: Any) -> int:
        """Queue one webhook update; returns the HTTP status to answer with."""
        expected = self.settings.telegram_webhook_secret
        expected_value = expected.get_secret_value() if expected else ""
        if not expected_value or not hmac.compare_digest(
            (secret_header or "").encode(), expected_value.encode()
        ):
            return 403
        if not isinstance(payload, dict) or "update_id" not in payload:
            return 400
        try:
            update = Update.de_json(payload, self.application.bot)
        except (KeyError, TypeError, ValueError):
            return 400
        await self.application.update_queue.put(update)
        return 200

    # --- updates ---

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        member = update.my_chat_member
        if member is not None and member.chat.type == ChatType.PRIVATE:
            blocked = member.new_chat_member.status == ChatMemberStatus.BANNED
            await asyncio.to_thread(self.dialogue.set_blocked, CHANNEL, str(member.chat.id), blocked)
            return
        if update.callback_query is not None:
            try:
                await update.callback_query.answer()
            except TelegramError:
                log.warning("could not answer callback query %s", update.callback_query.id)
        incoming = to_incoming(update)
        if incoming is None:
            return
        async with self._locks[incoming.chat_id]:
            replies = await asyncio.to_thread(self.dialogue.handle, incoming)
            for reply in replies:
                await self.send(incoming.chat_id, reply)

    async def send(self, chat_id: str | int, reply: Reply) -> Message | None:
        """Send one reply (split when longer than Telegram allows); raises Forbidden when blocked."""
        sent: Message | None = None
        for text, markup in telegram_messages(reply, self.texts):
            sent = await self.application.bot.send_message(
                chat_id=int(chat_id),
                text=text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        if reply.attachment is not None:
            sent = await self.application.bot.send_document(
                chat_id=int(chat_id), document=reply.attachment.content, filename=reply.attachment.filename
            )
        return sent

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("error while handling a Telegram update", exc_info=context.error)
        if (
            isinstance(context.error, Forbidden)
            or not isinstance(update, Update)
            or update.effective_chat is None
        ):
            return
        try:
            await self.application.bot.send_message(update.effective_chat.id, self.texts.render("error"))
        except TelegramError:
            log.warning("could not send the error message")
