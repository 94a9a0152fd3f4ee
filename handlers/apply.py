"""The application form: collect what the centre needs, show a summary, submit one lead.

The draft lives in the conversation state (``Memory.draft``, kept across menu resets), so a restart or a
detour loses nothing and the user can resume or start over. What the profile already holds is
reused. Each answer is validated; after two polite re-asks with an example the user is offered a
way out. Submitting is idempotent: the draft id is the lead's unique submission key, so a double
tap on "Gửi" creates one lead and answers both taps with the same reference code.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from handlers import callbacks as cb
from handlers.cards import documents_for, short_title
from handlers.context import Ctx, Draft, FlowState
from handlers.flow import Flow
from handlers.options import parse_option
from handlers.types import Button, Reply
from knowledge.eligibility import Profile as EligibilityProfile
from knowledge.models import Category, Programme
from knowledge.money import format_vnd, parse_money
from knowledge.phone import format_phone, normalise_phone
from knowledge.provinces import place_type_of
from knowledge.text import fold
from storage.models import Lead, Profile, table_of

FLOW = "apply"
FIELDS = (
    "programme",
    "full_name",
    "phone",
    "establishment_name",
    "legal_form",
    "province",
    "commune",
    "sector",
    "plan",
    "estimated_cost_vnd",
    "consent",
)
PROFILE_FIELDS = ("full_name", "phone", "establishment_name", "legal_form", "province", "commune", "sector")
MAX_RETRIES = 2
PROGRAMME_CHOICES = 6
# Where each typed answer is stored: a limit in the form may never exceed what these columns hold.
STORED_IN = (Lead, Profile)


class ApplyState(FlowState):
    """The form's own values besides the draft: the programme a "resume or start over?" offer was
    made for."""

    flow: ClassVar[str] = FLOW

    offer_programme: str | None = None


@dataclass(frozen=True)
class Rejected:
    """A typed answer that was not taken, and why (a key of ``apply_rejected`` in labels.yaml)."""

    reason: str


def max_length(field: str, spec: dict[str, Any]) -> int:
    """The longest answer the form takes for a text field: its own limit, or less when a column
    that stores it is shorter (so an answer the form accepts can always be saved)."""
    limits = [int(spec["max"])]
    for model in STORED_IN:
        column = table_of(model).c.get(field)
        length = getattr(column.type, "length", None) if column is not None else None
        if length:
            limits.append(int(length))
    return min(limits)


# --- entry points ---


def start(ctx: Ctx, programme_id: str | None = None) -> list[Reply] | None:
    """Open the form (optionally for one programme); offer to resume an unfinished draft."""
    if programme_id is not None and not isinstance(ctx.catalog.kb.by_id.get(programme_id), Programme):
        return None
    draft = ctx.state.memory.draft
    if draft and not draft.submitted and len(draft.values) > 1:
        same = programme_id is None or draft.values.get("programme") == programme_id
        if same:
            ctx.state.go(FLOW, "resume_offer", ApplyState(offer_programme=programme_id))
            version = ctx.new_menu_version()
            labels = ctx.texts.labels["apply"]
            buttons = [
                [Button(labels["resume"], cb.answer(version, "resume"))],
                [Button(labels["start_over"], cb.answer(version, "restart"))],
                [ctx.button("cancel", cb.CANCEL)],
            ]
            return [ctx.reply("apply_resume_offer", buttons, title=_programme_title(ctx, draft.values))]
    return _new_draft(ctx, programme_id)


def resume(ctx: Ctx) -> list[Reply]:
    return _continue(ctx)


def on_choice(ctx: Ctx, value: str) -> list[Reply] | None:
    draft = ctx.state.memory.draft
    step = ctx.state.step
    if step == "resume_offer":
        if value == "resume":
            ctx.state.go(FLOW, None)
            return _continue(ctx)
        if value == "restart":
            return _new_draft(ctx, ctx.state.values(ApplyState).offer_programme)
        return None
    if draft is None:
        return None
    if step == "summary":
        if value.startswith("edit:") and value[5:] in FIELDS:
            draft.editing = True
            return [_ask(ctx, value[5:])]
        return None
    if step == "programme":
        return _choose_programme(ctx, value)
    if step == "legal_form":
        options = {str(o["value"]) for o in ctx.texts.questions["legal_form"]["options"]}
        return _store(ctx, "legal_form", value) if value in options else None
    if step == "estimated_cost_vnd" and value == "skip":
        return _store(ctx, "estimated_cost_vnd", None)
    if step == "full_name" and value == "use_name" and ctx.user.display_name.strip():
        return _store(ctx, "full_name", ctx.user.display_name.strip()[:100])
    if step == "consent":
        if value == "yes":
            return _store(ctx, "consent", ctx.now.isoformat())
        if value == "no":
            ctx.state.reset()
            return [ctx.main_menu("apply_no_consent")]
    return None


def on_text(ctx: Ctx, text: str) -> list[Reply]:
    step = ctx.state.step
    if step not in FIELDS or ctx.state.memory.draft is None:
        return _continue(ctx)
    value = _parse(ctx, step, text)
    if isinstance(value, Rejected):
        return [_ask(ctx, step, retry=True, rejected=value)]
    return _store(ctx, step, value)


def on_contact(ctx: Ctx, phone: str | None) -> list[Reply]:
    if ctx.state.step != "phone" or ctx.state.memory.draft is None:
        return _continue(ctx)
    value = normalise_phone(phone or "")
    if value is None:
        return [_ask(ctx, "phone", retry=True, rejected=Rejected("phone"))]
    return _store(ctx, "phone", value)


def go_back(ctx: Ctx) -> list[Reply]:
    draft = ctx.state.memory.draft
    if not draft or not draft.asked:
        return _continue(ctx)
    field = draft.asked.pop()
    draft.values.pop(field, None)
    return [_ask(ctx, field)]


def _typed(ctx: Ctx, text: str) -> list[Reply] | None:
    """A typed answer to the question asked; at the summary, the programme list or the resume
    offer, typed text is a question (None)."""
    if ctx.state.step in (None, "summary", "resume_offer", "programme"):
        return None
    return on_text(ctx, text)


def _resume_pending(ctx: Ctx) -> list[Reply] | None:
    return None if ctx.state.step == "resume_offer" else resume(ctx)


def submit(ctx: Ctx, draft_id: str | None) -> list[Reply] | None:
    """The "Gửi" button (``as:<draft id>``): create the lead once; repeat taps get the same answer."""
    if not draft_id:
        return None
    existing = ctx.repos.leads.by_submission_key(_submission_key(ctx, draft_id))
    if existing is not None:
        return [_confirmation(ctx, existing, again=True)]
    draft = ctx.state.memory.draft
    if not draft or draft.id != draft_id or _missing(ctx, draft) is not None:
        return None
    lead = _create_lead(ctx, draft)
    draft.submitted = lead.ref_code
    ctx.state.reset()
    return [_confirmation(ctx, lead, again=False)]


# --- the draft ---


def _new_draft(ctx: Ctx, programme_id: str | None) -> list[Reply]:
    values: dict[str, Any] = {}
    if programme_id:
        values["programme"] = programme_id
    for field in PROFILE_FIELDS:
        known = getattr(ctx.profile, field)
        if known:
            values[field] = known
    if ctx.profile.investment_cost_vnd:
        values["estimated_cost_vnd"] = ctx.profile.investment_cost_vnd
    ctx.state.go(FLOW, None, ApplyState())
    ctx.state.memory.draft = Draft(id=uuid.uuid4().hex[:16], values=values)
    intro = ctx.reply("apply_intro", title=_programme_title(ctx, values), prefilled=len(values) > 1)
    return [intro, *_continue(ctx)]


def _missing(ctx: Ctx, draft: Draft) -> str | None:
    values = draft.values
    for field in FIELDS:
        if field == "estimated_cost_vnd":
            if field not in values:
                return field
        elif not values.get(field):
            return field
    return None


def _continue(ctx: Ctx) -> list[Reply]:
    draft = ctx.state.memory.draft
    if draft is None or draft.submitted:
        return _new_draft(ctx, None)
    field = _missing(ctx, draft)
    if field is None:
        return [_summary(ctx)]
    return [_ask(ctx, field)]


def _store(ctx: Ctx, field: str, value: Any) -> list[Reply]:
    draft = _draft(ctx)
    draft.values[field] = value
    draft.retries = 0
    if field not in draft.asked:
        draft.asked.append(field)
    if field in PROFILE_FIELDS:
        ctx.update_profile(**{field: value})
    if field == "commune" and (place := place_type_of(value)):
        ctx.update_profile(place_type=place)  # the address is newer than an earlier answer
    if field == "estimated_cost_vnd" and value:
        ctx.update_profile(investment_cost_vnd=value)
    if draft.editing:
        draft.editing = False
        return [_summary(ctx)]
    return _continue(ctx)


def _parse(ctx: Ctx, field: str, text: str) -> Any:
    """The value of a typed answer, or ``Rejected`` with the reason it was not taken."""
    spec = ctx.texts.apply_fields[field]
    kind = spec["kind"]
    text = text.strip()
    if kind == "text":
        cleaned = " ".join(text.split())
        if len(cleaned) > max_length(field, spec):
            return Rejected("too_long")
        if len(cleaned) < spec["min"]:
            return Rejected("too_short")
        if not any(c.isalpha() for c in cleaned):
            return Rejected("no_letters")
        if field == "full_name" and (any(c.isdigit() for c in cleaned) or "http" in cleaned.lower()):
            return Rejected("name_digits")
        return cleaned
    if kind == "phone":
        return normalise_phone(text) or Rejected("phone")
    if kind == "money":
        if fold(text) in {fold(w) for w in ctx.texts.questions["yesno_words"]["unknown"]}:
            return None
        return parse_money(text) or Rejected("money")
    if kind == "province":
        found = ctx.catalog.kb.provinces.resolve(text)
        return found.province.name if found else Rejected("province")
    if kind == "choice":
        return parse_option(ctx.texts.questions[spec["question"]], text) or Rejected("choice")
    if kind == "consent":
        words = ctx.texts.questions["yesno_words"]
        folded = fold(text)
        if folded in {fold(w) for w in words["yes"]} or folded.startswith("dong y"):
            return ctx.now.isoformat()
        return Rejected("consent")
    return Rejected("choice")


# --- questions ---


def _ask(ctx: Ctx, field: str, retry: bool = False, rejected: Rejected | None = None) -> Reply:
    spec = ctx.texts.apply_fields[field]
    draft = _draft(ctx)
    if retry:
        draft.retries += 1
    version = ctx.new_menu_version()
    ctx.state.step = field
    labels = ctx.texts.labels["apply"]
    rows: list[list[Button]] = []
    kind = spec["kind"]
    if kind == "programme":
        return _programme_question(ctx, version)
    if kind == "choice":
        question = ctx.texts.questions[spec["question"]]
        rows = [[Button(o["label"], cb.answer(version, str(o["value"])))] for o in question["options"]]
    elif kind == "money":
        rows = [[ctx.button("skip", cb.answer(version, "skip"))]]
    elif kind == "consent":
        rows = [
            [Button(labels["consent_yes"], cb.answer(version, "yes"))],
            [Button(labels["consent_no"], cb.answer(version, "no"))],
        ]
    elif field == "full_name" and ctx.user.display_name.strip():  # still offered after a refusal
        name = short_title(ctx.user.display_name.strip(), 40)
        rows = [[Button(labels["use_name"].format(name=name), cb.answer(version, "use_name"))]]
    too_many = draft.retries > MAX_RETRIES
    footer = [ctx.button("back", cb.back(version))] if draft.asked else []
    footer.append(ctx.button("cancel", cb.CANCEL))
    if too_many:
        rows.append([ctx.button("ask_staff", cb.ASK_STAFF)])
    rows.append(footer)
    question_text = spec.get("prompt") or ctx.texts.questions[spec["question"]]["prompt"]
    reasons = ctx.texts.labels["apply_rejected"]
    limit = max_length(field, spec) if kind == "text" else None
    reply = ctx.reply(
        "apply_question",
        rows,
        prompt=question_text,
        retry=retry,
        too_many=too_many,
        example=spec.get("example"),
        kind=kind,
        max_length=limit,
        rejected=reasons[rejected.reason].format(max=limit, min=spec.get("min")) if rejected else None,
    )
    if kind == "phone" and ctx.state.flow == FLOW:
        return Reply(text=reply.text, buttons=reply.buttons, ask_contact=True)
    return reply


def _programme_question(ctx: Ctx, version: int, category: str | None = None) -> Reply:
    ctx.state.step = "programme"
    if category is None:
        programmes = _likely_programmes(ctx)
    else:
        programmes = [
            p
            for p in ctx.catalog.kb.programmes
            if str(p.category) == category and p.scope in ("national", ctx.profile.province)
        ]
    rows = [[Button(short_title(p.title), cb.answer(version, f"p:{p.id}"))] for p in programmes]
    if category is None:
        names = ctx.texts.labels["categories"]
        rows += [
            [Button(names[str(c)], cb.answer(version, f"c:{c}"))]
            for c in Category
            if c != Category.GENERAL and not any(p.category == c for p in programmes)
        ]
    rows.append([ctx.button("cancel", cb.CANCEL)])
    return ctx.reply("apply_choose_programme", rows, likely=bool(programmes) and category is None)


def _likely_programmes(ctx: Ctx) -> list[Programme]:
    profile = ctx.eligibility_profile()
    if profile.legal_form is None and profile.province is None:
        return []
    scopes = tuple(s for s in ("national", ctx.profile.province) if s)
    return ctx.catalog.evaluator.eligible(profile, ctx.today, scopes)[:PROGRAMME_CHOICES]


def _choose_programme(ctx: Ctx, value: str) -> list[Reply] | None:
    kind, _, arg = value.partition(":")
    if kind == "p" and isinstance(ctx.catalog.kb.by_id.get(arg), Programme):
        return _store(ctx, "programme", arg)
    if kind == "c" and arg in {str(c) for c in Category}:
        return [_programme_question(ctx, ctx.new_menu_version(), arg)]
    return None


# --- summary and submission ---


def _display(ctx: Ctx, field: str, value: Any) -> str:
    if value in (None, ""):
        return ctx.texts.label("apply_summary", "not_given")
    if field == "programme":
        entry = ctx.catalog.kb.by_id.get(value)
        return entry.title if entry else str(value)
    if field == "phone":
        return format_phone(value)
    if field == "estimated_cost_vnd":
        return format_vnd(int(value))
    if field == "legal_form":
        for option in ctx.texts.questions["legal_form"]["options"]:
            if str(option["value"]) == value:
                return str(option["label"])
    if field == "consent":
        return ctx.texts.label("apply_summary", "consented")
    return str(value)


def _summary(ctx: Ctx) -> Reply:
    draft = _draft(ctx)
    ctx.state.step = "summary"
    version = ctx.new_menu_version()
    specs = ctx.texts.apply_fields
    items = [{"name": specs[f]["name"], "value": _display(ctx, f, draft.values.get(f))} for f in FIELDS]
    edit = ctx.texts.labels["apply"]["edit"]
    rows = [[Button(ctx.texts.labels["apply"]["submit"], cb.build(cb.APPLY_SUBMIT, draft.id))]]
    editable = [f for f in FIELDS if f != "consent"]
    for i in range(0, len(editable), 2):
        rows.append(
            [
                Button(edit.format(name=specs[f]["name"]), cb.answer(version, f"edit:{f}"))
                for f in editable[i : i + 2]
            ]
        )
    rows.append([ctx.button("cancel", cb.CANCEL)])
    return ctx.reply("apply_summary", rows, items=items)


def _submission_key(ctx: Ctx, draft_id: str) -> str:
    return f"{ctx.user_id}:{draft_id}"


def _create_lead(ctx: Ctx, draft: Draft | dict[str, Any]) -> Lead:
    draft = Draft.model_validate(draft) if isinstance(draft, dict) else draft
    values = draft.values
    programme = ctx.catalog.kb.programme(values["programme"])
    if programme is None:
        raise KeyError(values["programme"])  # the form only offers programmes
    verdict = ctx.catalog.evaluator.evaluate(programme, _applicant_profile(ctx, values), ctx.today)
    lead = Lead(
        submission_key=_submission_key(ctx, draft.id),
        user_id=ctx.user_id,
        channel=ctx.user.channel,
        programme_id=programme.id,
        category=str(programme.category),
        full_name=values["full_name"],
        phone=values["phone"],
        establishment_name=values["establishment_name"],
        legal_form=values["legal_form"],
        province=values["province"],
        commune=values["commune"],
        sector=values["sector"],
        products=values["sector"],
        plan=values["plan"],
        estimated_cost_vnd=values.get("estimated_cost_vnd"),
        eligibility={
            **verdict.to_dict(),
            "outcomes": [{"status": str(o.status), "reason": o.reason} for o in verdict.outcomes],
        },
        consent_at=ctx.now,
    )
    # Another process may have taken the same submission a moment ago: then that lead is the answer.
    stored, new = ctx.services.leads.submit(ctx.repos, lead, programme, ctx.today.year)
    if new:
        ctx.note_interest(str(programme.category))
    return stored


def _applicant_profile(ctx: Ctx, values: dict[str, Any]) -> EligibilityProfile:
    """The profile the pre-check of a lead uses: the stored one, overridden by the answers of this
    application as they stand after the review step (an edited answer wins)."""
    answers: dict[str, Any] = {
        "legal_form": values.get("legal_form"),
        "province": values.get("province"),
        "investment_cost_vnd": values.get("estimated_cost_vnd"),
    }
    place = place_type_of(values.get("commune") or "")
    if place:
        answers["place_type"] = place
    known = ctx.eligibility_profile().model_dump()
    return EligibilityProfile.model_validate(
        known | {k: v for k, v in answers.items() if v is not None or k == "investment_cost_vnd"}
    )


def _confirmation(ctx: Ctx, lead: Lead, again: bool) -> Reply:
    programme = ctx.catalog.kb.by_id.get(lead.programme_id or "")
    documents = []
    if isinstance(programme, Programme):
        documents = documents_for(ctx.texts, programme, lead.legal_form)
    buttons = [
        [Button(ctx.texts.labels["apply"]["my_applications"], cb.MY_APPLICATIONS)],
        [ctx.button("main_menu", cb.MAIN_MENU)],
    ]
    return ctx.reply("apply_done", buttons, lead=lead, programme=programme, documents=documents, again=again)


def my_applications(ctx: Ctx) -> list[Reply]:
    """/hoso: the user's applications with their status, newest first."""
    leads = ctx.repos.leads.for_user(ctx.user_id)
    titles = {lead.id: _programme_title(ctx, {"programme": lead.programme_id}) for lead in leads}
    return [
        ctx.main_menu("my_applications", leads=leads, titles=titles, statuses=ctx.texts.labels["lead_status"])
    ]


def _draft(ctx: Ctx) -> Draft:
    """The draft being filled in (a step past the start always has one)."""
    draft = ctx.state.memory.draft
    if draft is None:
        raise LookupError("no application draft")
    return draft


STEPS = Flow(
    FLOW, on_text=_typed, on_choice=on_choice, on_contact=on_contact, resume=_resume_pending, back=go_back
)


def _programme_title(ctx: Ctx, values: dict[str, Any]) -> str | None:
    entry = ctx.catalog.kb.by_id.get(values.get("programme") or "")
    return entry.title if entry else None
