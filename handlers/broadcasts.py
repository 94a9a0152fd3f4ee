"""The buttons a broadcast may carry: each opens a flow of the bot (``services.broadcasts`` holds the
rest: audience, template, recipients, confirmation and report)."""

from __future__ import annotations

from typing import Any

from handlers import callbacks as cb
from handlers.notify import buttons_to_rows
from handlers.texts import Texts
from handlers.types import Button
from services.broadcasts import TemplateProblem

ACTIONS = {"apply": cb.APPLY, "check": cb.CHECK, "reminders": cb.REMINDERS, "browse": cb.BROWSE}
MAX_LABEL = 40


def broadcast_buttons(texts: Texts, action: str | None, label: str | None) -> list[dict[str, Any]]:
    """The stored button for an action (a flow, or ``p:<programme id>``) with its label, or none."""
    if not action:
        return []
    data = ACTIONS.get(action) or (cb.build(cb.PROGRAMME, action[2:]) if action.startswith("p:") else None)
    if data is None:
        raise TemplateProblem(f"unknown button action {action}")
    text = (label or "").strip()[:MAX_LABEL] or texts.label(
        "broadcast_buttons", action if action in ACTIONS else "programme"
    )
    return buttons_to_rows([[Button(text, data)]])
