"""The eligibility check as a short conversation.

The next question is derived, not stored: the programmes still in play are evaluated against the
profile, and the first field (in ``ELIGIBILITY_FIELDS`` order) that one of them still needs is
asked. Answers go straight into the stored profile, so a restart resumes at the same question, an
answer the profile already holds is never asked again, and "quay lại" simply forgets the last answer.
"""

from __future__ import annotations

from typing import Any, ClassVar, overload

from pydantic import Field

from handlers import callbacks as cb
from handlers.cards import documents_for, short_title
from handlers.context import ELIGIBILITY_FIELDS, Ctx, FlowState
from handlers.flow import Flow
from handlers.options import match_words, option_words
from handlers.types import Button, Reply
from knowledge.eligibility import Progress, Status, Verdict
from knowledge.models import Programme
from knowledge.money import format_vnd, parse_money
from knowledge.provinces import place_type_of

FLOW = "eligibility"
MAX_QUESTIONS = 8
MAX_RETRIES = 2
RESULT_BUTTONS = 5
_AMOUNT_FIELDS = ("technology_line", "investment_cost_vnd")


class CheckState(FlowState):
    """The check's own values: the programme checked (every one when None), the questions asked in
    order, those skipped, the pending one and how often it was re-asked."""

    flow: ClassVar[str] = FLOW

    target: str | None = None
    asked: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    retries: int = 0
    pending: str | None = None


def _check(ctx: Ctx) -> CheckState:
    return ctx.state.values(CheckState)


# --- entry points ---


@overload
def start(ctx: Ctx, target: None = None) -> list[Reply]: ...
@overload
def start(ctx: Ctx, target: str | None) -> list[Reply] | None: ...
def start(ctx: Ctx, target: str | None = None) -> list[Reply] | None:
    """Begin a check for every programme, or for one (``target``); None when the target is unknown."""
    if target is not None and not isinstance(ctx.catalog.kb.by_id.get(target), Programme):
        return None
    ctx.state.go(FLOW, None, CheckState(target=target))
    known = _known_answers(ctx)
    title = ctx.catalog.kb.by_id[target].title if target else None
    intro = ctx.reply("eligibility_intro", title=title, known=known)
    return [intro, *_continue(ctx)]


def restart(ctx: Ctx) -> list[Reply]:
    target = _check(ctx).target
    ctx.update_profile(**dict.fromkeys(ELIGIBILITY_FIELDS))
    return start(ctx, target) or start(ctx)


def on_choice(ctx: Ctx, value: str) -> list[Reply] | None:
    """A button answer to the pending question (already checked to be current); None if forged."""
    if ctx.state.step == "edit":
        return _edit_field(ctx, value)
    field = _check(ctx).pending
    if field not in ELIGIBILITY_FIELDS:
        return None
    question = ctx.texts.questions[field]
    if value == "skip":
        return _skip(ctx, field)
    parsed = _value_from_button(question, value)
    if parsed is _INVALID:
        return None
    return _accept(ctx, field, parsed)


def on_text(ctx: Ctx, text: str) -> list[Reply]:
    if ctx.state.step in ("results", "edit"):
        return []  # not an answer: the dialogue treats it as a question
    check = _check(ctx)
    field = check.pending
    if field not in ELIGIBILITY_FIELDS:
        return _continue(ctx)
    question = ctx.texts.questions[field]
    parsed, note = _value_from_text(ctx, field, question, text)
    if parsed is _SKIP:
        return _skip(ctx, field)
    if parsed is _INVALID:
        check.retries += 1
        return [_ask(ctx, field, retry=True)]
    replies = [ctx.reply("eligibility_note", note=note)] if note else []
    return replies + _accept(ctx, field, parsed)


def go_back(ctx: Ctx) -> list[Reply]:
    check = _check(ctx)
    if not check.asked:
        return _continue(ctx)
    field = check.asked.pop()
    check.skipped = [f for f in check.skipped if f != field]
    ctx.update_profile(**{field: None})
    return [_ask(ctx, field)]


