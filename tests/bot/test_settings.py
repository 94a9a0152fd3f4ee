"""Settings from the environment: comma lists, empty values, and refused placeholder secrets."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import PROJECT_ROOT, Settings


def test_defaults_need_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TELEGRAM_BOT_TOKEN", "ZALO_BOT_TOKEN", "DATABASE_URL", "STAFF_TELEGRAM_IDS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert not settings.telegram_enabled and not settings.zalo_enabled
    # Under the project's data folder whatever the working directory (no stray ./data/ elsewhere).
    assert settings.database_url == f"sqlite:///{PROJECT_ROOT / 'data' / 'khuyencong.db'}"
    assert settings.timezone == "Asia/Ho_Chi_Minh" and settings.broadcast_rate_per_sec == 25


def test_relative_paths_are_in_the_project_whatever_the_working_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", "data")  # as .env.example suggests
    monkeypatch.setenv("DATABASE_URL", "")
    settings = Settings(_env_file=None)
    assert settings.data_dir == PROJECT_ROOT / "data"
    assert settings.database_url == f"sqlite:///{PROJECT_ROOT / 'data' / 'khuyencong.db'}"
    monkeypatch.setenv("DATABASE_URL", "sqlite:///data/other.db")
    assert Settings(_env_file=None).database_url == f"sqlite:///{PROJECT_ROOT / 'data' / 'other.db'}"
    for kept in (f"sqlite:///{tmp_path / 'kc.db'}", "sqlite:///:memory:", "postgresql://u@h/kc"):
        monkeypatch.setenv("DATABASE_URL", kept)
        assert Settings(_env_file=None).database_url == kept
    assert Settings.model_config["env_file"] == PROJECT_ROOT / ".env"  # read from any folder


def test_lists_and_empty_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAFF_TELEGRAM_IDS", "123, 456;789")
    monkeypatch.setenv("REMINDER_OFFSETS_DAYS", "7,2")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "")
    settings = Settings(_env_file=None)
    assert settings.staff_telegram_ids == [123, 456, 789]
    assert settings.reminder_offsets_days == [7, 2]
    assert settings.telegram_bot_token is None


def test_production_refuses_placeholder_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    assert Settings(_env_file=None).session_secret is None  # unset: generated and kept (bot.secrets)
    monkeypatch.setenv("SESSION_SECRET", "Wq8-zJ2v_Lr0Xc7pN4sY1tK9mB6fH3dG5aE0")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://bot.example.org/webhook/telegram")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "changeme")
    with pytest.raises(ValidationError, match="TELEGRAM_WEBHOOK_SECRET"):
        Settings(_env_file=None)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "another-real-long-secret")  # too short
    with pytest.raises(ValidationError, match="TELEGRAM_WEBHOOK_SECRET"):
        Settings(_env_file=None)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "R7u_Kp2xQ9vLm4sT8wZ1cN6bY3fH0gJ5dA")
    assert Settings(_env_file=None).secure_cookies


def test_unknown_timezone_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMEZONE", "Mars/Olympus")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)


def test_log_format_and_metrics_token(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).log_format == "text" and Settings(_env_file=None).metrics_token is None
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    assert Settings(_env_file=None).log_format == "json"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="log_format"):
        Settings(_env_file=None)
    monkeypatch.delenv("LOG_FORMAT")
    monkeypatch.setenv("METRICS_TOKEN", "")
    assert Settings(_env_file=None).metrics_token is None  # empty: /metrics needs no token
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("METRICS_TOKEN", "metrics")
    with pytest.raises(ValidationError, match="METRICS_TOKEN"):
        Settings(_env_file=None)
    monkeypatch.setenv("METRICS_TOKEN", "Zq8r4Kx1Vb7Nw2Lp9Tg5Hc3Jd6Mf0Rs2Ya")
    assert Settings(_env_file=None).metrics_token is not None
