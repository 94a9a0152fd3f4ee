"""The real bot process (``python -m bot run``) as tests and benchmarks drive it: started with an
environment pointing at local fakes, stopped cleanly (SIGTERM) or killed (SIGKILL, as the OOM
killer or a power cut would), and restarted at once on the same database; its environment for the
fake Telegram Bot API (`telegram_env`), and waiting on what it does (`wait_until`)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
_DASHBOARD_LINE = re.compile(r"Staff dashboard: http://[^:/]+:(\d+)/")


def bot_env(database_url: str, **values: str) -> dict[str, str]:
    """The process's environment: this one without any platform settings, plus ``values``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_"))}
    return base | {"DATABASE_URL": database_url, "WEB_PORT": "0", "STAFF_TELEGRAM_IDS": ""} | values


def telegram_env(fake: FakeTelegram, database_url: str, **values: str) -> dict[str, str]:
    """`bot_env` for a process talking to the fake Telegram Bot API ``fake``."""
    return bot_env(database_url, TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_BASE_URL=fake.base_url, **values)


class BotProcess:
    """One ``python -m bot run``; ``output`` collects what it prints, ``port`` is its web port."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self.port: int | None = None
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    def start(self) -> BotProcess:
        self.output, self.port = [], None
        self._ready.clear()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self._reader.start()
        return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)
            match = _DASHBOARD_LINE.search(line)
            if match:
                self.port = int(match.group(1))
                self._ready.set()

    async def wait_ready(self, timeout: float = 60.0) -> int:
        """Wait until the web server listens; its port."""
        ok = await asyncio.to_thread(self._ready.wait, timeout)
        assert ok and self.port is not None, f"the bot did not start:\n{self.log()}"
        return self.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or given back."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    async def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, and wait for a clean exit; the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(self.process.wait, timeout)
        if self._reader is not None:  # so that ``output`` has all it printed
            await asyncio.to_thread(self._reader.join, 5)
        return code

    def log(self) -> str:
        return "".join(self.output[-200:])


async def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, *bots: BotProcess, interval: float = 0.05
) -> None:
    """Poll ``predicate`` until it holds; after ``timeout`` seconds fail with ``what`` and the bots' logs."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            logs = "\n".join(bot.log() for bot in bots)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        await asyncio.sleep(interval)
