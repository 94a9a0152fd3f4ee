"""Centre staff in the chat: new leads arrive with status buttons, ``/leads`` lists open leads, and
a question from "Hỏi cán bộ" is answered by tapping "Trả lời" and typing the answer.

Only staff (``STAFF_TELEGRAM_IDS`` or a dashboard account linked to a Telegram id) may use these;
anyone else pressing such a button gets the stale-menu answer. The lead workflow itself
(``change_status``) is shared with the web dashboard.
"""

from __future__ import annotations

from sqlmodel import col, select

from handlers import broadcasts, notify
from handlers import callbacks as cb
from handlers.context import Ctx
from handlers.texts import Texts
from handlers.types import Reply
from storage.models import Broadcast, Lead, LeadEvent, StaffQuestion, utcnow
from storage.repositories import Repos

FLOW = "staff_answer"
OPEN_STATUSES = ("new", "contacted", "eligible", "planned")
# Which status may follow which (mới → đã liên hệ → đủ / không đủ điều kiện → kế hoạch → duyệt / từ chối).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("contacted", "eligible", "not_eligible"),
    "contacted": ("eligible", "not_eligible"),
    "eligible": ("planned", "not_eligible"),
    "not_eligible": ("contacted", "eligible"),
    "planned": ("approved", "rejected"),
    "approved": (),
    "rejected": ("planned",),
}
MAX_LISTED = 20


class TransitionError(ValueError):
    """The lead cannot move to that status from where it is."""


def change_status(
    repos: Repos, texts: Texts, lead: Lead, to_status: str, actor: str, note: str | None = None
) -> LeadEvent:
    """Move a lead along the workflow, record who did it, and tell the producer."""
    if to_status not in TRANSITIONS.get(lead.status, ()):
        raise TransitionError(f"{lead.status} -> {to_status}")
    event = LeadEvent(
        lead_id=lead.id,
        actor=actor[:128],
        from_status=lead.status,
        to_status=to_status,
        note=(note or "").strip()[:2000] or None,
    )
    lead.status = to_status
    lead.updated_at = utcnow()
    repos.session.add(lead)
    repos.session.add(event)
    repos.session.flush()
    notify.lead_status_to_producer(repos, texts, lead, event)
    return event


def add_note(repos: Repos, lead: Lead, actor: str, note: str) -> LeadEvent:
    event = LeadEvent(lead_id=lead.id, actor=actor[:128], note=note.strip()[:2000])
    repos.session.add(event)
    repos.session.flush()
    return event


def answer_question(repos: Repos, texts: Texts, question: StaffQuestion, answer: str, actor: str) -> None:
    question.answer = answer.strip()[:4000]
    question.answered_by = actor[:128]
    question.answered_at = utcnow()
    question.status = "answered"
    repos.session.add(question)
    repos.session.flush()
    notify.answer_to_producer(repos, texts, question)


def is_staff(ctx: Ctx) -> bool:
    return ctx.user.channel == notify.STAFF_CHANNEL and ctx.user.external_id in notify.staff_telegram_ids(
        ctx.repos, ctx.staff_ids
    )


def _actor(ctx: Ctx) -> str:
    return f"telegram:{ctx.user.external_id} {ctx.user.display_name}".strip()


def list_leads(ctx: Ctx) -> list[Reply] | None:
    if not is_staff(ctx):
        return None
    stmt = (
        select(Lead)
        .where(col(Lead.status).in_(OPEN_STATUSES))
        .order_by(col(Lead.id).desc())
        .limit(MAX_LISTED)
    )
    leads = list(ctx.repos.session.exec(stmt).all())
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
    buttons = notify.lead_staff_buttons(ctx.texts, lead)[:1]
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
        change_status(ctx.repos, ctx.texts, lead, status, _actor(ctx))
    except TransitionError:
        return [
            ctx.reply(
                "staff_status_refused", lead=lead, wanted=status, statuses=ctx.texts.labels["lead_status"]
            )
        ]
    return [
        ctx.reply(
            "staff_status_changed",
            notify.lead_staff_buttons(ctx.texts, lead)[:1],
            lead=lead,
            statuses=ctx.texts.labels["lead_status"],
        )
    ]


def start_answer(ctx: Ctx, arg: str | None) -> list[Reply] | None:
    if not is_staff(ctx) or not (arg or "").isdigit():
        return None
    question = ctx.repos.staff_questions.get(int(arg))
    if question is None:
        return None
    ctx.state.go(FLOW, "wait_text", question_id=question.id)
    return [ctx.reply("staff_answer_prompt", [[ctx.button("cancel", cb.CANCEL)]], question=question)]


def on_answer_text(ctx: Ctx, text: str) -> list[Reply]:
    question = ctx.repos.staff_questions.get(int(ctx.state.data.get("question_id", 0)))
    ctx.state.reset()
    if question is None or not is_staff(ctx):
        return [ctx.main_menu()]
    already = question.status == "answered"
    answer_question(ctx.repos, ctx.texts, question, text, _actor(ctx))
    return [ctx.reply("staff_answer_sent", question=question, already=already)]


def broadcast_command(ctx: Ctx) -> list[Reply] | None:
    """/broadcast TEXT: a draft to everyone, previewed with the recipient counts before it goes."""
    if not is_staff(ctx):
        return None
    text = ctx.command_text
    if not text.strip():
        return [ctx.reply("staff_broadcast_usage")]
    try:
        draft = broadcasts.create(ctx.repos, text, broadcasts.Audience(), [], _actor(ctx))
    except broadcasts.TemplateProblem as exc:
        return [ctx.reply("staff_broadcast_usage", problem=str(exc))]
    staff_ids = notify.staff_telegram_ids(ctx.repos, ctx.staff_ids)
    counts = broadcasts.count_by_channel(
        broadcasts.recipients(ctx.repos, ctx.catalog.kb, broadcasts.Audience(), staff_ids, ctx.channels),
        ctx.channels,
    )
    sample = broadcasts.render(text, ctx.user, ctx.profile)
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
    if not is_staff(ctx) or not broadcast_id.isdigit() or decision not in ("ok", "no"):
        return None
    draft = ctx.repos.session.get(Broadcast, int(broadcast_id))
    if draft is None:
        return None
    if decision == "no":
        broadcasts.cancel(ctx.repos, draft)
        return [ctx.reply("staff_broadcast_done", cancelled=True, broadcast=draft, queued=0)]
    queued = broadcasts.confirm(
        ctx.repos, ctx.catalog.kb, draft, notify.staff_telegram_ids(ctx.repos, ctx.staff_ids), ctx.channels
    )
    return [ctx.reply("staff_broadcast_done", cancelled=False, broadcast=draft, queued=queued)]


def _lead(ctx: Ctx, arg: str | None) -> Lead | None:
    if not is_staff(ctx) or not (arg or "").isdigit():
        return None
    return ctx.repos.leads.get(int(arg))
