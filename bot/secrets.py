"""Secrets of the running process: the dashboard's session key, and keeping every secret out of logs.

With no ``SESSION_SECRET`` the first start makes a random key and keeps it in the data folder,
readable by the owner only (mode 0600), so sessions survive a restart and every process that shares
the folder shares the key. Several machines need the same ``SESSION_SECRET`` set explicitly.

``RedactingFormatter`` replaces the bot tokens and secrets of the settings (and anything shaped like
a Telegram bot token) in every log line, exception traces included, and the values an error quotes:
PostgreSQL's ``DETAIL: Key (channel, external_id)=(telegram, 12345)`` names a chat, pydantic's
``input_value=...`` and Python's ``invalid literal for int()`` repeat what was typed.
``bot.logs`` uses the same ``Redactor`` for JSON lines.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from pathlib import Path

from bot.settings import Settings

SESSION_KEY_FILE = "session_secret"
_TOKEN_SHAPE = re.compile(r"(?<![0-9])\d{5,}:[A-Za-z0-9_-]{20,}")  # also inside ".../bot<token>/..."
# PostgreSQL quotes the conflicting row's values in a constraint error; the columns are kept.
_KEY_VALUES = re.compile(r"(Key \([^)]*\)=\()(.*?)(\)( already exists| is not present| is still referenced))")
# A pydantic validation error quotes the value it refused (what a producer typed, say).
_INPUT_VALUE = re.compile(r"input_value=.*?, input_type=")
# Python's number parsing quotes the text it could not read.
_LITERAL = re.compile(
    r"(invalid literal for int\(\) with base \d+: |could not convert string to float: )(['\"]).*?\2"
)
REDACTED = "[redacted]"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (owner only) if it does not exist."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def session_key(settings: Settings) -> str:
    """``SESSION_SECRET``, or the key kept in the data folder (made on the first start)."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value()
    path = ensure_private_dir(settings.data_dir) / SESSION_KEY_FILE
    with contextlib.suppress(FileExistsError):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48))
    os.chmod(path, 0o600)
    key = path.read_text().strip()
    if len(key) < 32:  # an empty or damaged file (a start cut short): make a new key
        path.write_text(secrets.token_urlsafe(48))
        key = path.read_text().strip()
    return key


def secret_values(settings: Settings) -> list[str]:
    values = [
        secret.get_secret_value()
        for secret in (
            settings.telegram_bot_token,
            settings.zalo_bot_token,
            settings.telegram_webhook_secret,
            settings.zalo_webhook_secret,
            settings.session_secret,
            settings.metrics_token,
        )
        if secret is not None and secret.get_secret_value()
    ]
    return sorted(values, key=len, reverse=True)


class Redactor:
    """Takes the secrets (and what a database error quotes of a row) out of a text."""

    def __init__(self, secret_values: list[str]):
        self._secrets = [s for s in secret_values if len(s) >= 6]

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _KEY_VALUES.sub(rf"\g<1>{REDACTED}\g<3>", text)
        text = _INPUT_VALUE.sub(f"input_value={REDACTED}, input_type=", text)
        text = _LITERAL.sub(rf"\g<1>{REDACTED}", text)
        return _TOKEN_SHAPE.sub(REDACTED, text)


class RedactingFormatter(logging.Formatter):
    def __init__(self, fmt: str, secret_values: list[str]):
        super().__init__(fmt)
        self._redact = Redactor(secret_values)

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


def redact_logs(settings: Settings) -> None:
    """Every handler of the root logger formats through ``RedactingFormatter`` from now on."""
    values = secret_values(settings)
    for handler in logging.getLogger().handlers:
        fmt = handler.formatter._fmt if handler.formatter is not None else None
        handler.setFormatter(RedactingFormatter(fmt or "%(levelname)s %(name)s: %(message)s", values))
