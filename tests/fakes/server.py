"""Serving a fake platform API on 127.0.0.1 and a free port, as a task of the test's event loop.

`FakeServer` is what the fake Telegram and Zalo Bot APIs share: start and stop, and use as
``async with FakeTelegram() as fake:``; the ``fake_telegram`` and ``fake_zalo`` fixtures in
tests/conftest.py and the benchmarks start them only that way."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Self

import uvicorn
from starlette.types import ASGIApp


class _QuietServer(uvicorn.Server):
    """uvicorn that leaves SIGINT/SIGTERM to pytest and stops at once on `exit_now()`."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit_event = asyncio.Event()  # built inside the running loop

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.exit_event.wait(), 0.1)

    def exit_now(self) -> None:
        self.should_exit = True
        self.exit_event.set()


class LocalServer:
    """One ASGI app served over real HTTP on loopback; start and stop from inside the event loop."""

    def __init__(self, app: ASGIApp, name: str):
        self.app = app
        self.name = name
        self.port: int | None = None
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError(f"{self.name} is already started")
        # IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on such sockets; without it every
        # response waits ~40 ms for a delayed ACK (Nagle), which makes tests crawl.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=2
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"{self.name} exited during startup")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.exit_now()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=5)
        except TimeoutError:
            self._server.force_exit = True
            await self._task
        self._server = self._task = None


class Waiting:
    """Long polls and test helpers waiting on the fake's state, woken whenever it changes.

    Mixed into the fakes; the Condition belongs to the running loop and is rebuilt for a new one.
    """

    _cond: asyncio.Condition | None = None
    _cond_loop: asyncio.AbstractEventLoop | None = None

    def _condition(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()
        if self._cond is None or self._cond_loop is not loop:
            self._cond = asyncio.Condition()
            self._cond_loop = loop
        return self._cond

    async def _notify(self) -> None:
        condition = self._condition()
        async with condition:
            condition.notify_all()

    def _wake(self) -> None:
        """Wake long polls and waiters from synchronous code."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        background: set[asyncio.Task[None]] = self.__dict__.setdefault("_background", set())
        task = loop.create_task(self._notify())
        background.add(task)
        task.add_done_callback(background.discard)

    async def _wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        condition = self._condition()
        try:
            async with asyncio.timeout(timeout), condition:
                await condition.wait_for(predicate)
        except TimeoutError:
            return predicate()
        return True


class FakeServer(Waiting):
    """A fake platform API served by a `LocalServer`; pending long polls are answered on stop.

    Subclasses build their Starlette ``app`` and call ``super().__init__(app, name, path)``; the
    base URL is ``http://127.0.0.1:{port}{path}``.
    """

    def __init__(self, app: ASGIApp, name: str, path: str = "") -> None:
        self._stopping = False
        self._http = LocalServer(app, name)
        self._base_path = path

    @property
    def base_url(self) -> str:
        if self._http.port is None:
            raise RuntimeError(f"{self._http.name} is not started")
        return f"http://127.0.0.1:{self._http.port}{self._base_path}"

    async def start(self) -> None:
        """Serve on 127.0.0.1 and a free port, as a task of the current event loop."""
        self._stopping = False
        await self._http.start()

    async def stop(self) -> None:
        """Answer pending long polls, then shut the server down."""
        self._stopping = True
        await self._notify()
        await self._http.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
