"""Centre staff in the chat: new leads arrive with status buttons, ``/leads`` lists open leads, and
a question from "Hỏi cán bộ" is answered by tapping "Trả lời" and typing the answer.

Only staff (``STAFF_TELEGRAM_IDS`` or a dashboard account linked to a Telegram id) may use these;
anyone else pressing such a button gets the stale-menu answer. A province account sees and acts on
its own province's leads and questions only (``services.staff_scope``): another province's lead or
question is as unknown to it as a stale button. The lead workflow itself (``services.leads``) is
shared with the web dashboard.
"""

from __future__ import annotations

from typing import ClassVar

from handlers import callbacks as cb
from handlers.context import Ctx, FlowState
from handlers.notify import lead_staff_buttons
from handlers.types import Reply
from services.broadcasts import Audience, TemplateProblem, render
from services.leads import TRANSITIONS, TransitionError, is_reopening
from services.staff_scope import Scope
from storage.models import Lead, saved_id

FLOW = "staff_answer"
MAX_LISTED = 20


class AnswerState(FlowState):
    """The question a staff member is typing the answer to."""

    flow: ClassVar[str] = FLOW

    question_id: int = 0


def is_staff(ctx: Ctx) -> bool:
    return ctx.services.staff.is_staff(ctx.repos, ctx.user)


def _scope(ctx: Ctx) -> Scope | None:
    """What this chat user may see as staff; None when they are not staff."""
    return ctx.services.staff.scope_of(ctx.repos, ctx.user)


def _actor(ctx: Ctx) -> str:
    return f"telegram:{ctx.user.external_id} {ctx.user.display_name}".strip()


def list_leads(ctx: Ctx) -> list[Reply] | None:
    scope = _scope(ctx)
    if scope is None:
        return None
    leads = ctx.services.leads.open_leads(ctx.repos, MAX_LISTED, scope)
    buttons = [
        [ctx.button_raw(f"{lead.ref_code} · {lead.full_name}"[:60], cb.build(cb.LEAD_DETAIL, str(lead.id)))]
        for lead in leads[:10]
    ]
    return [ctx.reply("staff_leads", buttons, leads=leads, statuses=ctx.texts.labels["lead_status"])]


def lead_detail(ctx: Ctx, arg: str | None) -> list[Reply] | None:
    lead = _lead(ctx, arg)
    if lead is None:
        return None
    programme = ctx.catalog.kb.by_id.get(lead.programme_id or "")
    buttons = lead_staff_buttons(ctx.texts, lead)[:1]
    return [
        ctx.reply(
            "staff_lead_detail",
            buttons,
            lead=lead,
            programme=programme,
            statuses=ctx.texts.labels["lead_status"],
        )
    ]


def set_status(ctx: Ctx, arg: str | None) -> list[Reply] | None:
    lead_id, _, status = (arg or "").partition(":")
    lead = _lead(ctx, lead_id)
    if lead is None or status not in TRANSITIONS:
        return None
    try:
        ctx.services.leads.change_status(ctx.repos, lead, status, _actor(ctx))
    except TransitionError:
        return [
            ctx.reply(
                "staff_status_refused",
                lead=lead,
                wanted=status,
                statuses=ctx.texts.labels["lead_status"],
                reopening=is_reopening(lead.status),
            )
        ]
    return [
        ctx.reply(
            "staff_status_changed",
            lead_staff_buttons(ctx.texts, lead)[:1],
            lead=lead,
            statuses=ctx.texts.labels["lead_status"],
        )
    ]


def start_answer(ctx: Ctx, arg: str | None) -> list[Reply] | None:
    scope = _scope(ctx)
    if scope is None or arg is None or not arg.isdigit():
        return None
    question = ctx.repos.staff_questions.get(int(arg))
    if question is None or not scope.sees_question(question):
        return None
    ctx.state.go(FLOW, "wait_text", AnswerState(question_id=saved_id(question)))
    return [ctx.reply("staff_answer_prompt", [[ctx.button("cancel", cb.CANCEL)]], question=question)]


def on_answer_text(ctx: Ctx, text: str) -> list[Reply]:
    question = ctx.repos.staff_questions.get(ctx.state.values(AnswerState).question_id)
    ctx.state.reset()
    scope = _scope(ctx)
    if question is None or scope is None or not scope.sees_question(question):
        return [ctx.main_menu()]
    already = ctx.services.questions.answer(ctx.repos, question, text, _actor(ctx))
    return [ctx.reply("staff_answer_sent", question=question, already=already)]


def broadcast_command(ctx: Ctx) -> list[Reply] | None:
    """/broadcast TEXT: a draft to everyone (a province account: everyone of its province), previewed
    with the recipient counts before it goes."""
    scope = _scope(ctx)
    if scope is None:
        return None
    text = ctx.command_text
    if not text.strip():
        return [ctx.reply("staff_broadcast_usage")]
    service = ctx.services.broadcasts
    audience = Audience(province=scope.audience_province(None))
    try:
        draft = service.create(ctx.repos, text, audience, [], _actor(ctx))
    except TemplateProblem as exc:
        return [ctx.reply("staff_broadcast_usage", problem=str(exc))]
    counts = service.count(ctx.repos, ctx.catalog.kb, audience)
    sample = render(text, ctx.user, ctx.profile)
    labels = ctx.texts.labels["staff"]
    buttons = [
        [
            ctx.button_raw(
                labels["broadcast_send"].format(n=sum(counts.values())),
                cb.build(cb.BROADCAST, f"{draft.id}:ok"),
            )
        ],
        [ctx.button_raw(labels["broadcast_cancel"], cb.build(cb.BROADCAST, f"{draft.id}:no"))],
    ]
    return [ctx.reply("staff_broadcast_preview", buttons, sample=sample, counts=counts)]


def broadcast_decision(ctx: Ctx, arg: str | None) -> list[Reply] | None:
    broadcast_id, _, decision = (arg or "").partition(":")
    scope = _scope(ctx)
    if scope is None or not broadcast_id.isdigit() or decision not in ("ok", "no"):
        return None
    draft = ctx.repos.broadcasts.get(int(broadcast_id))
    if draft is None or not scope.sees_broadcast(draft):
        return None
    service = ctx.services.broadcasts
    if decision == "no":
        service.cancel(ctx.repos, draft, _actor(ctx))
        return [ctx.reply("staff_broadcast_done", cancelled=True, broadcast=draft, queued=0)]
    queued = service.confirm(ctx.repos, ctx.catalog.kb, draft, _actor(ctx))
    return [ctx.reply("staff_broadcast_done", cancelled=False, broadcast=draft, queued=queued)]


def _lead(ctx: Ctx, arg: str | None) -> Lead | None:
    """The lead of a button, when this staff member may see it (else the stale-menu answer)."""
    scope = _scope(ctx)
    if scope is None or arg is None or not arg.isdigit():
        return None
    lead = ctx.repos.leads.get(int(arg))
    return lead if lead is not None and scope.sees_lead(lead) else None
