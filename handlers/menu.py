"""The main menu, /start, /help, cancelling, greetings, and polite answers to what the bot cannot
read (stickers, photos, voice notes, locations) or to stale and forged buttons."""

from __future__ import annotations

from handlers.context import Ctx
from handlers.types import Reply


def start(ctx: Ctx) -> list[Reply]:
    ctx.state.reset()
    return [ctx.main_menu("welcome", name=ctx.user.display_name)]


def show_menu(ctx: Ctx) -> list[Reply]:
    ctx.state.reset()
    return [ctx.main_menu()]


def help_text(ctx: Ctx) -> list[Reply]:
    return [ctx.main_menu("help")]


def cancel(ctx: Ctx) -> list[Reply]:
    had_task = ctx.state.flow != "menu"
    ctx.state.reset()
    return [ctx.main_menu("cancelled", had_task=had_task)]


def greeting(ctx: Ctx) -> list[Reply]:
    return [ctx.main_menu("greeting", name=ctx.user.display_name)]


def thanks(ctx: Ctx) -> list[Reply]:
    return [ctx.main_menu("thanks")]


def unsupported(ctx: Ctx, media: str | None) -> list[Reply]:
    """Media we cannot read: explain, then show the menu (a flow in progress re-asks its question)."""
    return [ctx.reply("unsupported", media=media or "other")]


def stale(ctx: Ctx) -> list[Reply]:
    return [ctx.reply("stale")]
