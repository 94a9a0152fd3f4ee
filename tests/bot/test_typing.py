"""The "typing" indicator's rules (bot/typing.py) with a hand-driven clock: one per chat every few
seconds, never waited for, paused by a flood limit, skipped when too many calls are in flight."""

from __future__ import annotations

import asyncio

from bot.outbox import RetryLater
from bot.typing import ChatActions


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_one_indicator_per_chat_every_few_seconds() -> None:
    sent: list[str] = []

    async def send(chat: str) -> None:
        sent.append(chat)

    clock = Clock()
    actions = ChatActions(send, every=4.0, clock=clock)
    assert actions.show("1") and not actions.show("1") and actions.show("2")
    clock.now += 4.0
    assert actions.show("1")
    await asyncio.sleep(0)
    assert sorted(sent) == ["1", "1", "2"]
    await actions.close()


async def test_a_flood_limit_pauses_the_indicators_and_a_slow_platform_never_holds_the_caller() -> None:
    release = asyncio.Event()
    calls: list[str] = []

    async def send(chat: str) -> None:
        calls.append(chat)
        if chat == "flood":
            raise RetryLater(3.0)
        await release.wait()

    clock = Clock()
    actions = ChatActions(send, max_in_flight=2, clock=clock)
    assert actions.show("flood")
    await asyncio.sleep(0.01)
    assert not actions.show("a")  # paused for the retry_after
    clock.now += 3.0
    assert actions.show("a") and actions.show("b")  # both hang at the platform, show() returned at once
    assert not actions.show("c") and actions.skipped == 2  # two in flight: skipped, not queued
    release.set()
    await asyncio.sleep(0.01)
    assert actions.show("c") and actions.sent == 2
    await actions.close()
