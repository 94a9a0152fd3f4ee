"""Rendering replies for channels without HTML or buttons (Zalo, the console): tags are dropped,
entities unescaped, and buttons become a numbered list the user answers by typing a number."""

from __future__ import annotations

import html
import re

from handlers.types import Reply

_TAG = re.compile(
    r"</?(?:b|strong|i|em|u|ins|s|strike|del|code|pre|blockquote|a|span|tg-spoiler)(?:\s[^>]*)?>"
)


def html_to_text(text: str) -> str:
    """Telegram-style HTML to plain text."""
    return html.unescape(_TAG.sub("", text))


def numbered_menu(reply: Reply, hint: str, hint_one: str | None = None) -> str:
    """The reply's buttons as "1. label" lines followed by ``hint`` (e.g. "Gõ số từ 1 đến 5"), or
    ``hint_one`` when there is a single choice (never "từ 1 đến 1")."""
    buttons = reply.flat_buttons
    if not buttons:
        return ""
    lines = [f"{i}. {html_to_text(b.label)}" for i, b in enumerate(buttons, 1)]
    said = hint_one if len(buttons) == 1 and hint_one else hint.format(last=len(buttons))
    return "\n".join(lines) + "\n" + said


def render(reply: Reply, hint: str, hint_one: str | None = None) -> str:
    body = html_to_text(reply.text)
    menu = numbered_menu(reply, hint, hint_one)
    return f"{body}\n\n{menu}" if menu else body


def split_message(text: str, limit: int) -> list[str]:
    """Split at paragraph, line, then sentence boundaries so each part fits in ``limit`` characters."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for piece in _pieces(text, limit):
        candidate = f"{current}{piece}" if current else piece.lstrip("\n")
        if len(candidate) <= limit:
            current = candidate
        else:
            if current.strip():
                parts.append(current.rstrip())
            current = piece.lstrip("\n")
    if current.strip():
        parts.append(current.rstrip())
    return parts


def _pieces(text: str, limit: int) -> list[str]:
    """Lines (keeping their newline), with over-long lines cut at sentence ends, then at spaces."""
    pieces: list[str] = []
    for line in text.splitlines(keepends=True):
        if len(line) <= limit:
            pieces.append(line)
            continue
        for sentence in re.split(r"(?<=[.!?…])\s+", line):
            while len(sentence) > limit:
                cut = sentence.rfind(" ", 0, limit)
                cut = cut if cut > limit // 2 else limit
                pieces.append(sentence[:cut])
                sentence = " " + sentence[cut:].lstrip()
            pieces.append(sentence + " ")
    return pieces
