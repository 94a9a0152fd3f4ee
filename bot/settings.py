"""Process settings, read once from the environment (and ``.env``) with pydantic-settings.

Secure by default: ``ENVIRONMENT`` takes known values only; a configured ``SESSION_SECRET`` must be
long and random (with none, ``bot.secrets`` makes one and keeps it in the data folder); in
production, webhook secrets must be too. ``load_settings`` reports problems by variable name and
reason only, never with the values (a token must not reach a terminal or a log).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
ENVIRONMENTS = ("development", "production")
LOG_FORMATS = ("text", "json")
MIN_SECRET_LENGTH = 32
MIN_DISTINCT_CHARACTERS = 10
_PLACEHOLDERS = ("changeme", "change-me", "change_me", "secret", "placeholder", "example", "password")


class SettingsError(ValueError):
    """The settings cannot be used; the message names the variables and why, never their values."""


def _weak(secret: str) -> str | None:
    """Why ``secret`` is not a real secret, or None."""
    if len(secret.encode()) < MIN_SECRET_LENGTH:
        return f"at least {MIN_SECRET_LENGTH} characters of random text"
    if len(set(secret)) < MIN_DISTINCT_CHARACTERS or any(p in secret.lower() for p in _PLACEHOLDERS):
        return "random text, not a placeholder or a repeated character"
    return None


class Settings(BaseSettings):
    """Every environment variable the bot reads; see ``.env.example``."""

    # The project's .env, wherever the command is run from.
    model_config = SettingsConfigDict(
        env_file=PROJECT_ROOT / ".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: str = Field(default="development", description="development | production (any case)")
    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    zalo_bot_token: SecretStr | None = None
    zalo_api_base_url: str = "https://bot-api.zaloplatforms.com"
    zalo_webhook_url: str | None = None
    zalo_webhook_secret: SecretStr | None = None
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""  # empty: a SQLite file in data_dir
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    session_secret: SecretStr | None = None
    metrics_token: SecretStr | None = None
    log_format: str = Field(default="text", description="text | json (one JSON object per line)")
    trusted_proxies: Annotated[list[str], NoDecode] = []
    data_retention_months: int = Field(default=24, ge=1, le=120)
    staff_telegram_ids: Annotated[list[int], NoDecode] = []
    timezone: str = "Asia/Ho_Chi_Minh"
    broadcast_rate_per_sec: float = Field(default=25.0, gt=0)
    zalo_rate_per_sec: float = Field(default=10.0, gt=0)
    reminder_offsets_days: Annotated[list[int], NoDecode] = [14, 3, 1]
    reminder_hour: int = Field(default=8, ge=0, le=23)
    inbox_max_backlog: int = Field(
        default=2000,
        ge=0,
        description="updates waiting (all processes) from which webhooks answer 503 and polling "
        "pauses; 0: no bound",
    )
    sweep_interval_seconds: float = Field(
        default=60.0, gt=0, description="how often due reminders are looked for"
    )
    knowledge_check_seconds: float = Field(
        default=3.0,
        gt=0,
        le=10,
        description="how often a process looks for a newly published knowledge version",
    )

    @field_validator("staff_telegram_ids", "reminder_offsets_days", mode="before")
    @classmethod
    def _comma_separated_ints(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.replace(";", ",").split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_networks(cls, value: object) -> object:
        parts = value.replace(";", ",").split(",") if isinstance(value, str) else value
        if not isinstance(parts, list):
            return value
        networks = []
        for part in (str(p).strip() for p in parts):
            if part:
                try:
                    networks.append(str(ipaddress.ip_network(part, strict=False)))
                except ValueError as exc:
                    raise ValueError("each entry must be an IP address or a network like 10.0.0.0/8") from exc
        return networks

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        normalised = value.strip().lower()
        if normalised not in LOG_FORMATS:
            raise ValueError(f"must be one of {', '.join(LOG_FORMATS)}")
        return normalised

    @field_validator("environment")
    @classmethod
    def _known_environment(cls, value: str) -> str:
        normalised = value.strip().lower()
        if normalised not in ENVIRONMENTS:
            raise ValueError(f"must be one of {', '.join(ENVIRONMENTS)} (any case)")
        return normalised

    @field_validator("session_secret", mode="before")
    @classmethod
    def _session_secret_is_random(cls, value: object) -> object:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(raw, str) and not raw.strip():
            return None  # unset: one is generated and kept in the data folder
        if isinstance(raw, str) and (why := _weak(raw)):
            raise ValueError(f"must be {why} (or leave it unset: one is generated)")
        return value

    @field_validator("database_url", mode="after")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator(
        "telegram_bot_token",
        "zalo_bot_token",
        "telegram_webhook_secret",
        "zalo_webhook_secret",
        "telegram_webhook_url",
        "zalo_webhook_url",
        "metrics_token",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _defaults_and_production_secrets(self) -> Settings:
        self.data_dir = _in_project(self.data_dir)
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'khuyencong.db'}"
        self.database_url = _sqlite_in_project(self.database_url)
        if self.environment != "production":
            return self
        secrets = {}
        if self.telegram_webhook_url:
            secrets["TELEGRAM_WEBHOOK_SECRET"] = self.telegram_webhook_secret
        if self.zalo_webhook_url:
            secrets["ZALO_WEBHOOK_SECRET"] = self.zalo_webhook_secret
        if self.metrics_token is not None:
            secrets["METRICS_TOKEN"] = self.metrics_token
        for name, secret in secrets.items():
            why = _weak(secret.get_secret_value() if secret else "")
            if why:
                raise ValueError(f"{name} must be {why} in production")
        return self

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_bot_token is not None

    @property
    def zalo_enabled(self) -> bool:
        return self.zalo_bot_token is not None

    def telegram_token(self) -> str:
        """The Telegram bot token, for the channel that needs it (``ValueError`` when unset)."""
        return _required(self.telegram_bot_token, "TELEGRAM_BOT_TOKEN")

    def zalo_token(self) -> str:
        """The Zalo bot token, for the channel that needs it (``ValueError`` when unset)."""
        return _required(self.zalo_bot_token, "ZALO_BOT_TOKEN")

    @property
    def secure_cookies(self) -> bool:
        """Dashboard cookies only over HTTPS in production (the development server is plain HTTP)."""
        return self.environment == "production"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _in_project(path: Path) -> Path:
    """A relative path (``DATA_DIR=data``) is in the project folder, not wherever the command runs."""
    path = path.expanduser()
    return (path if path.is_absolute() else PROJECT_ROOT / path).resolve()


_SQLITE_FILE = re.compile(r"^(sqlite(?:\+\w+)?:///)([^?]*)(\?.*)?$")


def _sqlite_in_project(url: str) -> str:
    """``sqlite:///data/kc.db`` (a relative file) is the project's ``data/kc.db``, from any folder."""
    found = _SQLITE_FILE.match(url)
    if found is None:
        return url
    prefix, database, query = found.group(1), found.group(2), found.group(3) or ""
    if not database or database == ":memory:" or database.startswith(("file:", "/", "~")):
        return url
    return f"{prefix}{PROJECT_ROOT / database}{query}"


def _required(secret: SecretStr | None, name: str) -> str:
    if secret is None:
        raise ValueError(f"{name} is not set")
    return secret.get_secret_value()


def load_settings(**values: Any) -> Settings:
    """Settings from the environment (``values`` override it); ``SettingsError`` says what is wrong
    by variable name, without echoing any value."""
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False, include_context=False):
            name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid settings:\n" + "\n".join(f"  {p}" for p in problems)) from None
