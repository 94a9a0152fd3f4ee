"""A local fake of the Telegram Bot API for end-to-end tests of a python-telegram-bot bot.

`FakeTelegram` serves ``/bot{token}/{method}`` over real HTTP (uvicorn in the test's event loop),
so the bot under test runs python-telegram-bot's own HTTPX code path. Tests queue updates
(`send_text`, `press_button`, ...), let the bot fetch them with ``getUpdates`` and then inspect what
the bot did (`calls`, `messages`, `last_buttons`).

The fake refuses what the real Bot API refuses, with the same HTTP status and envelope: missing
required parameters, malformed HTML, callback data over 64 bytes, invalid bot commands, and so on.
The rules are hand-written from the published Bot API 10.1 for the methods supported here. Two rules
are deliberately stricter than Telegram, to catch bugs early: parameters a method does not take are
refused (`strict_params`), and with ``parse_mode="HTML"`` a bare ``&`` or ``>`` is refused as well as
a bare ``<`` (`strict_html`; Telegram itself passes a bare ``&`` or ``>`` through).

Failure injection for broadcast tests: `flood_limit_per_sec`, `per_chat_limit` (HTTP 429 with
``retry_after``) and `blocked_chats` (HTTP 403). Chat actions ("typing") are recorded with their time
in `chat_actions` and, as on Telegram, are not messages: the flood limits do not count them.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.server import FakeServer

JSONDict = dict[str, Any]
Handler = Callable[[JSONDict], Awaitable[Any]]

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_FIRST_NAME = "Người dùng"
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """A refusal, rendered as the Bot API error envelope with HTTP status = error_code."""

    def __init__(self, code: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(detail: str) -> ApiError:
    """A 400 error with Telegram's "Bad Request: " prefix."""
    return ApiError(400, f"Bad Request: {detail}")


# --------------------------------------------------------------------------- method rules


@dataclass(frozen=True)
class MethodSpec:
    """The parameters a method takes (name -> kind) and which of them are required."""

    fields: Mapping[str, str]
    required: frozenset[str] = frozenset()


def _spec(fields: Mapping[str, str] | None = None, required: str = "") -> MethodSpec:
    return MethodSpec(dict(fields or {}), frozenset(required.split()))


# Kinds: str, int, bool, chat (Integer or "@username"), json (JSON-serialized object), file.
_SEND_COMMON = {
    "business_connection_id": "str",
    "chat_id": "chat",
    "message_thread_id": "int",
    "direct_messages_topic_id": "int",
    "disable_notification": "bool",
    "protect_content": "bool",
    "allow_paid_broadcast": "bool",
    "message_effect_id": "str",
    "suggested_post_parameters": "json",
    "reply_parameters": "json",
    "reply_markup": "json",
}
_EDIT_TARGET = {
    "business_connection_id": "str",
    "chat_id": "chat",
    "message_id": "int",
    "inline_message_id": "str",
}
_COMMAND_SCOPE = {"scope": "json", "language_code": "str"}
_WEBHOOK_FIELDS = {
    "url": "str",
    "certificate": "file",
    "ip_address": "str",
    "max_connections": "int",
    "allowed_updates": "json",
    "drop_pending_updates": "bool",
    "secret_token": "str",
}

METHOD_SPECS: dict[str, MethodSpec] = {
    "getMe": _spec(),
    "close": _spec(),
    "logOut": _spec(),
    "getUpdates": _spec({"offset": "int", "limit": "int", "timeout": "int", "allowed_updates": "json"}),
    "setWebhook": _spec(_WEBHOOK_FIELDS, "url"),
    "deleteWebhook": _spec({"drop_pending_updates": "bool"}),
    "getWebhookInfo": _spec(),
    "sendMessage": _spec(
        {
            **_SEND_COMMON,
            "text": "str",
            "parse_mode": "str",
            "entities": "json",
            "link_preview_options": "json",
        },
        "chat_id text",
    ),
    "sendDocument": _spec(
        {
            **_SEND_COMMON,
            "document": "file",
            "thumbnail": "file",
            "caption": "str",
            "parse_mode": "str",
            "caption_entities": "json",
            "disable_content_type_detection": "bool",
        },
        "chat_id document",
    ),
    "editMessageText": _spec(
        {
            **_EDIT_TARGET,
            "text": "str",
            "parse_mode": "str",
            "entities": "json",
            "link_preview_options": "json",
            "rich_message": "json",
            "reply_markup": "json",
        }
    ),
    "editMessageReplyMarkup": _spec({**_EDIT_TARGET, "reply_markup": "json"}),
    "answerCallbackQuery": _spec(
        {"callback_query_id": "str", "text": "str", "show_alert": "bool", "url": "str", "cache_time": "int"},
        "callback_query_id",
    ),
    "sendChatAction": _spec(
        {"business_connection_id": "str", "chat_id": "chat", "message_thread_id": "int", "action": "str"},
        "chat_id action",
    ),
    "setMyCommands": _spec({"commands": "json", **_COMMAND_SCOPE}, "commands"),
    "getMyCommands": _spec(_COMMAND_SCOPE),
    "deleteMyCommands": _spec(_COMMAND_SCOPE),
    "setChatMenuButton": _spec({"chat_id": "int", "menu_button": "json"}),
    "getChatMenuButton": _spec({"chat_id": "int"}),
}
_CANONICAL = {name.lower(): name for name in METHOD_SPECS}  # Bot API method names are case-insensitive

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
COMMAND_SCOPES = {
    "default": (),
    "all_private_chats": (),
    "all_group_chats": (),
    "all_chat_administrators": (),
    "chat": ("chat_id",),
    "chat_administrators": ("chat_id",),
    "chat_member": ("chat_id", "user_id"),
}
MENU_BUTTON_TYPES = frozenset({"commands", "default", "web_app"})
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_LANGUAGE_RE = re.compile(r"[a-z]{2}")
_INTEGER_RE = re.compile(r"-?\d+")
_WEBHOOK_PORTS = frozenset({80, 88, 443, 8443})


