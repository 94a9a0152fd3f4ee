"""Building the long-lived parts from settings: database (migrated), knowledge catalog, texts and
the dialogue. Nothing is built at import time."""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import Settings
from handlers.dialogue import Dialogue
from handlers.reminders_sweep import ReminderSettings
from handlers.texts import Texts
from knowledge.catalog import Catalog, load_catalog
from storage.db import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    catalog: Catalog
    texts: Texts
    dialogue: Dialogue

    def commands(self) -> dict[str, str]:
        """Bot commands the dialogue understands, with their Vietnamese descriptions."""
        described = self.texts.labels["bot_commands"]
        return {name: described[name] for name in described if name in self.dialogue.commands}

    def close(self) -> None:
        self.db.dispose()


def reminder_settings(settings: Settings) -> ReminderSettings:
    return ReminderSettings(
        offsets_days=tuple(sorted(set(settings.reminder_offsets_days), reverse=True)),
        hour=settings.reminder_hour,
        timezone=settings.timezone,
    )


def delivery_channels(settings: Settings) -> tuple[str, ...]:
    """Where broadcasts and reminders go: the configured bots, or the console chat when there is none."""
    enabled = (("telegram", settings.telegram_enabled), ("zalo", settings.zalo_enabled))
    return tuple(name for name, on in enabled if on) or ("console",)


def build_services(settings: Settings) -> Services:
    db = Database(settings.database_url)
    db.migrate()
    catalog = load_catalog()
    texts = Texts()
    dialogue = Dialogue(
        db,
        catalog,
        texts,
        timezone=settings.timezone,
        staff_telegram_ids={str(i) for i in settings.staff_telegram_ids},
        reminder_settings=reminder_settings(settings),
        channels=delivery_channels(settings),
        retention_months=settings.data_retention_months,
    )
    return Services(settings, db, catalog, texts, dialogue)
