"""End-to-end fixtures: the whole process (``bot.app.Runner``: web server, Telegram channel, outbox)
against the local fake Telegram Bot API over HTTP (the ``fake_telegram`` fixture of tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import Runner
from bot.services import Services
from bot.settings import Settings
from storage.models import Conversation, saved_id
from storage.repositories import Repos
from tests.fakes.telegram import FakeTelegram

STAFF_CHAT = 900


def telegram_settings(fake: FakeTelegram, database_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "telegram_bot_token": fake.token,
        "telegram_api_base_url": fake.base_url,
        "database_url": database_url,
        "web_port": 0,
        "staff_telegram_ids": [STAFF_CHAT],
        **extra,
    }
    return Settings(_env_file=None, **values)


def conversation(services: Services, channel: str, chat_id: int | str) -> Conversation:
    """Where the user is in the dialogue, as stored: flow, step and the answers so far."""
    with services.db.session() as s:
        repos = Repos(s)
        user = repos.users.find(channel, str(chat_id))
        assert user is not None, f"no {channel} user {chat_id}"
        return repos.conversations.get(saved_id(user))


def template_text(services: Services, template: str) -> str:
    """A template without values as the dialogue sends it: to know a reply by its template."""
    return services.texts.explain(services.texts.render(template))


class RunningBot:
    """The whole process (``bot.app.Runner``) in the test's event loop; restartable on the same database."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._runner: Runner | None = None

    @property
    def runner(self) -> Runner:
        assert self._runner is not None, "the bot is not running"
        return self._runner

    @property
    def services(self) -> Services:
        return self.runner.services

    async def start(self) -> None:
        self._runner = Runner(self.settings)
        await self._runner.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.stop()
        self._runner = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


class TelegramBot(RunningBot):
    """The bot process on Telegram."""


@pytest.fixture
async def telegram_bot(fake_telegram: FakeTelegram, database_url: str) -> AsyncIterator[TelegramBot]:
    bot = TelegramBot(telegram_settings(fake_telegram, database_url))
    await bot.start()
    yield bot
    await bot.stop()