@dataclass(frozen=True)
class UploadedFile:
    """A file the bot uploaded in a multipart request."""

    field: str
    filename: str | None
    content_type: str | None
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class WebhookConfig:
    """What the bot registered with setWebhook."""

    url: str
    secret_token: str | None
    max_connections: int
    allowed_updates: list[str] | None


def _coerce(name: str, kind: str, value: object) -> object:
    """Convert one form value (a string) or JSON-body value to the kind the method expects."""
    if kind == "file":
        return value
    if kind == "json":
        return _coerce_json(name, value)
    if kind == "bool":
        return _coerce_bool(name, value)
    if kind in ("int", "chat"):
        return _coerce_int(name, value, allow_username=kind == "chat")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise bad_request(f'field "{name}" must be of type String')
    return str(value)


def _coerce_json(name: str, value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise bad_request(f"can't parse {name} JSON object") from None


def _coerce_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0", ""):
        return False
    raise bad_request(f'field "{name}" must be of type Boolean')


def _coerce_int(name: str, value: object, *, allow_username: bool) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if _INTEGER_RE.fullmatch(text):
        return int(text)
    if allow_username:
        if text.startswith("@") and len(text) > 1:
            return text
        raise bad_request("chat not found")
    raise bad_request(f'field "{name}" must be of type Integer')


def validate_params(method: str, raw: JSONDict, *, strict: bool = True) -> JSONDict:
    """Check `raw` against the method's rules; return the params converted to their kinds."""
    spec = METHOD_SPECS[method]
    params: JSONDict = {}
    for name, value in raw.items():
        kind = spec.fields.get(name)
        if kind is None:
            if strict:
                raise bad_request(f'parameter "{name}" is not accepted by {method}')
            params[name] = value
            continue
        params[name] = _coerce(name, kind, value)
    missing = sorted(spec.required - params.keys())
    if missing:
        raise bad_request("message text is empty" if missing[0] == "text" else f"{missing[0]} is empty")
    return params


# --------------------------------------------------------------------------- HTML parse mode


class HtmlError(ValueError):
    """Telegram could not parse the HTML text."""


_TAG_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_HTML_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8})|(lt|gt|amp|quot));")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME_RE = re.compile(r"<([^\s>]*)")
_ATTRIBUTE_RE = re.compile(r"""([A-Za-z_-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?\s*""")
_PLAIN_RUN_RE = re.compile(r"[^<>&]+")


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, the unit of MessageEntity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _decode_html_entity(match: re.Match[str]) -> str | None:
    decimal, hexadecimal, named = match.groups()
    if named:
        return _NAMED_ENTITIES[named]
    code = int(decimal) if decimal else int(hexadecimal, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code)


def _unescape_attribute(value: str) -> str:
    return _HTML_ENTITY_RE.sub(lambda m: _decode_html_entity(m) or m.group(0), value)


@dataclass
class _OpenTag:
    name: str
    attributes: dict[str, str]
    start: int  # UTF-16 offset in the parsed text
    first_part: int  # index into the parser's output parts


class _HtmlParser:
    """Telegram's HTML parse mode: returns the plain text and its MessageEntity dicts."""

    def __init__(self, source: str, *, strict: bool) -> None:
        self.source = source
        self.strict = strict
        self.pos = 0
        self.parts: list[str] = []
        self.length = 0
        self.stack: list[_OpenTag] = []
        self.entities: list[JSONDict] = []

    def parse(self) -> tuple[str, list[JSONDict]]:
        while self.pos < len(self.source):
            char = self.source[self.pos]
            if char == "<":
                self._tag()
            elif char == "&":
                self._html_entity()
            elif char == ">":
                self._bare(">", "&gt;")
            else:
                run = _PLAIN_RUN_RE.match(self.source, self.pos)
                assert run is not None
                self._emit(run.group(0))
                self.pos = run.end()
        if self.stack:
            raise HtmlError(f'Can\'t find end tag corresponding to start tag "{self.stack[-1].name}"')
        return "".join(self.parts), sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))

    def _emit(self, text: str) -> None:
        self.parts.append(text)
        self.length += utf16_length(text)

    def _byte_offset(self, pos: int | None = None) -> int:
        return len(self.source[: self.pos if pos is None else pos].encode())

    def _bare(self, char: str, escaped: str) -> None:
        if self.strict:
            raise HtmlError(f'Unescaped "{char}" at byte offset {self._byte_offset()}; write "{escaped}"')
        self._emit(char)
        self.pos += 1

    def _html_entity(self) -> None:
        match = _HTML_ENTITY_RE.match(self.source, self.pos)
        decoded = _decode_html_entity(match) if match else None
        if match is None or decoded is None:
            self._bare("&", "&amp;")
            return
        self._emit(decoded)
        self.pos = match.end()

    def _tag(self) -> None:
        if self.source.startswith("</", self.pos):
            self._end_tag()
        else:
            self._start_tag()

    def _start_tag(self) -> None:
        begin = self._byte_offset()
        match = _TAG_NAME_RE.match(self.source, self.pos)
        assert match is not None
        name = match.group(1).lower()
        if match.end() >= len(self.source):
            raise HtmlError(f"Unclosed start tag at byte offset {begin}")
        if name not in _TAG_ENTITY_TYPES:
            raise HtmlError(f'Unsupported start tag "{name}" at byte offset {begin}')
        self.pos = match.end()
        attributes = self._attributes(name, begin)
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise HtmlError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
        self.stack.append(_OpenTag(name, attributes, self.length, len(self.parts)))

    def _attributes(self, tag: str, begin: int) -> dict[str, str]:
        attributes: dict[str, str] = {}
        while True:
            while self.pos < len(self.source) and self.source[self.pos].isspace():
                self.pos += 1
            if self.pos >= len(self.source):
                raise HtmlError(f"Unclosed start tag at byte offset {begin}")
            if self.source[self.pos] == ">":
                self.pos += 1
                return attributes
            match = _ATTRIBUTE_RE.match(self.source, self.pos)
            if match is None:
                offset = self._byte_offset()
                raise HtmlError(f'Invalid attribute in tag "{tag}" at byte offset {offset}')
            value = next((v for v in match.groups()[1:] if v is not None), "")
            attributes[match.group(1).lower()] = _unescape_attribute(value)
            self.pos = match.end()

    def _end_tag(self) -> None:
        begin = self._byte_offset()
        close = self.source.find(">", self.pos)
        if close == -1:
            raise HtmlError(f"Unclosed end tag at byte offset {begin}")
        name = self.source[self.pos + 2 : close].strip().lower()
        if not self.stack:
            raise HtmlError(f"Unexpected end tag at byte offset {begin}")
        expected = self.stack[-1].name
        if name != expected:
            raise HtmlError(
                f'Unmatched end tag at byte offset {begin}, expected "</{expected}>", found "</{name}>"'
            )
        self.pos = close + 1
        self._close(self.stack.pop())

    def _close(self, tag: _OpenTag) -> None:
        length = self.length - tag.start
        if length == 0:
            return
        if tag.name == "code" and self.stack and self.stack[-1].name == "pre":
            language = tag.attributes.get("class", "")
            if language.startswith("language-"):
                self.stack[-1].attributes["language"] = language.removeprefix("language-")
                return
        entity: JSONDict = {"type": _TAG_ENTITY_TYPES[tag.name], "offset": tag.start, "length": length}
        entity.update(self._entity_extras(tag))
        self.entities.append(entity)

    def _entity_extras(self, tag: _OpenTag) -> JSONDict:
        if tag.name == "a":
            href = tag.attributes.get("href") or "".join(self.parts[tag.first_part :])
            if href.startswith("tg://user?id=") and href.removeprefix("tg://user?id=").isdigit():
                user_id = int(href.removeprefix("tg://user?id="))
                return {"type": "text_mention", "user": {"id": user_id, "is_bot": False, "first_name": ""}}
            return {"url": href}
        if tag.name == "pre" and "language" in tag.attributes:
            return {"language": tag.attributes["language"]}
        if tag.name == "blockquote" and "expandable" in tag.attributes:
            return {"type": "expandable_blockquote"}
        return {}


