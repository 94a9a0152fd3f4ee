"""End-to-end fixtures: the real python-telegram-bot Application against the local fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.channels.telegram import TelegramChannel
from bot.services import Services, build_services
from bot.settings import Settings
from tests.fakes.telegram import FakeTelegram


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    yield fake
    await fake.stop()


def telegram_settings(fake: FakeTelegram, database_url: str, **extra) -> Settings:
    return Settings(
        _env_file=None,
        telegram_bot_token=fake.token,
        telegram_api_base_url=fake.base_url,
        database_url=database_url,
        **extra,
    )


class TelegramBot:
    """The bot process's Telegram side: services plus a started channel; restartable."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.services: Services | None = None
        self.channel: TelegramChannel | None = None

    async def start(self) -> None:
        self.services = build_services(self.settings)
        self.channel = TelegramChannel(
            self.settings, self.services.dialogue, self.services.texts, self.services.commands()
        )
        await self.channel.start()

    async def stop(self) -> None:
        if self.channel is not None:
            await self.channel.stop()
        if self.services is not None:
            self.services.close()
        self.channel = self.services = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@pytest.fixture
async def telegram_bot(fake_telegram: FakeTelegram, database_url: str) -> AsyncIterator[TelegramBot]:
    bot = TelegramBot(telegram_settings(fake_telegram, database_url))
    await bot.start()
    yield bot
    await bot.stop()
