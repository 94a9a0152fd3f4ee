"""The "typing…" indicator a producer sees as soon as the bot has their message.

When a channel has stored an update the bot will answer, it calls ``ChatActions.show(chat)``. That
never waits: the platform call (Telegram's and Zalo's ``sendChatAction``) runs in a task of its own,
so intake (the webhook's answer, the next ``getUpdates``) is never held up by it. The indicator
stays up until the reply arrives or for about five seconds, so each chat gets at most one every
``every`` seconds (a burst of taps in one chat costs one call).

It is best effort, never data: when too many calls are already in flight (the platform is slow) or
the platform asked us to wait (a 429), the indicator is skipped; the update itself is stored and
answered all the same. It does not take a slot of the outbox's send budget: the platforms' limits
are on messages (Telegram: about 30 messages a second, 1 a second per chat), and a chat action
sends none; a 429 on a chat action pauses only the chat actions, for its ``retry_after``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from bot.outbox import RetryLater

log = logging.getLogger(__name__)
TYPING_EVERY = 4.0  # seconds between two indicators in one chat (each lasts about 5 s)
MAX_IN_FLIGHT = 32  # platform calls at once; more are skipped
FORGET_AFTER = 10_000  # chats remembered before the ones not seen for ``every`` seconds are forgotten

SendAction = Callable[[str], Awaitable[None]]


class ChatActions:
    """Sends "typing" to a chat at once, coalesced per chat, without ever blocking the caller."""

    def __init__(
        self,
        send: SendAction,
        *,
        every: float = TYPING_EVERY,
        max_in_flight: int = MAX_IN_FLIGHT,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._send = send
        self.every = every
        self.max_in_flight = max_in_flight
        self.clock = clock
        self.sent = 0
        self.skipped = 0
        self._last: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._paused_until = 0.0

    def show(self, chat: str) -> bool:
        """Start showing "typing" in ``chat`` unless it was shown there a moment ago; False when skipped."""
        now = self.clock()
        last = self._last.get(chat)
        if last is not None and now - last < self.every:
            return False
        if now < self._paused_until or len(self._tasks) >= self.max_in_flight:
            self.skipped += 1
            return False
        self._last[chat] = now
        if len(self._last) > FORGET_AFTER:
            self._last = {c: t for c, t in self._last.items() if now - t < self.every}
        task = asyncio.create_task(self._call(chat), name="chat-action")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _call(self, chat: str) -> None:
        try:
            await self._send(chat)
            self.sent += 1
        except RetryLater as exc:
            self._paused_until = self.clock() + exc.seconds
            log.info("chat actions paused for %.0f s (flood limit)", exc.seconds)
        except Exception as exc:  # an indicator that did not show is not worth more than a line
            log.debug("a chat action failed: %s", type(exc).__name__)  # no chat id: it names a person

    async def close(self) -> None:
        """Cancel the calls still in flight (on stop, before the platform client closes)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