def parse_html(source: str, *, strict: bool = True) -> tuple[str, list[JSONDict]]:
    """Parse Telegram HTML into (plain text, entities); raise HtmlError where Telegram would."""
    return _HtmlParser(source, strict=strict).parse()


def strip_text(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    """Telegram trims surrounding whitespace; shift and clip the entities accordingly."""
    stripped = text.strip()
    shift = utf16_length(text[: len(text) - len(text.lstrip())])
    total = utf16_length(stripped)
    kept: list[JSONDict] = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, total)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


# --------------------------------------------------------------------------- reply markup rules

_INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


def check_reply_markup(markup: object, *, inline_only: bool) -> JSONDict:
    """Validate a reply_markup object as Telegram does; return it unchanged."""
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        _check_rows(markup["inline_keyboard"], "inline_keyboard", _check_inline_button)
    elif inline_only:
        raise bad_request("inline keyboard expected")
    elif "keyboard" in markup:
        _check_rows(markup["keyboard"], "keyboard", _check_keyboard_button)
    elif markup.get("remove_keyboard") is not True and markup.get("force_reply") is not True:
        raise bad_request("can't parse reply keyboard markup JSON object")
    return markup


def _check_rows(rows: object, field: str, check_button: Callable[[object], None]) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(
            f'can\'t parse reply keyboard markup JSON object: "{field}" must be an Array of Arrays'
        )
    for row in rows:
        for button in row:
            check_button(button)


def _check_inline_button(button: object) -> None:
    prefix = "can't parse inline keyboard button: "
    if not isinstance(button, dict):
        raise bad_request(prefix + "InlineKeyboardButton must be an Object")
    if not isinstance(button.get("text"), str):
        raise bad_request(prefix + 'Field "text" must be of type String')
    if not button["text"].strip():
        raise bad_request("BUTTON_TEXT_INVALID")
    actions = [name for name in _INLINE_ACTIONS if name in button]
    if not actions:
        raise bad_request(prefix + "Text buttons are unallowed in the inline keyboard")
    if len(actions) > 1:
        raise bad_request(prefix + f"exactly one optional field must be used, got {', '.join(actions)}")
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= 64:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button and not _is_button_url(button["url"]):
        raise bad_request("BUTTON_URL_INVALID")


def _is_button_url(url: object) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return (parts.scheme in ("http", "https") and bool(parts.netloc)) or parts.scheme == "tg"


def _check_keyboard_button(button: object) -> None:
    prefix = "can't parse keyboard button: "
    if isinstance(button, str):
        text = button
    elif isinstance(button, dict) and isinstance(button.get("text"), str):
        text = button["text"]
        for flag in ("request_contact", "request_location"):
            if flag in button and not isinstance(button[flag], bool):
                raise bad_request(prefix + f'Field "{flag}" must be of type Boolean')
    else:
        raise bad_request(prefix + 'Field "text" must be of type String')
    if not text.strip():
        raise bad_request("BUTTON_TEXT_INVALID")


