"""The process as a user starts it: the console chat, `run` without a token, and the health check."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx

from bot.services import Services
from bot.settings import Settings
from bot.web import create_web_app
from handlers.dialogue import Dialogue
from handlers.texts import Texts
from knowledge.catalog import Catalog
from storage.db import Database
from tests.support.botprocess import ROOT, BotProcess, bot_env


def test_console_chat_runs_the_same_dialogue(database_url: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bot", "chat", "--user", "tester"],
        input="2\n1\nhuy\nmua may say co duoc ho tro khong\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=bot_env(database_url),
    )
    assert out.returncode == 0, out.stderr
    assert "1. 📚 Tra cứu chính sách" in out.stdout  # buttons become a numbered list
    assert "gõ số từ 1 đến" in out.stdout
    assert "Câu 1." in out.stdout  # "2" opened the eligibility check
    assert "<b>" not in out.stdout  # no HTML in a terminal
    assert "300 triệu đồng" in out.stdout


async def test_run_without_token_serves_the_dashboard_and_stops_cleanly(database_url: str) -> None:
    bot = BotProcess(bot_env(database_url)).start()
    try:
        port = await bot.wait_ready(timeout=30)
        async with httpx.AsyncClient(base_url=bot.url, timeout=5) as client:
            response = await client.get("/healthz")
        assert response.status_code == 200 and response.json()["status"] == "ok"
    finally:
        code = await bot.stop(timeout=20)
    assert code == 0, bot.log()
    assert f"http://127.0.0.1:{port}/" in bot.log()
    assert "Traceback" not in bot.log()


def test_run_on_a_port_in_use_says_so_in_one_line(database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "bot", "run"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            env=bot_env(database_url, WEB_PORT=str(port)),
        )
    assert out.returncode == 1
    assert f"could not listen on 127.0.0.1:{port}" in out.stderr and "WEB_PORT" in out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_healthz_is_503_when_the_database_is_unreachable(catalog: Catalog) -> None:
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
