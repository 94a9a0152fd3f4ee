"""The process as a user starts it: the console chat, `run` without a token, and the health check."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bot.services import Services
from bot.settings import Settings
from bot.web import create_web_app
from handlers.dialogue import Dialogue
from handlers.texts import Texts
from storage.db import Database

ROOT = Path(__file__).resolve().parents[2]


def _env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_"))}
    env.update(DATABASE_URL=database_url, **extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_console_chat_runs_the_same_dialogue(database_url: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--user", "tester"],
        input="2\n1\nhuy\nmua may say co duoc ho tro khong\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=_env(database_url),
    )
    assert out.returncode == 0, out.stderr
    assert "1. 📚 Tra cứu chính sách" in out.stdout  # buttons become a numbered list
    assert "gõ số từ 1 đến" in out.stdout
    assert "Câu 1." in out.stdout  # "2" opened the eligibility check
    assert "<b>" not in out.stdout  # no HTML in a terminal
    assert "300 triệu đồng" in out.stdout


def test_run_without_token_serves_the_dashboard_and_stops_cleanly(database_url: str) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=_env(database_url, WEB_PORT=str(port)),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "the web server did not start"
                time.sleep(0.2)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output
    assert "Traceback" not in output


def test_healthz_is_503_when_the_database_is_unreachable(catalog) -> None:
    db = Database("postgresql://postgres@127.0.0.1:1/unreachable")
    texts = Texts()
    dialogue = Dialogue(db, catalog, texts)
    services = Services(
        settings=Settings(_env_file=None),
        db=db,
        catalog=catalog,
        texts=texts,
        dialogue=dialogue,
        core=dialogue.services,
    )
    transport = httpx.ASGITransport(app=create_web_app(services))

    async def check() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await c.get("/healthz")

    import asyncio

    response = asyncio.run(check())
    assert response.status_code == 503
    db.dispose()
