"""``kb import`` in another process makes new knowledge live: the running bot answers from it within
10 s with no restart, an invalid import publishes nothing, ``kb export`` shows what is live, and a
revert brings the old text back."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from services import knowledge
from tests.e2e.conftest import TelegramBot
from tests.e2e.test_telegram import exchange
from tests.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
CHAT = 6161
QUESTION = "co ho tro mua may moc thiet bi khong"
NEW_TEXT = "Dạ, có. Theo kế hoạch mới của tỉnh, cơ sở được hỗ trợ một phần tiền mua máy móc, thiết bị mới."


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env | {"DATABASE_URL": database_url},
        timeout=120,
    )


async def first_reply(fake: FakeTelegram) -> str:
    replies = await exchange(fake, CHAT, lambda: fake.send_text(CHAT, QUESTION))
    return str(replies[0]["text"])


async def test_an_import_is_answered_from_without_a_restart(
    fake_telegram: FakeTelegram, telegram_bot: TelegramBot, database_url: str, tmp_path: Path
) -> None:
    before = await first_reply(fake_telegram)
    assert NEW_TEXT not in before
    exported = cli(database_url, "kb", "export", "--json")
    assert exported.returncode == 0, exported.stderr
    entries = json.loads(exported.stdout)

    broken = [dict(e, legal_basis=[]) if e["id"] == "machinery-national" else e for e in entries]
    (tmp_path / "broken.json").write_text(json.dumps(broken, ensure_ascii=False), encoding="utf-8")
    refused = cli(database_url, "kb", "import", str(tmp_path / "broken.json"))
    assert refused.returncode == 1 and "machinery-national" in refused.stderr
    with telegram_bot.runner.services.db.unit() as repos:
        assert repos.knowledge.newest_id() is None  # nothing was published

    changed = [dict(e, short_answer=NEW_TEXT) if e["id"] == "machinery-national" else e for e in entries]
    (tmp_path / "kb.json").write_text(json.dumps(changed, ensure_ascii=False), encoding="utf-8")
    published = cli(database_url, "kb", "import", str(tmp_path / "kb.json"), "--reason", "mức mới")
    assert published.returncode == 0, published.stderr
    version = int(published.stdout.strip())

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while telegram_bot.runner.services.knowledge_version != version:
        assert loop.time() < deadline, "the new knowledge was not live within 10 s"
        await asyncio.sleep(0.2)
    assert NEW_TEXT in await first_reply(fake_telegram)
    again = json.loads(cli(database_url, "kb", "export", "--json").stdout)
    assert next(e for e in again if e["id"] == "machinery-national")["short_answer"] == NEW_TEXT

    # Another edit, then a revert to the version before it: the old text is back.
    with telegram_bot.runner.services.db.unit() as repos:
        files = knowledge.live_files(repos)
        files["programmes/machinery-national.yaml"] = files["programmes/machinery-national.yaml"].replace(
            "kế hoạch mới", "kế hoạch khác"
        )
        knowledge.publish(repos, files, "dashboard:canbo", "thử")
        reverted = knowledge.revert(repos, version, "dashboard:canbo")
        history = [(v.id, v.created_by, v.reason) for v in repos.knowledge.history(5)]
    assert reverted is not None
    assert history == [
        (reverted, "dashboard:canbo", f"quay lại phiên bản {version}"),
        (version + 1, "dashboard:canbo", "thử"),
        (version, "cli", "mức mới"),
    ]
    deadline = loop.time() + 10
    while telegram_bot.runner.services.knowledge_version != reverted:
        assert loop.time() < deadline, "the reverted knowledge was not live within 10 s"
        await asyncio.sleep(0.2)
    assert NEW_TEXT in await first_reply(fake_telegram)


async def test_a_published_version_survives_a_kill_and_an_immediate_restart(
    fake_telegram: FakeTelegram, database_url: str, tmp_path: Path
) -> None:
    """The real process, killed with SIGKILL right after it picked up an import and restarted at once,
    answers from the imported knowledge, not from the seed files."""
    from tests.support.botprocess import BotProcess, telegram_env, wait_until

    entries = json.loads(cli(database_url, "kb", "export", "--json").stdout)
    changed = [dict(e, short_answer=NEW_TEXT) if e["id"] == "machinery-national" else e for e in entries]
    (tmp_path / "kb.json").write_text(json.dumps(changed, ensure_ascii=False), encoding="utf-8")
    bot = BotProcess(telegram_env(fake_telegram, database_url, KNOWLEDGE_CHECK_SECONDS="0.5")).start()

    def answered_new(chat: int) -> bool:
        return any(NEW_TEXT in str(m.get("text", "")) for m in fake_telegram.messages(chat))

    try:
        await bot.wait_ready()
        assert cli(database_url, "kb", "import", str(tmp_path / "kb.json")).returncode == 0
        await asyncio.sleep(3)  # several checks: the running process answers from it now
        fake_telegram.send_text(CHAT + 1, QUESTION)
        await wait_until(lambda: answered_new(CHAT + 1), 10, "the new text", bot)
        bot.kill()
        bot.start()  # at once, as Restart=always does
        await bot.wait_ready()
        fake_telegram.send_text(CHAT + 2, QUESTION)
        await wait_until(lambda: answered_new(CHAT + 2), 30, "the new text after the restart", bot)
    finally:
        await bot.stop()