def edit_menu(ctx: Ctx) -> list[Reply]:
    version = ctx.new_menu_version()
    ctx.state.step = "edit"
    buttons = [
        [Button(f"{item['name']}: {item['value']}", cb.answer(version, f"f:{item['field']}"))]
        for item in _known_answers(ctx)
    ]
    buttons.append([ctx.button("restart_check", cb.RESTART_CHECK), ctx.button("main_menu", cb.MAIN_MENU)])
    return [ctx.reply("eligibility_edit", buttons)]


def edit_answers(ctx: Ctx) -> list[Reply]:
    """The "change my answers" button (on the results, or later from anywhere): the known answers,
    one button each."""
    if ctx.state.flow != FLOW:
        ctx.state.go(FLOW, "results", CheckState())
    return edit_menu(ctx)


def resume(ctx: Ctx) -> list[Reply]:
    """Re-ask whatever is pending (after a restart, media, or an unreadable answer)."""
    return _continue(ctx)


def _resume_pending(ctx: Ctx) -> list[Reply] | None:
    """Resume a question in progress; the results and the edit menu are not re-shown."""
    return None if ctx.state.step in (None, "results", "edit") else resume(ctx)


def _typed(ctx: Ctx, text: str) -> list[Reply] | None:
    """An answer to the pending question; text typed at the results is a question (None)."""
    return on_text(ctx, text) or None


STEPS = Flow(FLOW, on_text=_typed, on_choice=on_choice, resume=_resume_pending, back=go_back)


# --- answers ---

_INVALID = object()
_SKIP = object()


def _value_from_button(question: dict[str, Any], value: str) -> Any:
    kind = question["kind"]
    if kind == "yesno":
        return {"yes": True, "no": False, "unknown": None}.get(value, _INVALID)
    values = [str(o["value"]) for o in question.get("options", [])]
    if value not in values:
        return _INVALID
    return {"yes": True, "no": False}.get(value, value) if set(values) == {"yes", "no"} else value


def _value_from_text(ctx: Ctx, field: str, question: dict[str, Any], text: str) -> tuple[Any, str | None]:
    kind = question["kind"]
    if kind == "money":
        if match_words(text, {"skip": ctx.texts.questions["yesno_words"]["unknown"]}):
            return _SKIP, None
        amount = parse_money(text)
        if not amount:
            return _INVALID, None
        # Read the amount back: "1.2" vs "1,2" and "tr" vs "củ" are easy to get wrong.
        return amount, ctx.texts.render("amount_understood", amount=amount)
    if kind == "province":
        found = ctx.catalog.kb.provinces.resolve(text)
        if found is None:
            return _INVALID, None
        note = None
        if found.old_name:
            note = ctx.texts.render("province_renamed", old=found.old_name, new=found.province.name)
        place = place_type_of(text)
        if place and ctx.profile.place_type is None:
            ctx.update_profile(place_type=place)
        return found.province.name, note
    if kind == "yesno":
        words = ctx.texts.questions["yesno_words"]
        value = match_words(text, {"unknown": words["unknown"]}) or match_words(
            text, {"yes": words["yes"], "no": words["no"]}
        )
        return {"yes": True, "no": False, "unknown": _SKIP}.get(value or "", _INVALID), None
    options = option_words(question)
    if text.strip().isdigit() and 1 <= int(text) <= len(options):
        value = list(options)[int(text) - 1]
    else:
        value = match_words(text, options)
    if value is None:
        return _INVALID, None
    return _value_from_button(question, value), None


def _accept(ctx: Ctx, field: str, value: Any) -> list[Reply]:
    if value is None:
        return _skip(ctx, field)
    ctx.update_profile(**{field: value})
    _mark_asked(ctx, field)
    return _continue(ctx)


def _skip(ctx: Ctx, field: str) -> list[Reply]:
    skipped = _check(ctx).skipped
    if field not in skipped:
        skipped.append(field)
    _mark_asked(ctx, field)
    return _continue(ctx)


def _mark_asked(ctx: Ctx, field: str) -> None:
    check = _check(ctx)
    if field not in check.asked:
        check.asked.append(field)
    check.retries = 0