def check_commands(commands: object) -> list[JSONDict]:
    """Validate a setMyCommands list; return it as plain {command, description} dicts."""
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > 100:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    checked: list[JSONDict] = []
    for item in commands:
        if not isinstance(item, dict):
            raise bad_request("can't parse BotCommand JSON object")
        command, description = item.get("command"), item.get("description")
        if not isinstance(command, str) or not _COMMAND_RE.fullmatch(command):
            raise bad_request("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        checked.append({"command": command, "description": description})
    return checked


def command_scope_key(params: JSONDict) -> tuple[str, str]:
    """The storage key of a command list: (normalised scope JSON, language code)."""
    scope = params.get("scope") or {"type": "default"}
    if not isinstance(scope, dict) or scope.get("type") not in COMMAND_SCOPES:
        raise bad_request("can't parse BotCommandScope JSON object")
    for name in COMMAND_SCOPES[scope["type"]]:
        if name not in scope:
            raise bad_request(f"can't parse BotCommandScope JSON object: {name} is missing")
    language = params.get("language_code") or ""
    if language and not _LANGUAGE_RE.fullmatch(language):
        raise bad_request("LANG_CODE_INVALID")
    return json.dumps(scope, sort_keys=True), language


# --------------------------------------------------------------------------- update builders


def now() -> int:
    """Unix time in seconds, the unit of every Telegram date."""
    return int(time.time())


def make_user(
    user_id: int, first_name: str, last_name: str | None = None, username: str | None = None
) -> JSONDict:
    """A non-bot User dict."""
    user: JSONDict = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "vi"}
    if last_name:
        user["last_name"] = last_name
    if username:
        user["username"] = username
    return user


def make_chat(chat_id: int, user: JSONDict | None = None) -> JSONDict:
    """A Chat dict: private for positive ids, group or supergroup ("-100...") for negative ones."""
    if chat_id > 0:
        chat: JSONDict = {"id": chat_id, "type": "private"}
        for key in ("first_name", "last_name", "username"):
            if user and key in user:
                chat[key] = user[key]
        return chat
    kind = "supergroup" if chat_id <= -1_000_000_000_000 else "group"
    return {"id": chat_id, "type": kind, "title": f"Group {chat_id}"}


def make_update(update_id: int, kind: str, payload: JSONDict) -> JSONDict:
    """An Update dict, e.g. make_update(7, "message", {...})."""
    return {"update_id": update_id, kind: payload}


def command_entities(text: str) -> list[JSONDict]:
    """The bot_command entity Telegram adds when a message starts with "/" (CommandHandler needs it)."""
    if not text.startswith("/") or len(text) < 2:
        return []
    command = text.split(maxsplit=1)[0]
    return [{"type": "bot_command", "offset": 0, "length": utf16_length(command)}]


def update_kind(update: JSONDict) -> str:
    """The update type: the one key besides update_id."""
    return next(key for key in update if key != "update_id")


async def post_webhook_update(
    url: str,
    update: JSONDict,
    secret: str | None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 10.0,
) -> httpx.Response:
    """POST an update to a bot's webhook the way Telegram does (pass `transport` for an ASGI app)."""
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
        return await client.post(url, json=update, headers=headers)


# --------------------------------------------------------------------------- request parsing


async def read_params(request: Request) -> JSONDict:
    """Query string plus body (urlencoded, JSON or multipart) as raw values; uploads as UploadedFile."""
    params: JSONDict = dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        params.update(await _read_multipart(request))
        return params
    body = await request.body()
    if not body:
        return params
    if content_type == "application/json":
        try:
            decoded = json.loads(body)
        except ValueError:
            raise bad_request("can't parse JSON body") from None
        if not isinstance(decoded, dict):
            raise bad_request("JSON body must be an object")
        params.update(decoded)
        return params
    params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


async def _read_multipart(request: Request) -> JSONDict:
    params: JSONDict = {}
    async with request.form() as form:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                content = await value.read()
                params[name] = UploadedFile(name, value.filename, value.content_type, content)
            else:
                params[name] = value
    return params


def _error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.code)


# --------------------------------------------------------------------------- the fake


