"""How the process logs: the human format (the default) or, with ``LOG_FORMAT=json``, one JSON object
per line for a log collector.

A JSON line has ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message``, the
structured extras a call passes (``extra={"inbox_id": ..., "outbox_id": ..., "channel": ...}``) and,
for an error, ``exception`` (the trace as text). Both formats go through ``bot.secrets.Redactor``:
no token, secret or quoted database row reaches a line. What the bot logs never names a producer:
ids of rows, channels, counts and error types only (the README's "Logs" section says so).

In JSON mode everything the process writes is a JSON line: the web server's own lines, Python
warnings and an error that ends the process go through the same handler.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from bot.secrets import RedactingFormatter, Redactor, secret_values
from bot.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
QUIET = {"httpx": logging.WARNING, "apscheduler": logging.WARNING}  # httpx's INFO lines hold the token

log = logging.getLogger(__name__)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, every text in it redacted."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self._redact = Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self._redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = self._value(value)
        if record.exc_info:
            entry["exception"] = self._redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = self._redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False)

    def _value(self, value: object) -> object:
        if value is None or isinstance(value, bool | int | float):
            return value
        return self._redact(str(value))


def formatter(settings: Settings) -> logging.Formatter:
    """The formatter ``LOG_FORMAT`` asks for, redacting the settings' secrets."""
    if settings.log_format == "json":
        return JsonFormatter(secret_values(settings))
    return RedactingFormatter(TEXT_FORMAT, secret_values(settings))


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    """The root logger writes to standard error in the chosen format; noisy libraries are quieted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(settings))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name, quiet in QUIET.items():
        logging.getLogger(name).setLevel(quiet)
    if settings.log_format == "json":
        logging.captureWarnings(True)
        sys.excepthook = _log_uncaught


def log_to_file(settings: Settings, path: Path) -> None:
    """Log to ``path`` (owner only) instead of the terminal, in the same format."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(formatter(settings))
    root.addHandler(file_handler)
    path.chmod(0o600)


def announce(settings: Settings, text: str) -> None:
    """A line for the operator at start-up: printed, or in JSON mode logged like everything else."""
    if settings.log_format == "json":
        log.info(text)
    else:
        print(text, flush=True)


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    log.critical("the process stopped on an error", exc_info=(kind, error, trace))
