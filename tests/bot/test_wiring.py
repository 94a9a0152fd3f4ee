"""``build_services`` builds the application services from the settings object, and every part of
the process (dialogue, dashboard, command line, scheduler) works over that one set."""

from __future__ import annotations

from pathlib import Path

from bot.services import build_services
from bot.settings import load_settings
from services.reminders import ReminderSettings


def test_staff_directory_and_reminder_settings_come_from_the_settings(
    database_url: str, tmp_path: Path
) -> None:
    settings = load_settings(
        _env_file=None,
        database_url=database_url,
        data_dir=tmp_path,
        staff_telegram_ids="11,22",
        reminder_offsets_days="1,7,7",
        reminder_hour=9,
        timezone="Asia/Bangkok",
        data_retention_months=12,
    )
    running = build_services(settings)
    try:
        core = running.core
        assert core.staff.configured == frozenset({"11", "22"})
        assert core.reminders.settings == ReminderSettings(
            offsets_days=(7, 1), hour=9, timezone="Asia/Bangkok"
        )
        assert core.personal_data.retention_months == 12
        assert core.channels == ("console",)  # no bot token: broadcasts and reminders go to the console
        assert running.dialogue.services is core
    finally:
        running.close()
