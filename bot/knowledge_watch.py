"""Keeps a running process on the live knowledge: every few seconds it looks at the newest version
id, and when another process (``kb import``, a dashboard edit) published one, builds its catalog in a
worker thread and swaps it in. A version that fails to load is logged and the current one kept."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.services import Services

log = logging.getLogger(__name__)
CHECK_SECONDS = 3.0  # a published version is live everywhere within this plus its build time


class KnowledgeWatcher:
    def __init__(self, services: Services, interval_seconds: float = CHECK_SECONDS):
        self.services = services
        self.interval_seconds = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def check_once(self) -> bool:
        """Swap in the newest version if it is not the one in use; True when swapped."""
        with self.services.db.unit() as repos:
            swapped = self.services.catch_up_knowledge(repos)
        if swapped:
            log.info("knowledge version %s is live", self.services.knowledge_version)
        return swapped

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            try:
                await asyncio.to_thread(self.check_once)
            except Exception:
                log.exception("could not load the newest knowledge version; keeping the current one")

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="knowledge-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