class FakeTelegram(FakeServer):
    """An in-process Bot API server with an update queue and a record of what the bot did."""

    def __init__(
        self, token: str = "123456:TEST-TOKEN", bot_id: int = 999, username: str = "test_bot"
    ) -> None:
        self.token = token
        self.bot_user: JSONDict = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "TestBot",
            "username": username,
        }
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])])
        # base_url is the value for ApplicationBuilder().base_url(); PTB appends the token.
        super().__init__(self.app, "FakeTelegram", "/bot")
        # What the bot did.
        self.calls: list[tuple[str, JSONDict]] = []
        self.sent_log: list[tuple[float, int]] = []  # (time.time(), chat id) of every message sent
        self.refused_429_at: list[float] = []  # time.time() of every 429 answer
        self.chat_actions: list[tuple[float, int, str]] = []  # (time.time(), chat id, action) accepted
        self.uploads: list[UploadedFile] = []
        self.callback_answers: dict[str, JSONDict] = {}
        self.commands: dict[tuple[str, str], list[JSONDict]] = {}
        self.menu_buttons: dict[int | None, JSONDict] = {}
        self.webhook: WebhookConfig | None = None
        # Failure injection and strictness.
        self.flood_limit_per_sec: float | None = None
        self.per_chat_limit = False
        self.retry_after_seconds = 1
        self.blocked_chats: set[int] = set()
        self.strict_params = True
        self.strict_html = True
        self.require_https_webhook = True
        # Internal state.
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._queue: list[JSONDict] = []
        self._allowed_updates: list[str] = []
        self._users: dict[int, JSONDict] = {}
        self._user_messages: dict[int, list[int]] = defaultdict(list)
        self._bot_messages: dict[tuple[int, int], JSONDict] = {}
        self._log: dict[int, list[JSONDict]] = defaultdict(list)
        self._sent_times: deque[float] = deque()
        self._last_sent_by_chat: dict[int, float] = {}
        self._count_429 = 0
        self._pending_callbacks: set[str] = set()
        self._handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "close": self._true,
            "logOut": self._true,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendDocument": self._send_document,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "answerCallbackQuery": self._answer_callback_query,
            "sendChatAction": self._send_chat_action,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setChatMenuButton": self._set_chat_menu_button,
            "getChatMenuButton": self._get_chat_menu_button,
        }

    # ----------------------------------------------------------------- the HTTP endpoint

    async def _endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return _error_response(ApiError(401, "Unauthorized"))
        method = _CANONICAL.get(request.path_params["method"].lower())
        if method is None:
            return _error_response(ApiError(404, "Not Found: method not found"))
        try:
            raw = await read_params(request)
        except ApiError as error:
            return self._refuse(error)
        try:
            params = validate_params(method, raw, strict=self.strict_params)
        except ApiError as error:
            self.calls.append((method, raw))
            return self._refuse(error)
        self.calls.append((method, params))
        try:
            result = await self._handlers[method](params)
        except ApiError as error:
            return self._refuse(error)
        return JSONResponse({"ok": True, "result": result})

    def _refuse(self, error: ApiError) -> JSONResponse:
        if error.code == 429:
            self._count_429 += 1
            self.refused_429_at.append(time.time())
        return _error_response(error)

    # ----------------------------------------------------------------- waking waiters

    # ----------------------------------------------------------------- update builders

    def _sender(
        self,
        chat_id: int,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        user_id: int | None = None,
    ) -> JSONDict:
        """The user writing in this chat; names given once are remembered for later updates."""
        known = self._users.get(chat_id)
        defaults = first_name in (None, DEFAULT_FIRST_NAME) and last_name is None and username is None
        if known is not None and defaults and user_id in (None, known["id"]):
            return dict(known)
        default_id = chat_id if chat_id > 0 else 100_000 + abs(chat_id) % 100_000
        user = make_user(user_id or default_id, first_name or DEFAULT_FIRST_NAME, last_name, username)
        self._users[chat_id] = user
        return dict(user)

    def _incoming(self, chat_id: int, sender: JSONDict, content: JSONDict) -> JSONDict:
        message_id = next(self._message_ids)
        self._user_messages[chat_id].append(message_id)
        chat = make_chat(chat_id, sender)
        return {"message_id": message_id, "from": sender, "chat": chat, "date": now(), **content}

    def _message_update(self, chat_id: int, content: JSONDict, sender: JSONDict | None = None) -> JSONDict:
        message = self._incoming(chat_id, sender or self._sender(chat_id), content)
        return make_update(next(self._update_ids), "message", message)

    def text_update(
        self,
        chat_id: int,
        text: str,
        first_name: str = DEFAULT_FIRST_NAME,
        last_name: str | None = None,
        username: str | None = None,
        *,
        user_id: int | None = None,
    ) -> JSONDict:
        """A text message update (with a bot_command entity when the text starts with "/")."""
        sender = self._sender(chat_id, first_name, last_name, username, user_id)
        content: JSONDict = {"text": text}
        if entities := command_entities(text):
            content["entities"] = entities
        return self._message_update(chat_id, content, sender)

    def callback_update(self, chat_id: int, data: str, message_id: int | None = None) -> JSONDict:
        """A callback_query update for a button on a bot message (default: the chat's last one)."""
        message = self._callback_message(chat_id, message_id)
        query_id = f"cq{next(self._callback_ids)}"
        self._pending_callbacks.add(query_id)
        query = {
            "id": query_id,
            "from": self._sender(chat_id),
            "chat_instance": f"ci{chat_id}",
            "data": data,
            "message": message,
        }
        return make_update(next(self._update_ids), "callback_query", query)

    def _callback_message(self, chat_id: int, message_id: int | None) -> JSONDict:
        if message_id is None:
            if not self._log.get(chat_id):
                raise ValueError(f"no bot message in chat {chat_id} to press a button on")
            message_id = self._log[chat_id][-1]["message_id"]
        current = self._bot_messages.get((chat_id, message_id))
        if current is not None:
            return copy.deepcopy(current)
        return {
            "message_id": message_id,
            "from": self.bot_user,
            "chat": make_chat(chat_id),
            "date": now(),
            "text": "",
        }

    def contact_update(
        self,
        chat_id: int,
        phone_number: str,
        first_name: str = DEFAULT_FIRST_NAME,
        user_id: int | None = None,
        *,
        include_user_id: bool = True,
    ) -> JSONDict:
        """A contact message; by default the sender's own contact, as a request_contact button sends."""
        sender = self._sender(chat_id)
        contact: JSONDict = {"phone_number": phone_number, "first_name": first_name}
        if include_user_id:
            contact["user_id"] = user_id if user_id is not None else sender["id"]
        return self._message_update(chat_id, {"contact": contact}, sender)

    def sticker_update(self, chat_id: int) -> JSONDict:
        sticker = {
            **self._file("sticker"),
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }
        return self._message_update(chat_id, {"sticker": sticker})

    def photo_update(self, chat_id: int, caption: str | None = None) -> JSONDict:
        sizes = [{**self._file("photo"), "width": w, "height": h} for w, h in ((90, 67), (800, 600))]
        content: JSONDict = {"photo": sizes}
        if caption:
            content["caption"] = caption
        return self._message_update(chat_id, content)

    def voice_update(self, chat_id: int) -> JSONDict:
        voice = {**self._file("voice"), "duration": 3, "mime_type": "audio/ogg", "file_size": 4_096}
        return self._message_update(chat_id, {"voice": voice})

    def location_update(
        self, chat_id: int, latitude: float = 21.0285, longitude: float = 105.8542
    ) -> JSONDict:
        return self._message_update(chat_id, {"location": {"latitude": latitude, "longitude": longitude}})

    def document_update(
        self, chat_id: int, file_name: str = "tai_lieu.pdf", mime_type: str = "application/pdf"
    ) -> JSONDict:
        document = {
            **self._file("document"),
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": 12_345,
        }
        return self._message_update(chat_id, {"document": document})

    def edited_update(self, chat_id: int, text: str, message_id: int | None = None) -> JSONDict:
        """An edited_message update for the user's last message in the chat (or `message_id`)."""
        sender = self._sender(chat_id)
        known = self._user_messages.get(chat_id)
        target = message_id or (known[-1] if known else next(self._message_ids))
        message: JSONDict = {
            "message_id": target,
            "from": sender,
            "chat": make_chat(chat_id, sender),
            "date": now() - 1,
            "edit_date": now(),
            "text": text,
        }
        if entities := command_entities(text):
            message["entities"] = entities
        return make_update(next(self._update_ids), "edited_message", message)

    def _file(self, kind: str) -> JSONDict:
        number = next(self._file_ids)
        return {"file_id": f"{kind.upper()}-{number}", "file_unique_id": f"u{kind}{number}"}

    # ----------------------------------------------------------------- queueing updates
    # Each send_*/press_button/edited_message builds one update, queues it and returns its update_id.

    def bot_status_update(self, chat_id: int, status: str) -> JSONDict:
        """A my_chat_member update: the user blocked ("kicked") or restarted ("member") the bot."""
        old = "member" if status == "kicked" else "kicked"

        def member(state: str) -> JSONDict:
            return {
                "user": self.bot_user,
                "status": state,
                **({"until_date": 0} if state == "kicked" else {}),
            }

        payload = {
            "chat": make_chat(chat_id),
            "from": make_user(chat_id, "Người dùng"),
            "date": now(),
            "old_chat_member": member(old),
            "new_chat_member": member(status),
        }
        return make_update(next(self._update_ids), "my_chat_member", payload)

    def enqueue(self, update: JSONDict) -> int:
        """Queue an update for getUpdates; return its update_id."""
        if not self._allowed_updates or update_kind(update) in self._allowed_updates:
            self._queue.append(update)
            self._wake()
        return update["update_id"]

    def send_text(
        self,
        chat_id: int,
        text: str,
        first_name: str = DEFAULT_FIRST_NAME,
        last_name: str | None = None,
        username: str | None = None,
    ) -> int:
        return self.enqueue(self.text_update(chat_id, text, first_name, last_name, username))

    def press_button(self, chat_id: int, data: str, message_id: int | None = None) -> int:
        return self.enqueue(self.callback_update(chat_id, data, message_id))

    def send_contact(
        self,
        chat_id: int,
        phone_number: str,
        first_name: str = DEFAULT_FIRST_NAME,
        user_id: int | None = None,
    ) -> int:
        return self.enqueue(self.contact_update(chat_id, phone_number, first_name, user_id))

    def send_sticker(self, chat_id: int) -> int:
        return self.enqueue(self.sticker_update(chat_id))

    def send_photo(self, chat_id: int) -> int:
        return self.enqueue(self.photo_update(chat_id))

    def send_voice(self, chat_id: int) -> int:
        return self.enqueue(self.voice_update(chat_id))

    def send_location(self, chat_id: int) -> int:
        return self.enqueue(self.location_update(chat_id))

    def send_document(self, chat_id: int) -> int:
        return self.enqueue(self.document_update(chat_id))

    def edited_message(self, chat_id: int, text: str) -> int:
        return self.enqueue(self.edited_update(chat_id, text))

    # ----------------------------------------------------------------- inspecting the bot

    def messages(self, chat_id: int) -> list[JSONDict]:
        """Messages the bot sent to the chat (sendMessage, sendDocument, editMessageText), in order.

        Each is the Message the API returned plus "reply_markup" (the markup the bot sent, any
        kind, or None), "raw_text" (text or caption before parsing), "parse_mode" and "method".
        """
        return copy.deepcopy(self._log.get(chat_id, []))

    async def wait_for_messages(self, chat_id: int, count: int, timeout: float = 10.0) -> list[JSONDict]:
        """Wait until the chat has at least `count` bot messages in total; return them all."""
        if not await self._wait_until(lambda: len(self._log.get(chat_id, [])) >= count, timeout):
            got = self.messages(chat_id)
            expected = f"expected {count} bot message(s) in chat {chat_id} within {timeout}s"
            raise AssertionError(f"{expected}, got {len(got)}: {got!r}")
        return self.messages(chat_id)

    def last_buttons(self, chat_id: int) -> list[tuple[str, str]]:
        """(text, callback_data) of the inline keyboard of the last bot message that had one."""
        for message in reversed(self._log.get(chat_id, [])):
            markup = message.get("reply_markup") or {}
            if "inline_keyboard" in markup:
                rows = markup["inline_keyboard"]
                return [(button["text"], button.get("callback_data", "")) for row in rows for button in row]
        return []

    def current_message(self, chat_id: int, message_id: int) -> JSONDict | None:
        """The bot message as it is now, after any edits (including editMessageReplyMarkup)."""
        message = self._bot_messages.get((chat_id, message_id))
        return copy.deepcopy(message) if message is not None else None

    def calls_to(self, method: str) -> list[JSONDict]:
        """The params of every call to `method`, in order."""
        return [params for name, params in self.calls if name == method]

    def received(self, chats: Iterable[int], needle: str) -> Counter[int]:
        """How many bot messages containing ``needle`` each chat got; chats that got none are left out.

        Reads the log without copying it, so it is cheap enough to poll over a thousand chats.
        """
        counts: Counter[int] = Counter()
        for chat in chats:
            if n := sum(needle in m.get("text", "") for m in self._log.get(chat, [])):
                counts[chat] = n
        return counts

    def count_429(self) -> int:
        """How many requests were refused with HTTP 429."""
        return self._count_429

    def my_commands(self, scope: JSONDict | None = None, language_code: str = "") -> list[JSONDict]:
        """The command list set for a scope (default scope) and language."""
        return copy.deepcopy(
            self.commands.get(command_scope_key({"scope": scope, "language_code": language_code}), [])
        )

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        return copy.deepcopy(self._queue)

    # ----------------------------------------------------------------- methods: bot and updates

    async def _true(self, params: JSONDict) -> bool:
        return True

    async def _get_me(self, params: JSONDict) -> JSONDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        self._confirm(params.get("offset", 0))
        if "allowed_updates" in params:
            self._allowed_updates = self._checked_allowed_updates(params["allowed_updates"])
        limit = min(max(params.get("limit", 100), 1), 100)
        timeout = max(params.get("timeout", 0), 0)
        if timeout and not self._stopping:
            await self._wait_until(lambda: bool(self._queue) or self._stopping, timeout)
        return copy.deepcopy(self._queue[:limit])

    def _confirm(self, offset: int) -> None:
        """Forget updates below a positive offset; a negative one keeps the last -offset updates."""
        if offset > 0:
            self._queue = [update for update in self._queue if update["update_id"] >= offset]
        elif offset < 0:
            self._queue = self._queue[offset:]

    @staticmethod
    def _checked_allowed_updates(value: object) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise bad_request("can't parse allowed updates JSON object")
        return list(value)

    async def _set_webhook(self, params: JSONDict) -> bool:
        url = params["url"]
        if params.get("drop_pending_updates"):
            self._queue.clear()
        if not url:
            self.webhook = None
            return True
        self._check_webhook_url(url)
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_RE.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters or has a wrong length")
        allowed = params.get("allowed_updates")
        if allowed is not None:
            allowed = self._checked_allowed_updates(allowed)
        max_connections = min(max(params.get("max_connections", 40), 1), 100)
        self.webhook = WebhookConfig(url, secret, max_connections, allowed)
        return True

    def _check_webhook_url(self, url: str) -> None:
        parts = urlsplit(url)
        if not parts.netloc:
            raise bad_request("bad webhook: Failed to resolve host: Name or service not known")
        if not self.require_https_webhook:
            return
        if parts.scheme != "https":
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if (parts.port or 443) not in _WEBHOOK_PORTS:
            raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")

    async def _delete_webhook(self, params: JSONDict) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._queue.clear()
        return True

    async def _get_webhook_info(self, params: JSONDict) -> JSONDict:
        info: JSONDict = {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._queue),
        }
        if self.webhook is not None:
            info["max_connections"] = self.webhook.max_connections
            if self.webhook.allowed_updates is not None:
                info["allowed_updates"] = self.webhook.allowed_updates
        return info

    # ----------------------------------------------------------------- methods: sending

    @staticmethod
    def _target_chat(params: JSONDict) -> int:
        chat_id = params["chat_id"]
        if not isinstance(chat_id, int):
            raise bad_request("chat not found")
        return chat_id

    def _check_blocked(self, chat_id: int) -> None:
        if chat_id in self.blocked_chats:
            raise ApiError(403, "Forbidden: bot was blocked by the user")

    def _check_flood(self, chat_id: int) -> None:
        """Apply the injected rate limits; an accepted send counts towards them."""
        moment = time.monotonic()
        while self._sent_times and moment - self._sent_times[0] >= 1.0:
            self._sent_times.popleft()
        if self.flood_limit_per_sec is not None and len(self._sent_times) >= self.flood_limit_per_sec:
            raise self._too_many_requests()
        last = self._last_sent_by_chat.get(chat_id)
        if self.per_chat_limit and last is not None and moment - last < 1.0:
            raise self._too_many_requests()
        self._sent_times.append(moment)
        self._last_sent_by_chat[chat_id] = moment

    def _too_many_requests(self) -> ApiError:
        seconds = int(self.retry_after_seconds)
        return ApiError(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})

    def _format(
        self, text: str, parse_mode: str | None, entities: object, *, limit: int, caption: bool
    ) -> tuple[str, list[JSONDict]]:
        """Parse entities, trim, and check the length as Telegram does for a text or caption."""
        mode = (parse_mode or "").lower()
        if mode == "html":
            try:
                text, parsed = parse_html(text, strict=self.strict_html)
            except HtmlError as error:
                raise bad_request(f"can't parse entities: {error}") from None
        elif mode in ("", "markdown", "markdownv2"):
            parsed = list(entities) if isinstance(entities, list) and not mode else []
        else:
            raise bad_request("unsupported parse_mode")
        text, parsed = strip_text(text, parsed)
        if not text and not caption:
            raise bad_request("message text is empty")
        if len(text) > limit:
            raise bad_request("message caption is too long" if caption else "message is too long")
        return text, parsed

    def _markup(self, params: JSONDict, *, inline_only: bool) -> JSONDict | None:
        if params.get("reply_markup") is None:
            return None
        return check_reply_markup(params["reply_markup"], inline_only=inline_only)

    def _record_sent(
        self, chat_id: int, method: str, params: JSONDict, content: JSONDict, markup: JSONDict | None
    ) -> JSONDict:
        """Store a new bot message, log it, wake waiters, and return the API result."""
        message: JSONDict = {
            "message_id": next(self._message_ids),
            "from": self.bot_user,
            "chat": make_chat(chat_id, self._users.get(chat_id)),
            "date": now(),
            **content,
        }
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # Telegram echoes inline keyboards only
        self._bot_messages[(chat_id, message["message_id"])] = message
        self._log_message(chat_id, method, params, message, markup)
        return copy.deepcopy(message)

    def _log_message(
        self, chat_id: int, method: str, params: JSONDict, message: JSONDict, markup: JSONDict | None
    ) -> None:
        entry = copy.deepcopy(message)
        entry.update(
            reply_markup=copy.deepcopy(markup),
            raw_text=params.get("text", params.get("caption")),
            parse_mode=params.get("parse_mode"),
            method=method,
            at=time.time(),
        )
        self._log[chat_id].append(entry)
        self.sent_log.append((entry["at"], chat_id))
        self._wake()

    async def _send_message(self, params: JSONDict) -> JSONDict:
        chat_id = self._target_chat(params)
        text, entities = self._format(
            params["text"],
            params.get("parse_mode"),
            params.get("entities"),
            limit=MAX_TEXT_LENGTH,
            caption=False,
        )
        markup = self._markup(params, inline_only=False)
        self._check_blocked(chat_id)
        self._check_flood(chat_id)
        content: JSONDict = {"text": text}
        if entities:
            content["entities"] = entities
        return self._record_sent(chat_id, "sendMessage", params, content, markup)

    async def _send_document(self, params: JSONDict) -> JSONDict:
        chat_id = self._target_chat(params)
        caption, entities = self._format(
            params.get("caption", ""),
            params.get("parse_mode"),
            params.get("caption_entities"),
            limit=MAX_CAPTION_LENGTH,
            caption=True,
        )
        markup = self._markup(params, inline_only=False)
        self._check_blocked(chat_id)
        content: JSONDict = {"document": self._document(params["document"])}
        if caption:
            content["caption"] = caption
        if entities:
            content["caption_entities"] = entities
        return self._record_sent(chat_id, "sendDocument", params, content, markup)

    def _document(self, document: object) -> JSONDict:
        file_ids = self._file("document")
        if isinstance(document, UploadedFile):
            self.uploads.append(document)
            return {
                **file_ids,
                "file_name": document.filename or "document",
                "mime_type": document.content_type or "application/octet-stream",
                "file_size": document.size,
            }
        if isinstance(document, str) and document.strip():
            return {**file_ids, "file_name": document.rsplit("/", 1)[-1]}
        raise bad_request("there is no document in the request")

    async def _send_chat_action(self, params: JSONDict) -> bool:
        chat_id = self._target_chat(params)
        if params["action"] not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self._check_blocked(chat_id)
        # Not a message: Telegram's flood limits count messages, so chat actions are not counted here.
        self.chat_actions.append((time.time(), chat_id, params["action"]))
        return True

    def chat_actions_in(self, chat_id: int) -> list[float]:
        """When each chat action accepted in the chat arrived (time.time()), in order."""
        return [at for at, chat, _ in self.chat_actions if chat == chat_id]

    # ----------------------------------------------------------------- methods: editing and callbacks

    def _editable(self, params: JSONDict) -> tuple[int, JSONDict]:
        """The stored bot message named by chat_id + message_id."""
        if "chat_id" not in params:
            raise bad_request("chat_id is empty")
        if "message_id" not in params:
            raise bad_request("message identifier is not specified")
        chat_id = self._target_chat(params)
        message = self._bot_messages.get((chat_id, params["message_id"]))
        if message is None:
            if params["message_id"] in self._user_messages.get(chat_id, []):
                raise bad_request("message can't be edited")
            raise bad_request("message to edit not found")
        return chat_id, message

    async def _edit_message_text(self, params: JSONDict) -> JSONDict | bool:
        if "text" not in params:
            raise bad_request("message text is empty")
        if "inline_message_id" in params:
            return True
        chat_id, message = self._editable(params)
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        text, entities = self._format(
            params["text"],
            params.get("parse_mode"),
            params.get("entities"),
            limit=MAX_TEXT_LENGTH,
            caption=False,
        )
        markup = self._markup(params, inline_only=True)
        edited = {key: value for key, value in message.items() if key not in ("entities", "reply_markup")}
        edited.update(text=text, edit_date=now())
        if entities:
            edited["entities"] = entities
        if markup is not None:
            edited["reply_markup"] = markup  # no reply_markup removes the inline keyboard
        self._save_edit(chat_id, message, edited)
        self._log_message(chat_id, "editMessageText", params, edited, markup)
        return copy.deepcopy(edited)

    async def _edit_message_reply_markup(self, params: JSONDict) -> JSONDict | bool:
        if "inline_message_id" in params:
            return True
        chat_id, message = self._editable(params)
        markup = self._markup(params, inline_only=True)
        edited = {key: value for key, value in message.items() if key != "reply_markup"}
        edited["edit_date"] = now()
        if markup is not None:
            edited["reply_markup"] = markup
        self._save_edit(chat_id, message, edited)
        self._wake()
        return copy.deepcopy(edited)

    def _save_edit(self, chat_id: int, old: JSONDict, new: JSONDict) -> None:
        def content(message: JSONDict) -> JSONDict:
            return {key: value for key, value in message.items() if key != "edit_date"}

        if content(old) == content(new):
            raise bad_request(NOT_MODIFIED)
        self._bot_messages[(chat_id, new["message_id"])] = new

    async def _answer_callback_query(self, params: JSONDict) -> bool:
        query_id = params["callback_query_id"]
        if query_id not in self._pending_callbacks:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        if len(params.get("text", "")) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self._pending_callbacks.discard(query_id)
        self.callback_answers[query_id] = params
        return True

    # ----------------------------------------------------------------- methods: commands and menu

    async def _set_my_commands(self, params: JSONDict) -> bool:
        key = command_scope_key(params)
        self.commands[key] = check_commands(params["commands"])
        return True

    async def _get_my_commands(self, params: JSONDict) -> list[JSONDict]:
        return copy.deepcopy(self.commands.get(command_scope_key(params), []))

    async def _delete_my_commands(self, params: JSONDict) -> bool:
        self.commands.pop(command_scope_key(params), None)
        return True

    async def _set_chat_menu_button(self, params: JSONDict) -> bool:
        button = params.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in MENU_BUTTON_TYPES:
            raise bad_request("can't parse menu button JSON object")
        if button["type"] == "web_app" and not (
            button.get("text") and isinstance(button.get("web_app"), dict)
        ):
            raise bad_request("can't parse menu button JSON object: text and web_app are required")
        self.menu_buttons[params.get("chat_id")] = button
        return True

    async def _get_chat_menu_button(self, params: JSONDict) -> JSONDict:
        chat_id = params.get("chat_id")
        default = self.menu_buttons.get(None, {"type": "commands"})
        return copy.deepcopy(self.menu_buttons.get(chat_id, default))
