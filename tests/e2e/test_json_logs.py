"""``LOG_FORMAT=json``: the real process (`python -m bot run`) writes nothing but JSON lines, each with
time, level, logger and message, and never what identifies a producer (their name, phone number,
what they typed, their chat id), even when handling their update fails."""

from __future__ import annotations

import json

from tests.fakes.telegram import FakeTelegram
from tests.support.botprocess import BotProcess, telegram_env, wait_until

CHAT = 987_654_321
NAME = "Nguyễn Thị Hoà"
PHONE = "0912345678"
TEXT = "xưởng chè Tân Cương nhà em cần máy sao chè"


async def test_json_logs_are_json_lines_without_personal_data(
    fake_telegram: FakeTelegram, database_url: str
) -> None:
    bot = BotProcess(telegram_env(fake_telegram, database_url, LOG_FORMAT="json")).start()
    try:
        await bot.wait_ready()
        fake_telegram.send_text(CHAT, "/start", first_name=NAME)
        await wait_until(lambda: bool(fake_telegram.messages(CHAT)), 60, "the greeting", bot)
        fake_telegram.send_text(CHAT, f"{TEXT}, số em {PHONE}", first_name=NAME)
        fake_telegram.send_contact(CHAT, PHONE, first_name=NAME)
        fake_telegram.press_button(CHAT, "no-such-button")  # a stale button: answered, and logged
        await wait_until(lambda: len(fake_telegram.messages(CHAT)) >= 4, 60, "the answers", bot)
    finally:
        assert await bot.stop() == 0
    lines = [line for line in bot.output if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(isinstance(e, dict) and {"time", "level", "logger", "message"} <= e.keys() for e in entries)
    assert any(e["message"].startswith("Staff dashboard: http://") for e in entries)
    everything = "\n".join(lines)
    for personal in (NAME, "Hoà", PHONE, "Tân Cương", str(CHAT)):
        assert personal not in everything