def _edit_field(ctx: Ctx, value: str) -> list[Reply] | None:
    field = value[2:] if value.startswith("f:") else ""
    if field not in ELIGIBILITY_FIELDS:
        return None
    ctx.update_profile(**{field: None})
    check = _check(ctx)
    check.skipped = [f for f in check.skipped if f != field]
    check.asked = [f for f in check.asked if f != field]
    return [_ask(ctx, field)]


# --- the next question, or the results ---


def _progress(ctx: Ctx) -> Progress:
    """What the next question depends on: of the programme checked, or of every programme (only
    those the answers so far have not ruled out are evaluated)."""
    profile = ctx.eligibility_profile()
    target = ctx.catalog.kb.programme(_check(ctx).target)
    if target is not None:
        return Progress.of([ctx.catalog.evaluator.evaluate(target, profile, ctx.today)])
    return ctx.catalog.evaluator.progress(profile, ctx.today)


def _verdicts(ctx: Ctx) -> list[Verdict]:
    """The verdicts the results show: the programme checked, or every programme except other
    provinces' local ones once the producer's province is known."""
    profile = ctx.eligibility_profile()
    target = ctx.catalog.kb.programme(_check(ctx).target)
    if target is not None:
        return [ctx.catalog.evaluator.evaluate(target, profile, ctx.today)]
    province = ctx.profile.province
    scopes = None if province is None else ("national", province)
    return ctx.catalog.evaluator.verdicts(profile, ctx.today, scopes)


def next_field(ctx: Ctx, progress: Progress) -> str | None:
    """The first field a programme still in play needs, or an amount question; None when done."""
    check = _check(ctx)
    if len(check.asked) >= MAX_QUESTIONS:
        return None
    skipped = set(check.skipped)
    for field in ELIGIBILITY_FIELDS:
        if field in progress.needed and field not in skipped:
            return field
    profile = ctx.profile
    targeted = check.target is not None
    if (
        targeted
        and progress.wants_line
        and profile.technology_line is None
        and "technology_line" not in skipped
    ):
        return "technology_line"
    if progress.wants_cost and profile.investment_cost_vnd is None and "investment_cost_vnd" not in skipped:
        return "investment_cost_vnd"
    return None


def _continue(ctx: Ctx) -> list[Reply]:
    field = next_field(ctx, _progress(ctx))
    if field is None:
        return _results(ctx, _verdicts(ctx))
    return [_ask(ctx, field)]


def _ask(ctx: Ctx, field: str, retry: bool = False) -> Reply:
    question = ctx.texts.questions[field]
    version = ctx.new_menu_version()
    ctx.state.step = field
    check = _check(ctx)
    check.pending = field
    rows: list[list[Button]] = []
    if question["kind"] in ("choice",):
        rows = [[Button(o["label"], cb.answer(version, str(o["value"])))] for o in question["options"]]
    elif question["kind"] == "yesno":
        rows = [
            [ctx.button("yes", cb.answer(version, "yes")), ctx.button("no", cb.answer(version, "no"))],
            [ctx.button("dont_know", cb.answer(version, "unknown"))],
        ]
    elif question["kind"] == "money":
        rows = [[ctx.button("skip", cb.answer(version, "skip"))]]
    footer = [ctx.button("cancel", cb.CANCEL)]
    if check.asked:
        footer.insert(0, ctx.button("back", cb.back(version)))
    rows.append(footer)
    number = len(check.asked) + 1
    prompt = question.get("retry", question["prompt"]) if retry else question["prompt"]
    many_retries = retry and check.retries > MAX_RETRIES
    return ctx.reply(
        "eligibility_question",
        rows,
        number=number,
        prompt=prompt,
        retry=retry,
        many_retries=many_retries,
        kind=question["kind"],
    )


def _display_value(ctx: Ctx, field: str, value: Any) -> str:
    question = ctx.texts.questions[field]
    if isinstance(value, bool):
        return ctx.texts.label("buttons", "yes" if value else "no")
    if field == "investment_cost_vnd":
        return format_vnd(int(value))
    for option in question.get("options", []):
        if str(option["value"]) == str(value):
            return str(option["label"])
    return str(value)


