"""Process settings, read once from the environment (and ``.env``) with pydantic-settings."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///data/khuyencong.db"
_PLACEHOLDERS = {"changeme", "change-me", "secret", "xxx", "placeholder", ""}


class Settings(BaseSettings):
    """Every environment variable the bot reads; see ``.env.example``."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: str = Field(default="development", description="'production' turns on strict checks")
    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    zalo_bot_token: SecretStr | None = None
    zalo_api_base_url: str = "https://bot-api.zaloplatforms.com"
    zalo_webhook_url: str | None = None
    zalo_webhook_secret: SecretStr | None = None
    database_url: str = DEFAULT_DATABASE_URL
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    session_secret: SecretStr = SecretStr("dev-only-session-secret-change-me-in-production")
    staff_telegram_ids: Annotated[list[int], NoDecode] = []
    timezone: str = "Asia/Ho_Chi_Minh"
    broadcast_rate_per_sec: float = Field(default=25.0, gt=0)
    zalo_rate_per_sec: float = Field(default=10.0, gt=0)
    reminder_offsets_days: Annotated[list[int], NoDecode] = [14, 3, 1]
    reminder_hour: int = Field(default=8, ge=0, le=23)
    sweep_interval_seconds: float = Field(
        default=60.0, gt=0, description="how often due reminders are looked for"
    )

    @field_validator("staff_telegram_ids", "reminder_offsets_days", mode="before")
    @classmethod
    def _comma_separated_ints(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.replace(";", ",").split(",") if part.strip()]
        return value

    @field_validator(
        "telegram_bot_token",
        "zalo_bot_token",
        "telegram_webhook_secret",
        "zalo_webhook_secret",
        "telegram_webhook_url",
        "zalo_webhook_url",
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
    def _production_secrets(self) -> Settings:
        if self.environment != "production":
            return self
        secrets = {"SESSION_SECRET": self.session_secret}
        if self.telegram_webhook_url:
            secrets["TELEGRAM_WEBHOOK_SECRET"] = self.telegram_webhook_secret
        if self.zalo_webhook_url:
            secrets["ZALO_WEBHOOK_SECRET"] = self.zalo_webhook_secret
        for name, secret in secrets.items():
            value = secret.get_secret_value() if secret else ""
            if value.lower() in _PLACEHOLDERS or "change-me" in value or len(value) < 16:
                raise ValueError(f"{name} must be set to a real secret (16+ characters) in production")
        return self

    @property
    def telegram_enabled(self) -> bool:
        return self.telegram_bot_token is not None

    @property
    def zalo_enabled(self) -> bool:
        return self.zalo_bot_token is not None

    @property
    def secure_cookies(self) -> bool:
        """Dashboard cookies only over HTTPS in production (the development server is plain HTTP)."""
        return self.environment == "production"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
