"""With no bot token, `python -m bot run` is the console chat plus the dashboard: what staff send to a
console producer (a status change, an answer, a broadcast, a reminder) reaches the terminal through
the same outbox as on Telegram and Zalo, instead of being reported "sent" and never shown."""

from __future__ import annotations

import asyncio
import io

from sqlmodel import select

from bot.app import Runner
from bot.settings import Settings
from services.broadcasts import Audience
from storage.models import Lead, OutboxMessage, StaffQuestion
from storage.repositories import Repos
from tests.handlers.conftest import Chat
from tests.handlers.test_losses import fill_form


async def wait_for_text(terminal: io.StringIO, needle: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while needle not in terminal.getvalue():
        assert asyncio.get_running_loop().time() < deadline, terminal.getvalue()
        await asyncio.sleep(0.05)


async def test_staff_messages_reach_the_console(database_url: str) -> None:
    terminal = io.StringIO()
    runner = Runner(Settings(_env_file=None, database_url=database_url, web_port=0), console=terminal)
    await runner.start()
    try:
        services = runner.services
        chat = Chat(services.dialogue, channel="console", chat_id="lan")
        chat.press("a:machinery-national")
        await asyncio.to_thread(fill_form, chat)
        await asyncio.to_thread(chat.press, chat.button_for("as:"))
        chat.press("h")
        chat.send("Khi nào có kết quả ạ?")
        with services.db.session() as s:
            repos = Repos(s)
            lead = s.exec(select(Lead)).one()
            core = services.core
            core.leads.change_status(repos, lead, "contacted", "dashboard:canbo")
            question = s.exec(select(StaffQuestion)).one()
            core.questions.answer(repos, question, "Tuần sau cán bộ gọi lại ạ.", "dashboard:a")
            draft = core.broadcasts.create(repos, "Hội chợ OCOP tháng 10", Audience(), [], "dashboard:a")
            queued = core.broadcasts.confirm(repos, services.catalog.kb, draft)
        assert queued == 1  # the console producer is in the audience when no bot runs
        runner.outbox.wake()
        await wait_for_text(terminal, "Tuần sau cán bộ gọi lại")
        await wait_for_text(terminal, "Hội chợ OCOP tháng 10")
        await wait_for_text(terminal, services.texts.labels["lead_status"]["contacted"])
        for _ in range(100):  # the text is written before the row is marked sent
            with services.db.session() as s:
                statuses = s.exec(
                    select(OutboxMessage.status).where(OutboxMessage.channel == "console")
                ).all()
            if set(statuses) == {"sent"}:
                break
            await asyncio.sleep(0.05)
        assert set(statuses) == {"sent"}
    finally:
        await runner.stop()