def _known_answers(ctx: Ctx) -> list[dict[str, str]]:
    known = []
    for field in ELIGIBILITY_FIELDS:
        value = getattr(ctx.profile, field)
        if value is not None:
            known.append(
                {
                    "field": field,
                    "name": ctx.texts.questions[field]["name"],
                    "value": _display_value(ctx, field, value),
                }
            )
    return known


def _first_reason(verdict: Verdict, status: Status) -> str:
    for outcome in verdict.outcomes:
        if outcome.status == status:
            return outcome.reason
    return verdict.reasons[0]


def _group(verdicts: list[Verdict], status: Status) -> list[dict[str, Any]]:
    groups: dict[str, list[Programme]] = {}
    for v in verdicts:
        if v.status == status:
            groups.setdefault(_first_reason(v, status), []).append(v.programme)
    return [{"reason": reason, "programmes": programmes} for reason, programmes in groups.items()]


def _results(ctx: Ctx, verdicts: list[Verdict]) -> list[Reply]:
    ctx.state.step = "results"
    check = _check(ctx)
    check.pending = None
    ctx.new_menu_version()
    target = check.target
    single = verdicts[0] if target and verdicts else None
    eligible = [v for v in verdicts if v.status == Status.ELIGIBLE]
    # Programmes with a confirmed amount first (largest ceiling first), then the others by category.
    # One item is paid from one source only: of the national and provincial programmes for the same
    # kind of item, only the best is listed (amounts never add up).
    with_amount, overlapping = _best_per_item([v for v in eligible if v.programme.levels])
    listed = {str(v.programme.category) for v in with_amount}
    other_categories = list(
        dict.fromkeys(
            str(v.programme.category)
            for v in eligible
            if not v.programme.levels and str(v.programme.category) not in listed
        )
    )
    ordered = with_amount + [v for v in eligible if not v.programme.levels]
    buttons = [
        [Button("✅ " + short_title(v.programme.title), cb.build(cb.PROGRAMME, v.programme.id))]
        for v in ordered[:RESULT_BUTTONS]
    ]
    buttons.append([ctx.button("apply_programme", cb.build(cb.APPLY, target) if target else cb.APPLY)])
    buttons.append([ctx.button("change_answers", cb.EDIT_ANSWERS), ctx.button("main_menu", cb.MAIN_MENU)])
    if single is not None:
        documents = _documents(ctx, single.programme) if single.status != Status.NOT_ELIGIBLE else []
    else:
        # What every likely programme asks for: worth preparing whichever one the centre picks.
        lists = [_documents(ctx, v.programme) for v in eligible]
        documents = [d for d in lists[0] if all(d in other for other in lists[1:])] if lists else []
    return [
        ctx.reply(
            "eligibility_results",
            buttons,
            single=single,
            eligible=eligible,
            with_amount=with_amount,
            overlapping=overlapping,
            other_categories=other_categories,
            not_eligible=_group(verdicts, Status.NOT_ELIGIBLE),
            unknown=_group(verdicts, Status.UNKNOWN),
            documents=documents,
        )
    ]


def _ceiling(verdict: Verdict) -> int:
    return verdict.max_support_vnd or max(lv.cap_vnd or 0 for lv in verdict.programme.levels)


def _best_per_item(verdicts: list[Verdict]) -> tuple[list[Verdict], bool]:
    """The best programme of each kind of item (category), largest first; True when some were
    left out because another source pays for the same item."""
    best: dict[str, Verdict] = {}
    for verdict in verdicts:
        item = str(verdict.programme.category)
        if item not in best or _ceiling(verdict) > _ceiling(best[item]):
            best[item] = verdict
    return sorted(best.values(), key=lambda v: -_ceiling(v)), len(best) < len(verdicts)


def _documents(ctx: Ctx, programme: Programme) -> list[str]:
    return documents_for(ctx.texts, programme, ctx.profile.legal_form)
