"""The producer's rights over their own data (Decree 13/2023/NĐ-CP on personal data protection):
``/dulieu`` shows everything stored about them in plain words, ``/xoadulieu`` deletes it after a
confirmation, and consent to the processing of an application can be withdrawn.

Deleting is done by the dialogue itself, after this step (``Ctx.erase_requested``): it removes the
producer from every table, the message log and the stored updates included, and anonymises the
applications already in the centre's hands (kept for the centre's accounts of public spending,
without a name, phone or address). The final answer is sent once and then forgotten too.
"""

from __future__ import annotations

from typing import Any

from handlers import callbacks as cb
from handlers.context import Ctx
from handlers.flow import Flow
from handlers.types import Button, Reply
from storage.personal_data import ANONYMISED_NAME

FLOW = "privacy"
CONFIRM_ERASE = "confirm_erase"
CONFIRM_WITHDRAW = "confirm_withdraw"
# Profile fields shown in /dulieu, in this order, with their labels from labels.yaml.
SHOWN_FIELDS = (
    "full_name",
    "phone",
    "establishment_name",
    "legal_form",
    "activity",
    "sector",
    "province",
    "commune",
    "investment_cost_vnd",
)


def show(ctx: Ctx) -> list[Reply]:
    """/dulieu: everything stored about this producer."""
    ctx.state.reset()
    summary = ctx.services.personal_data.summary(ctx.repos, ctx.user_id)
    labels = ctx.texts.labels["privacy"]
    buttons = [[Button(labels["erase"], cb.ERASE)]]
    if any(lead.full_name != ANONYMISED_NAME for lead in summary.leads):
        buttons.append([Button(labels["withdraw"], cb.WITHDRAW_CONSENT)])
    buttons.append([ctx.button("main_menu", cb.MAIN_MENU)])
    return [
        ctx.reply(
            "privacy_summary",
            buttons,
            channel_name=labels["channels"].get(ctx.user.channel, ctx.user.channel),
            facts=_facts(ctx),
            leads=summary.leads,
            anonymised=ANONYMISED_NAME,
            statuses=ctx.texts.labels["lead_status"],
            draft=bool(ctx.state.memory.draft and ctx.state.memory.draft.values),
            subscribed=summary.subscribed,
            questions=summary.questions,
            messages=summary.messages,
            retention_months=ctx.services.personal_data.retention_months,
        )
    ]


def ask_erase(ctx: Ctx) -> list[Reply]:
    """/xoadulieu: what will be deleted and what the centre keeps; nothing happens without "Xóa"."""
    ctx.state.go(FLOW, CONFIRM_ERASE)
    version = ctx.new_menu_version()
    labels = ctx.texts.labels["privacy"]
    leads = ctx.services.personal_data.summary(ctx.repos, ctx.user_id).leads
    buttons = [
        [Button(labels["erase_confirm"], cb.answer(version, "erase"))],
        [Button(labels["keep"], cb.CANCEL)],
    ]
    return [ctx.reply("privacy_erase_confirm", buttons, leads=len(leads))]


def ask_withdraw(ctx: Ctx) -> list[Reply]:
    ctx.state.go(FLOW, CONFIRM_WITHDRAW)
    version = ctx.new_menu_version()
    labels = ctx.texts.labels["privacy"]
    leads = [
        lead
        for lead in ctx.services.personal_data.summary(ctx.repos, ctx.user_id).leads
        if lead.full_name != ANONYMISED_NAME
    ]
    buttons = [
        [Button(labels["withdraw_confirm"], cb.answer(version, "withdraw"))],
        [Button(labels["keep"], cb.CANCEL)],
    ]
    return [ctx.reply("privacy_withdraw_confirm", buttons, leads=len(leads))]


def on_choice(ctx: Ctx, value: str) -> list[Reply] | None:
    step = ctx.state.step
    if step == CONFIRM_ERASE and value == "erase":
        kept = ctx.services.personal_data.summary(ctx.repos, ctx.user_id).leads
        ctx.erase_requested = True  # the dialogue deletes everything once this step is done
        return [Reply(ctx.texts.render("privacy_erased", kept=len(kept)))]
    if step == CONFIRM_WITHDRAW and value == "withdraw":
        count = ctx.services.personal_data.withdraw_consent(ctx.repos, ctx.user_id, ctx.now)
        ctx.state.reset()
        ctx.state.memory.draft = None
        ctx.profile = ctx.repos.profiles.get_or_create(ctx.user_id)
        return [ctx.main_menu("privacy_withdrawn", leads=count)]
    return None


STEPS = Flow(FLOW, on_choice=on_choice)


def _facts(ctx: Ctx) -> list[tuple[str, str]]:
    names: dict[str, Any] = ctx.texts.labels["privacy"]["fields"]
    facts = []
    for field in SHOWN_FIELDS:
        value = getattr(ctx.profile, field)
        if value in (None, ""):
            continue
        if field == "legal_form":
            value = ctx.texts.legal_form_label(value)
        elif field == "investment_cost_vnd":
            value = ctx.texts.env.filters["vnd"](int(value))
        elif field == "activity":
            options = ctx.texts.questions["activity"]["options"]
            value = next((o["label"] for o in options if str(o["value"]) == value), value)
        facts.append((names[field], str(value)))
    return facts
