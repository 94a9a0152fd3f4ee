"""Building the long-lived parts from settings: database (migrated), the live knowledge catalog (the
newest version staff published, else the seed files), texts, the
application services (staff directory, reminder settings, delivery channels, retention) and the
dialogue over them. Nothing is built at import time."""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import Settings
from handlers.dialogue import Dialogue
from handlers.notify import ChatMessages
from handlers.texts import Texts
from knowledge.catalog import Catalog, load_catalog
from services import knowledge
from services.bundle import ServiceSet, build_service_set
from services.reminders import ReminderSettings
from storage.db import Database
from storage.repositories import Repos


@dataclass
class Services:
    settings: Settings
    db: Database
    catalog: Catalog
    texts: Texts
    dialogue: Dialogue
    core: ServiceSet  # the application services; the dialogue works over the same ones
    knowledge_version: int | None = None  # the live version answered from (None: the seed files)

    def use_catalog(self, version: int | None, catalog: Catalog) -> None:
        """Answer from another version of the knowledge from now on (the next update, the next page)."""
        self.catalog = catalog
        self.dialogue.catalog = catalog
        self.knowledge_version = version

    def catch_up_knowledge(self, repos: Repos) -> bool:
        """Answer from the newest published version if this process is not on it yet (another
        process, or a service, published it); True when it was swapped in."""
        newest = repos.knowledge.newest_id()
        if newest is None or newest == self.knowledge_version:
            return False
        version, catalog = knowledge.live_catalog(repos)
        if catalog is None:
            return False
        self.use_catalog(version, catalog)
        return True

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


def core_services(settings: Settings, texts: Texts) -> ServiceSet:
    return build_service_set(
        ChatMessages(texts),
        settings.staff_telegram_ids,
        reminder_settings(settings),
        delivery_channels(settings),
        settings.data_retention_months,
    )


def build_services(settings: Settings) -> Services:
    db = Database(settings.database_url)
    db.migrate()
    with db.unit() as repos:
        version, live = knowledge.live_catalog(repos)
    catalog = live or load_catalog()
    texts = Texts()
    core = core_services(settings, texts)
    dialogue = Dialogue(db, catalog, texts, timezone=settings.timezone, services=core)
    return Services(settings, db, catalog, texts, dialogue, core, version)
