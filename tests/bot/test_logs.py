"""The log formats (``bot.logs``): JSON lines with the structured extras, and no secret or quoted
personal value in either format."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from pydantic import BaseModel, SecretStr, ValidationError

from bot.logs import JsonFormatter, formatter
from bot.settings import Settings

TOKEN = "123456789:AAH-secret-token-value-for-the-bot-xyz"


def record(message: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    info = sys.exc_info() if exc else None
    made = logging.LogRecord("bot.inbox", logging.ERROR, __file__, 1, message, args, info)
    made.__dict__.update(extra)
    return made


def test_a_json_line_has_time_level_logger_message_and_extras() -> None:
    line = JsonFormatter([]).format(record("update %s failed", 7, inbox_id=7, channel="telegram"))
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "bot.inbox"
    assert entry["message"] == "update 7 failed"
    assert entry["inbox_id"] == 7 and entry["channel"] == "telegram"
    assert entry["time"].startswith("20") and "T" in entry["time"]
    assert "\n" not in line


def test_exceptions_are_kept_without_what_they_quote() -> None:
    class Phone(BaseModel):
        number: int

    typed = "em là Hoà 0912345678"  # (a trace shows the failing source line: not this one)
    try:
        try:
            Phone(number=typed)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise RuntimeError(
                "duplicate key value\nDETAIL:  Key (channel, external_id)=(telegram, 55501) already exists."
            ) from exc
    except RuntimeError:
        entry = json.loads(JsonFormatter([TOKEN]).format(record("failed", exc=True, url=f"/bot{TOKEN}/x")))
    assert "RuntimeError" in entry["exception"] and "ValidationError" in entry["exception"]
    assert "Key (channel, external_id)=([redacted]) already exists" in entry["exception"]
    for leaked in ("55501", "0912345678", "Hoà", TOKEN):
        assert leaked not in json.dumps(entry, ensure_ascii=False)
    assert entry["url"] == "/bot[redacted]/x"


def test_number_parsing_errors_lose_the_text_they_quote() -> None:
    typed = "số em 0912 345 678"
    try:
        int(typed)
    except ValueError:
        line = JsonFormatter([]).format(record("failed", exc=True))
    assert "invalid literal for int() with base 10: [redacted]" in json.loads(line)["exception"]
    assert "0912" not in line


def test_log_format_picks_the_formatter(tmp_path: Path) -> None:
    token = SecretStr(TOKEN)
    text = Settings(_env_file=None, data_dir=tmp_path, telegram_bot_token=token)
    as_json = Settings(_env_file=None, data_dir=tmp_path, log_format="JSON", telegram_bot_token=token)
    assert not isinstance(formatter(text), JsonFormatter)
    assert isinstance(formatter(as_json), JsonFormatter)
    assert TOKEN not in formatter(text).format(record("calling %s", f"https://x/bot{TOKEN}/getMe"))
