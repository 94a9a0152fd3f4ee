"""Browsing: categories, then the entries of one category, then a programme card or an FAQ answer."""

from __future__ import annotations

from handlers import callbacks as cb
from handlers.cards import entry_button, entry_reply, programme_details
from handlers.context import Ctx
from handlers.types import Button, Reply
from knowledge.models import Category, Programme


def categories(ctx: Ctx) -> list[Reply]:
    names = ctx.texts.labels["categories"]
    order = [c for c in Category if c != Category.GENERAL] + [Category.GENERAL]
    buttons = [[Button(names[str(c)], cb.build(cb.CATEGORY, str(c)))] for c in order]
    buttons.append([ctx.button("main_menu", cb.MAIN_MENU)])
    return [ctx.reply("categories", buttons)]


def category(ctx: Ctx, category_id: str | None) -> list[Reply] | None:
    """The entries of one category; None when the category id is not one of ours."""
    if category_id not in {str(c) for c in Category}:
        return None
    ctx.note_interest(category_id)
    entries = ctx.catalog.kb.in_category(category_id)
    province = ctx.profile.province
    # National first, then the user's province, then other provinces' local programmes.
    entries = sorted(entries, key=lambda e: (e.scope != "national", e.scope != province, e.title))
    buttons = [[entry_button(e)] for e in entries]
    buttons.append([ctx.button("other_topics", cb.BROWSE), ctx.button("main_menu", cb.MAIN_MENU)])
    name = ctx.texts.labels["categories"][category_id]
    return [ctx.reply("category", buttons, name=name, count=len(entries))]


def entry(ctx: Ctx, entry_id: str | None) -> list[Reply] | None:
    found = ctx.catalog.kb.by_id.get(entry_id or "")
    if found is None:
        return None
    ctx.note_interest(str(found.category))
    return [entry_reply(ctx, found)]


def details(ctx: Ctx, entry_id: str | None) -> list[Reply] | None:
    found = ctx.catalog.kb.by_id.get(entry_id or "")
    if not isinstance(found, Programme):
        return None
    return [programme_details(ctx, found)]
