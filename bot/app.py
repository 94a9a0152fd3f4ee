"""The one process: web server (health, webhooks, dashboard), Telegram, Zalo and the scheduler.

With no chat token it still does something useful: the console chat in the terminal and the
staff dashboard on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import anyio.to_thread
import uvicorn

from bot.channels.console import ConsoleTransport, chat
from bot.channels.telegram import TelegramChannel, TelegramTransport
from bot.channels.zalo import ZaloChannel, ZaloTransport
from bot.inbox import REPLY_HEADROOM_SECONDS, InboxWorker
from bot.knowledge_watch import KnowledgeWatcher
from bot.logs import announce, log_to_file
from bot.metrics import Budget, Metrics
from bot.outbox import ChannelTransport, OutboxSender
from bot.scheduler import ReminderScheduler
from bot.secrets import ensure_private_dir
from bot.services import Services, build_services
from bot.settings import Settings
from bot.web import create_web_app

log = logging.getLogger(__name__)
DASHBOARD_THREADS = 4
CONSOLE_RATE = 50.0  # messages per second to the terminal: no platform limit, just no flood


class _WebServer(uvicorn.Server):
    """uvicorn without its own SIGINT/SIGTERM handlers: the runner's (``_stop_on_signals``) stop
    everything in order, the web server last. (uvicorn >= 0.29 installs them in ``capture_signals``;
    the ``install_signal_handlers`` hook it had before is gone.)"""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServerError(RuntimeError):
    """The web server (dashboard, webhooks, health check) could not start; the message says why."""


class Runner:
    """Starts and stops everything that is configured.

    Updates come in through the inbox (stored before they are acknowledged), are handled by the
    dialogue, and everything the bot sends leaves through the outbox within one send budget per bot
    token. With ``console`` (the terminal's output), messages for console users are printed there.
    """

    def __init__(
        self, settings: Settings, services: Services | None = None, *, console: TextIO | None = None
    ):
        self.settings = settings
        self.services = services or build_services(settings)
        dialogue, texts = self.services.dialogue, self.services.texts
        self.metrics = Metrics()
        rates = {
            "telegram": settings.broadcast_rate_per_sec,
            "zalo": settings.zalo_rate_per_sec,
            "console": CONSOLE_RATE,
        }
        self.inbox = InboxWorker(
            self.services.db,
            {},
            give_up=dialogue.give_up,
            max_backlog=settings.inbox_max_backlog,
            reply_headroom={name: max(int(rate * REPLY_HEADROOM_SECONDS), 1) for name, rate in rates.items()},
            metrics=self.metrics,
        )
        self.telegram = (
            TelegramChannel(settings, dialogue, texts, self.services.commands(), self.inbox)
            if settings.telegram_enabled
            else None
        )
        self.zalo = ZaloChannel(settings, dialogue, texts, self.inbox) if settings.zalo_enabled else None
        self.transports: dict[str, ChannelTransport] = {}
        if self.telegram is not None:
            self.inbox.channels[self.telegram.name] = self.telegram
            self.transports["telegram"] = TelegramTransport(
                settings, texts, bot=self.telegram.application.bot
            )
        if self.zalo is not None:
            self.inbox.channels[self.zalo.name] = self.zalo
            self.transports["zalo"] = ZaloTransport(settings, texts, client=self.zalo.client)
        if console is not None:
            self.transports["console"] = ConsoleTransport(
                texts.label("plain_menu_hint"), console, texts.label("plain_menu_hint_one")
            )
        keys = budget_keys(settings)
        self.outbox = OutboxSender(
            self.services.db, self.transports, rates=rates, budget_keys=keys, metrics=self.metrics
        )
        self.metrics.watch_database(
            self.services.db, {name: Budget(keys.get(name, name), rates[name]) for name in self.transports}
        )
        dialogue.after_commit = self.outbox.wake
        self.scheduler = ReminderScheduler(
            self.services, on_queued=self.outbox.wake, interval_seconds=settings.sweep_interval_seconds
        )
        self.knowledge_watch = KnowledgeWatcher(self.services, settings.knowledge_check_seconds)
        self._stop_workers = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self.web_app = create_web_app(
            self.services,
            self.telegram,
            self.outbox,
            zalo=self.zalo,
            metrics=self.metrics,
            inbox=self.inbox,
        )
        self.web = _WebServer(
            uvicorn.Config(
                self.web_app,
                host=settings.web_host,
                port=settings.web_port,
                log_level="warning",
                log_config=None,  # its lines go through the root logger: one format (LOG_FORMAT)
                lifespan="off",
                # X-Forwarded-For is read by the dashboard from TRUSTED_PROXIES only, never by uvicorn
                # (which would trust it from any local client).
                proxy_headers=False,
                server_header=False,
            )
        )

    async def start(self) -> None:
        # Dashboard pages (plain def routes) run in anyio's worker threads: a few at a time, so a
        # flood of logins or a big export queues there instead of taking the CPU from the bots.
        anyio.to_thread.current_default_thread_limiter().total_tokens = DASHBOARD_THREADS
        self._web_task = asyncio.create_task(self._serve_web())
        while not self.web.started:
            if self._web_task.done():
                self._web_task.result()  # re-raise why the server could not start
            await asyncio.sleep(0.02)
        for transport in self.transports.values():
            await transport.start()
        # Intake starts with a reading of the backlog, so a process started into one stays bounded.
        with contextlib.suppress(Exception):
            await self.inbox.refresh_backlog()
        self._workers = [
            asyncio.create_task(self.outbox.run(self._stop_workers), name="outbox"),
            asyncio.create_task(self.inbox.run(self._stop_workers), name="inbox"),
        ]
        if self.telegram is not None:
            await self.telegram.start()
        if self.zalo is not None:
            await self.zalo.start()
        await self.scheduler.start()
        self.knowledge_watch.start()

    async def _serve_web(self) -> None:
        """The web server's life. uvicorn logs why it could not listen and exits (``SystemExit``,
        which asyncio lets through the whole loop): turned into a ``WebServerError`` saying which
        setting to change."""
        try:
            await self.web.serve()
        except SystemExit as exc:
            where = f"{self.settings.web_host}:{self.settings.web_port}"
            raise WebServerError(
                f"the web server could not listen on {where} (in use by another program?): "
                "stop that program or set WEB_PORT (or WEB_HOST) to a free one"
            ) from exc

    async def stop(self) -> None:
        await self.knowledge_watch.stop()
        await self.scheduler.stop()
        for channel in (self.telegram, self.zalo):
            if channel is not None:
                await channel.stop_intake()
        self._stop_workers.set()
        # The inbox finishes the updates in hand (queueing their replies), then the outbox its sends;
        # only then are the platform clients closed.
        if self._workers:
            await self._workers[1]
            await self._workers[0]
        for transport in self.transports.values():
            await transport.stop()
        for channel in (self.telegram, self.zalo):
            if channel is not None:
                await channel.stop()
        self.web.should_exit = True
        with contextlib.suppress(Exception):
            await self._web_task
        self.inbox.close()
        self.services.close()

    @property
    def bound_port(self) -> int:
        """The port the web server listens on (useful when WEB_PORT is 0: pick a free one)."""
        sockets = [sock for server in self.web.servers for sock in server.sockets]
        return sockets[0].getsockname()[1] if sockets else self.settings.web_port

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.settings.web_host}:{self.bound_port}/"


def budget_keys(settings: Settings) -> dict[str, str]:
    """One send budget per bot token: processes sharing a token share its budget row."""
    keys = {"console": "console"}
    for channel, token in (("telegram", settings.telegram_bot_token), ("zalo", settings.zalo_bot_token)):
        if token is not None:
            digest = hashlib.sha256(token.get_secret_value().encode()).hexdigest()[:16]
            keys[channel] = f"{channel}:{digest}"
    return keys


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (installed before anything starts, so none is missed)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def _log_to_file(settings: Settings) -> Path:
    """While the console chat owns the terminal, log lines go to a file in the data folder instead."""
    path = ensure_private_dir(settings.data_dir) / "khuyencong.log"
    log_to_file(settings, path)
    return path


async def run(settings: Settings) -> None:
    stop = _stop_on_signals()
    console = not (settings.telegram_enabled or settings.zalo_enabled) and sys.stdin.isatty()
    runner = Runner(settings, console=sys.stdout if console else None)
    await runner.start()
    try:
        channels = [
            name
            for name, on in (("Telegram", settings.telegram_enabled), ("Zalo", settings.zalo_enabled))
            if on
        ]
        announce(settings, f"Staff dashboard: {runner.dashboard_url}")
        if channels:
            announce(settings, f"Bot running on {', '.join(channels)}. Ctrl+C to stop.")
            await stop.wait()
        elif console:
            log_file = _log_to_file(settings)
            print(runner.services.texts.label("console_intro"), f"(logs: {log_file})", flush=True)
            labels = runner.services.texts
            hint, hint_one = labels.label("plain_menu_hint"), labels.label("plain_menu_hint_one")
            await asyncio.to_thread(chat, runner.services.dialogue, hint, hint_one=hint_one)
        else:
            alone = "No TELEGRAM_BOT_TOKEN or ZALO_BOT_TOKEN: serving the dashboard only. Ctrl+C to stop."
            announce(settings, alone)
            await stop.wait()
    finally:
        await runner.stop()
