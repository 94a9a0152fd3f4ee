""" "Nhắc hạn đăng ký": producers opt in to deadline reminders (all that concern them, or one
programme), see what is coming, change their categories, and stop with one tap (/tatnhac)."""

from __future__ import annotations

from typing import ClassVar, overload

from pydantic import Field

from handlers import callbacks as cb
from handlers.context import Ctx, FlowState
from handlers.flow import Flow
from handlers.types import Button, Reply
from knowledge.models import Category, Programme
from storage.models import Subscription

FLOW = "reminders"
SHOWN_DEADLINES = 5


class ReminderChoice(FlowState):
    """What is being subscribed to: one programme, or the categories ticked so far."""

    flow: ClassVar[str] = FLOW

    programme: str | None = None
    selected: list[str] = Field(default_factory=list)


def _active(ctx: Ctx) -> list[Subscription]:
    return ctx.services.reminders.active(ctx.repos, ctx.user_id)


def show(ctx: Ctx) -> list[Reply]:
    """The reminders menu: what the user follows and what is coming, or the offer to subscribe."""
    subscriptions = _active(ctx)
    if not subscriptions:
        return start(ctx)
    return [_status(ctx, subscriptions, just_subscribed=False)]


@overload
def start(ctx: Ctx, programme_id: None = None) -> list[Reply]: ...
@overload
def start(ctx: Ctx, programme_id: str | None) -> list[Reply] | None: ...
def start(ctx: Ctx, programme_id: str | None = None) -> list[Reply] | None:
    """Begin subscribing: to everything that concerns the producer, or to one programme (None when
    the programme is unknown)."""
    if programme_id is not None and not isinstance(ctx.catalog.kb.by_id.get(programme_id), Programme):
        return None
    ctx.state.go(FLOW, None, ReminderChoice(programme=programme_id))
    if ctx.profile.province is None:
        ctx.state.step = "province"
        ctx.new_menu_version()
        return [ctx.reply("reminders_ask_province", [[ctx.button("cancel", cb.CANCEL)]])]
    if programme_id is not None:
        return _subscribe(ctx, [], programme_id)
    return [_categories(ctx)]


def on_text(ctx: Ctx, text: str) -> list[Reply]:
    if ctx.state.step != "province":
        return [_categories(ctx)] if ctx.state.step == "categories" else show(ctx)
    found = ctx.catalog.kb.provinces.resolve(text)
    if found is None:
        return [ctx.reply("reminders_ask_province", [[ctx.button("cancel", cb.CANCEL)]], retry=True)]
    ctx.update_profile(province=found.province.name)
    programme_id = ctx.state.values(ReminderChoice).programme
    if programme_id:
        return _subscribe(ctx, [], programme_id)
    return [_categories(ctx)]


def on_choice(ctx: Ctx, value: str) -> list[Reply] | None:
    if ctx.state.step != "categories":
        return None
    selected = ctx.state.values(ReminderChoice).selected
    if value.startswith("t:") and value[2:] in {str(c) for c in Category}:
        category = value[2:]
        if category in selected:
            selected.remove(category)
        else:
            selected.append(category)
        return [_categories(ctx)]
    if value == "all":
        return _subscribe(ctx, [], None)
    if value == "done":
        return _subscribe(ctx, list(selected), None)
    return None


def _typed(ctx: Ctx, text: str) -> list[Reply] | None:
    """The province asked for; at the categories, typed text is a question (None)."""
    return on_text(ctx, text) if ctx.state.step == "province" else None


def _resume_pending(ctx: Ctx) -> list[Reply] | None:
    return on_text(ctx, "") if ctx.state.step in ("province", "categories") else None


STEPS = Flow(FLOW, on_text=_typed, on_choice=on_choice, resume=_resume_pending)


def change(ctx: Ctx) -> list[Reply]:
    current = [c for s in _active(ctx) if not s.programme_id for c in s.categories]
    ctx.state.go(FLOW, "categories", ReminderChoice(selected=current))
    return [_categories(ctx)]


def stop(ctx: Ctx) -> list[Reply]:
    """One tap stops every reminder: subscriptions end and pending reminders are cancelled."""
    had = ctx.services.reminders.stop(ctx.repos, ctx.user_id, ctx.now)
    if ctx.state.flow == FLOW:
        ctx.state.reset()
    return [ctx.main_menu("reminders_off", had=had)]


def _categories(ctx: Ctx) -> Reply:
    ctx.state.step = "categories"
    version = ctx.new_menu_version()
    selected = set(ctx.state.values(ReminderChoice).selected)
    names = ctx.texts.labels["categories"]
    rows = [
        [Button(("☑ " if str(c) in selected else "☐ ") + names[str(c)], cb.answer(version, f"t:{c}"))]
        for c in Category
        if c != Category.GENERAL
    ]
    labels = ctx.texts.labels["reminders"]
    rows.append([Button(labels["all"], cb.answer(version, "all"))])
    if selected:
        rows.append([Button(labels["done"], cb.answer(version, "done"))])
    rows.append([ctx.button("cancel", cb.CANCEL)])
    return ctx.reply("reminders_categories", rows, count=len(selected))


def _subscribe(ctx: Ctx, categories: list[str], programme_id: str | None) -> list[Reply]:
    added = ctx.services.reminders.subscribe(
        ctx.repos, ctx.catalog.kb, ctx.user_id, ctx.profile.province, categories, programme_id, ctx.now
    )
    if added is not None:
        interests = set(ctx.profile.interests or [])
        interests.update(categories)
        if programme_id:
            interests.add(str(ctx.catalog.kb.by_id[programme_id].category))
        ctx.update_profile(interests=sorted(interests))
    ctx.state.reset()
    return [_status(ctx, _active(ctx), just_subscribed=True)]


def _status(ctx: Ctx, subscriptions: list[Subscription], just_subscribed: bool) -> Reply:
    reminders = ctx.services.reminders
    upcoming = reminders.upcoming_for(ctx.repos, ctx.catalog.kb, ctx.user_id, ctx.profile.province, ctx.today)
    names = ctx.texts.labels["categories"]
    scopes = []
    for sub in subscriptions:
        if sub.programme_id:
            entry = ctx.catalog.kb.by_id.get(sub.programme_id)
            scopes.append(entry.title if entry else sub.programme_id)
        elif sub.categories:
            scopes.append(", ".join(names.get(c, c) for c in sub.categories))
        else:
            scopes.append(ctx.texts.label("reminders", "everything"))
    labels = ctx.texts.labels["reminders"]
    buttons = [
        [Button(labels["change"], cb.REMINDERS_CHANGE)],
        [Button(labels["stop"], cb.REMINDERS_OFF)],
        [ctx.button("main_menu", cb.MAIN_MENU)],
    ]
    return ctx.reply(
        "reminders_status",
        buttons,
        scopes=scopes,
        upcoming=upcoming[:SHOWN_DEADLINES],
        offsets=reminders.settings.offsets_days,
        hour=reminders.settings.hour,
        just_subscribed=just_subscribed,
        province=ctx.profile.province,
        today=ctx.today,
    )
