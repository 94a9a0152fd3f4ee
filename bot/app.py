"""The one process: web server (health, webhooks, dashboard), Telegram, Zalo and the scheduler.

With no chat token it still does something useful: the console chat in the terminal and the
staff dashboard on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import uvicorn

from bot.channels.console import chat
from bot.channels.telegram import TelegramChannel, TelegramTransport
from bot.channels.zalo import ZaloChannel, ZaloTransport
from bot.outbox import OutboxSender, Transport
from bot.scheduler import ReminderScheduler
from bot.services import Services, build_services
from bot.settings import Settings
from bot.web import create_web_app

log = logging.getLogger(__name__)


class Runner:
    """Starts and stops everything that is configured."""

    def __init__(self, settings: Settings, services: Services | None = None):
        self.settings = settings
        self.services = services or build_services(settings)
        self.telegram = (
            TelegramChannel(settings, self.services.dialogue, self.services.texts, self.services.commands())
            if settings.telegram_enabled
            else None
        )
        self.zalo = (
            ZaloChannel(settings, self.services.dialogue, self.services.texts)
            if settings.zalo_enabled
            else None
        )
        self.transports: dict[str, Transport] = {}
        if settings.telegram_enabled:
            self.transports["telegram"] = TelegramTransport(settings, self.services.texts)
        if settings.zalo_enabled:
            self.transports["zalo"] = ZaloTransport(settings, self.services.texts)
        self.outbox = OutboxSender(
            self.services.db,
            self.transports,
            rates={"telegram": settings.broadcast_rate_per_sec, "zalo": settings.zalo_rate_per_sec},
        )
        self.services.dialogue.after_commit = self._wake_outbox
        self.scheduler = ReminderScheduler(
            self.services, on_queued=self.outbox.wake, interval_seconds=settings.sweep_interval_seconds
        )
        self._stop_outbox = asyncio.Event()
        self._outbox_task: asyncio.Task[None] | None = None
        self.web_app = create_web_app(self.services, self.telegram, self.outbox, zalo=self.zalo)
        self.web = uvicorn.Server(
            uvicorn.Config(
                self.web_app,
                host=settings.web_host,
                port=settings.web_port,
                log_level="warning",
                lifespan="off",
            )
        )
        self.web.install_signal_handlers = lambda: None  # type: ignore[method-assign]

    async def start(self) -> None:
        self._web_task = asyncio.create_task(self.web.serve())
        while not self.web.started:
            if self._web_task.done():
                self._web_task.result()  # re-raise why the server could not start
            await asyncio.sleep(0.02)
        if self.telegram is not None:
            await self.telegram.start()
        if self.zalo is not None:
            await self.zalo.start()
        for transport in self.transports.values():
            await transport.start()  # type: ignore[attr-defined]
        self._loop = asyncio.get_running_loop()
        if self.transports:
            self._outbox_task = asyncio.create_task(self.outbox.run(self._stop_outbox))
        await self.scheduler.start()

    def _wake_outbox(self) -> None:
        """Called from the dialogue's worker thread after each commit."""
        loop = getattr(self, "_loop", None)
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.outbox.wake)

    async def stop(self) -> None:
        await self.scheduler.stop()
        if self.telegram is not None:
            await self.telegram.stop()
        if self.zalo is not None:
            await self.zalo.stop()
        self._stop_outbox.set()
        if self._outbox_task is not None:
            await self._outbox_task
        for transport in self.transports.values():
            await transport.stop()  # type: ignore[attr-defined]
        self.web.should_exit = True
        with contextlib.suppress(Exception):
            await self._web_task
        self.services.close()

    @property
    def bound_port(self) -> int:
        """The port the web server listens on (useful when WEB_PORT is 0: pick a free one)."""
        sockets = [sock for server in self.web.servers for sock in server.sockets]
        return sockets[0].getsockname()[1] if sockets else self.settings.web_port

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.settings.web_host}:{self.bound_port}/"


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (installed before anything starts, so none is missed)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def _log_to_file() -> Path:
    """While the console chat owns the terminal, log lines go to a file instead."""
    path = Path("data") / "khuyencong.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(file_handler)
    return path


async def run(settings: Settings) -> None:
    stop = _stop_on_signals()
    runner = Runner(settings)
    await runner.start()
    try:
        channels = [
            name
            for name, on in (("Telegram", settings.telegram_enabled), ("Zalo", settings.zalo_enabled))
            if on
        ]
        print(f"Staff dashboard: {runner.dashboard_url}", flush=True)
        if channels:
            print(f"Bot running on {', '.join(channels)}. Ctrl+C to stop.", flush=True)
            await stop.wait()
        elif sys.stdin.isatty():
            log_file = _log_to_file()
            print(runner.services.texts.label("console_intro"), f"(logs: {log_file})", flush=True)
            hint = runner.services.texts.label("plain_menu_hint")
            await asyncio.to_thread(chat, runner.services.dialogue, hint)
        else:
            print(
                "No TELEGRAM_BOT_TOKEN or ZALO_BOT_TOKEN: serving the dashboard only. Ctrl+C to stop.",
                flush=True,
            )
            await stop.wait()
    finally:
        await runner.stop()
