"""The first reply to a free question: it answers what was asked, in a few short lines, for this
producer, then offers the rest as buttons (Chi tiết, Giấy tờ, Kiểm tra điều kiện, Đăng ký, Hỏi cán
bộ). The full card stays one tap away.

What the message says (``knowledge.understand``) shapes the answer: the producer's own amount gives
an estimate with its arithmetic, a place gives the province it belongs to now and its centre, a ward
of a centrally-run city gives the craft-village rule, "only buying and selling" or a legal form the
programme excludes gives a plain warning. What was read can be kept in the profile with one tap.
Out-of-scope topics get their own short answer and who really handles them.
"""

from __future__ import annotations

import re
from typing import Any

from handlers import callbacks as cb
from handlers.cards import entry_button, short_title
from handlers.context import Ctx
from handlers.types import Button, Reply
from knowledge.eligibility import Profile as EligibilityProfile
from knowledge.eligibility import applicable_level, max_support
from knowledge.models import Faq, LegalFormCriterion, OutOfScopeTopic, Programme, SupportLevel
from knowledge.money import format_vnd
from knowledge.passages import rank, sentences
from knowledge.text import fold
from knowledge.understand import MessageFacts, Wording, read_message

# How well a passage must answer the question to be shown (``knowledge.passages``; calibrated with
# ``bench/answer_quality.py``).
MIN_DETAIL_SCORE = 6.0
_AMOUNT = re.compile(r"\d\s*%|\btriệu\b|\btỷ\b|\bđồng\b", re.IGNORECASE)


def read(ctx: Ctx, text: str) -> MessageFacts:
    """What ``text`` says about the producer (see ``knowledge.understand``)."""
    normalised = ctx.catalog.index.normalise(text).repaired_text
    return read_message(text, ctx.catalog.kb.provinces, _wording(ctx), normalised)


def _wording(ctx: Ctx) -> Wording:
    questions = ctx.texts.questions
    forms = {str(o["value"]): [o["label"], *o.get("words", [])] for o in questions["legal_form"]["options"]}
    words = ctx.texts.labels["words"]
    facets = {name: facet["words"] for name, facet in ctx.texts.labels["answers"]["facets"].items()}
    return Wording(
        forms,
        words["trading_only"],
        words["machines"],
        words["lines"],
        facets,
        words["quantity"],
        words["eligible"],
    )


def answer_entry(
    ctx: Ctx, entry: Programme | Faq, facts: MessageFacts, question: str = "", compact: bool = False
) -> Reply:
    """The short answer about one entry: what it is for this producer, then the detail asked about
    (the documents, where, when, payment, or the passage that answers ``question``); ``compact`` (a
    second question) keeps only the essentials."""
    notes = place_notes(ctx, facts) + fit_notes(ctx, entry, facts)
    estimate = own = None
    if isinstance(entry, Programme):
        own = _estimate(ctx, entry, facts)
        estimate = own or _levels_line(ctx, entry)
    short = _short(entry, without_amounts=own is not None)
    details = details_for(
        ctx,
        entry,
        facts,
        question,
        shown=" ".join([short, estimate or "", *notes]),
        centre_named=bool(facts.place),
    )
    buttons = [] if compact else _entry_buttons(ctx, entry, facts)
    return ctx.reply(
        "quick_answer",
        buttons,
        title=short_title(entry.title, 70),
        short=short,
        estimate=estimate,
        details=details[:2],
        notes=notes[: max(1, 3 - len(details))],
        next_step=None if compact else _next_step(ctx, entry),
    )


def details_for(
    ctx: Ctx,
    entry: Programme | Faq,
    facts: MessageFacts,
    question: str,
    shown: str,
    centre_named: bool = False,
) -> list[str]:
    """The lines that answer what was asked about the entry: one per facet asked (documents, where,
    when, payment), or else the passage that best answers ``question`` when one clearly does.
    Nothing already ``shown`` is repeated."""
    words = ctx.texts.labels["answers"]
    facets = words["facets"]
    asked = [name for name in facts.asks if name in facets]
    asked = [f for f in asked if not any(f in facets[o].get("instead_of", []) for o in asked)]
    seen = fold(shown)
    lines = []
    for name in asked[:2]:
        if name == "where" and centre_named:
            continue  # the place notes name the producer's own centre
        text = _facet_text(ctx, entry, facts, facets[name], question)
        if text and fold(text) not in seen:
            lines.append(facets[name]["line"].format(text=text))
            seen += " " + fold(text)
    if not lines and question:
        passage = _answering_passage(ctx, entry, facts, question, seen)
        if passage:
            lines.append(words["detail"].format(text=passage))
    return lines


def fact_faq(ctx: Ctx, facts: MessageFacts) -> Faq | None:
    """The FAQ about what the producer says of themselves ("chỉ buôn bán", "chưa đăng ký", a legal
    form, or only a place and "có được hỗ trợ không"), from ``answers.fact_faqs`` in ``labels.yaml``;
    None when the message says none of it."""
    rules = ctx.texts.labels["answers"]["fact_faqs"]
    key = "trading_only" if facts.trading_only else facts.legal_form
    if key is None and facts.asks_eligible and facts.place is not None and not facts.place.ambiguous:
        maybe_ward = facts.place.province.is_city and facts.place_type in (None, "ward")
        key = "eligible_in_city" if maybe_ward else "eligible"
    if key is None:
        return None
    entry = ctx.catalog.kb.by_id.get(rules.get(key) or rules["legal_form"])
    return entry if isinstance(entry, Faq) else None


def facet_faq(ctx: Ctx, name: str) -> str | None:
    """The id of the FAQ that answers facet ``name`` in general ("where-to-apply")."""
    facet = ctx.texts.labels["answers"]["facets"].get(name)
    return facet.get("faq") if facet else None


def _facet_text(
    ctx: Ctx, entry: Programme | Faq, facts: MessageFacts, facet: dict[str, Any], question: str
) -> str | None:
    kb = ctx.catalog.kb
    fallback = kb.by_id.get(facet.get("faq", ""))
    if fallback is entry:
        return None  # the entry is that FAQ: its own answer says it
    kinds = tuple(facet.get("passages", []))
    if isinstance(entry, Programme) and kinds == ("document",):
        return _documents_text(ctx, entry, facts, question)
    if isinstance(entry, Programme) and kinds:
        ranked = rank(ctx.catalog.index, entry, question, kinds)
        return ranked[0].passage.text if ranked else None
    if not isinstance(fallback, Faq):
        return None
    text = _without_politeness(_short(fallback))
    # The bulleted case of that FAQ about this entry ("Mua máy, mô hình trình diễn: ứng 70%...").
    best = rank(ctx.catalog.index, fallback, f"{question} {entry.title}", ("item",))
    if best and best[0].score >= MIN_DETAIL_SCORE and fold(best[0].passage.text) not in fold(text):
        text = f"{sentences(text)[0]} {best[0].passage.text}"  # the general rule, then this case
    return text


def _documents_text(ctx: Ctx, programme: Programme, facts: MessageFacts, question: str) -> str:
    """The main documents for the producer's legal form (one line for the registration papers when
    the form is not known), in the card's order, the ones the question names first and in full."""
    form = facts.legal_form or ctx.profile.legal_form
    items: list[str] = []
    for document in programme.documents:
        if not document.only_for or (form and form in document.only_for):
            items.append(document.text)
        elif not form and ctx.texts.label("answers", "registration_doc") not in items:
            items.append(ctx.texts.label("answers", "registration_doc"))
    ranked = rank(ctx.catalog.index, programme, question, ("document",))
    named = [r.passage.text for r in ranked if r.score >= MIN_DETAIL_SCORE and r.passage.text in items]
    chosen = [*named[:2], *(_brief(i) for i in items if i not in named)][:3]
    return "; ".join(t.rstrip(".") for t in chosen) + "."


def _without_politeness(text: str) -> str:
    """ "Dạ, hồ sơ thường gồm..." inside another answer reads "Hồ sơ thường gồm..."."""
    for lead in ("Dạ, ", "Dạ "):
        if text.startswith(lead):
            rest = text[len(lead) :]
            return rest[:1].upper() + rest[1:]
    return text


def _brief(text: str) -> str:
    """An item without its explanations: up to the first parenthesis or semicolon."""
    return re.split(r"\s*[(;]", text, maxsplit=1)[0].strip()


def _answering_passage(
    ctx: Ctx, entry: Programme | Faq, facts: MessageFacts, question: str, seen: str
) -> str | None:
    """The passage that answers a detail of ``question`` the short answer does not say."""
    for scored in rank(ctx.catalog.index, entry, question, wants_number=facts.asks_number)[:3]:
        if scored.score < MIN_DETAIL_SCORE:
            return None
        text = scored.passage.text
        if fold(text) not in seen and scored.passage.kind not in ("where", "step"):
            return text
    return None


def answer_out_of_scope(
    ctx: Ctx, topic: OutOfScopeTopic, facts: MessageFacts, compact: bool = False
) -> Reply:
    """Khuyến công does not cover this, what the producer can do, and who handles it."""
    if compact:
        return ctx.reply("out_of_scope", [], topic=topic, notes=[], compact=True)
    kb = ctx.catalog.kb
    buttons: list[list[Button]] = [[entry_button(kb.by_id[i])] for i in topic.see_also[:2] if i in kb.by_id]
    buttons.append([ctx.button("ask_staff", cb.SEND_LAST_QUESTION), ctx.button("main_menu", cb.MAIN_MENU)])
    return ctx.reply("out_of_scope", buttons, topic=topic, notes=place_notes(ctx, facts)[:1], compact=False)


def remember(ctx: Ctx, facts: MessageFacts) -> None:
    """Keep what was read for the "Lưu vào hồ sơ" button (only what differs from the profile)."""
    new = {k: v for k, v in facts.profile_values().items() if getattr(ctx.profile, k) != v}
    if new.keys() & {"province", "legal_form", "investment_cost_vnd"}:  # worth a button
        ctx.state.memory.read_facts = new
    else:
        ctx.state.memory.read_facts = None


def save_read_facts(ctx: Ctx) -> list[Reply]:
    """The "Lưu vào hồ sơ" button: what the last question said goes into the profile."""
    values, ctx.state.memory.read_facts = ctx.state.memory.read_facts or {}, None
    allowed = {k: v for k, v in values.items() if k in EligibilityProfile.model_fields}
    if not allowed:
        return [ctx.main_menu("facts_saved", saved=[])]
    ctx.update_profile(**allowed)
    return [ctx.main_menu("facts_saved", saved=_describe(ctx, allowed))]


# --- pieces ---


def _short(entry: Programme | Faq, without_amounts: bool = False) -> str:
    """The entry's short answer (else its first sentence). ``without_amounts``: the producer's own
    estimate follows, so the general amounts ("tối đa 300 triệu; dây chuyền 450 triệu") give way."""
    text = entry.short_answer or (entry.summary if isinstance(entry, Programme) else entry.answer)
    parts = sentences(text) if entry.short_answer else sentences(text)[:1]
    if without_amounts:
        parts = [p for p in parts if not _AMOUNT.search(p)] or parts
    parts = [p if p.endswith((".", "?", "!", ":")) else p + "." for p in parts]
    return " ".join(parts)


def _money(amount: int) -> str:
    return format_vnd(amount).removesuffix(" đồng")


def _levels_for(programme: Programme, facts: MessageFacts) -> tuple[SupportLevel | None, SupportLevel | None]:
    """The level that applies to what the producer described, and the line level when it differs."""
    profile = EligibilityProfile(technology_line=bool(facts.technology_line))
    level = applicable_level(programme, profile)
    line = applicable_level(programme, EligibilityProfile(technology_line=True))
    return level, (line if line is not level else None)


def _levels_line(ctx: Ctx, programme: Programme) -> str | None:
    """The confirmed levels in one line, unless the short answer already says them."""
    if not programme.levels or any(w in (programme.short_answer or "") for w in ("triệu", "tỷ", "%")):
        return None
    words = ctx.texts.labels["answers"]
    parts = []
    for level in programme.levels:
        cap = f"{_money(level.cap_vnd)}/{level.per}" if level.cap_vnd else ""
        if level.percent is not None:
            share = f"{level.percent:g}".replace(".", ",")
            parts.append(words["level_percent"].format(label=level.label, percent=share, cap=cap))
        else:
            parts.append(words["level_fixed"].format(label=level.label, cap=cap))
    return "; ".join(parts) + "."


def _estimate(ctx: Ctx, programme: Programme, facts: MessageFacts) -> str | None:
    """ "50% × 200 triệu = 100 triệu đồng, dưới mức tối đa 300 triệu" for the producer's own amount."""
    if facts.amount_vnd is None:
        return None
    if not programme.levels:
        return ctx.texts.label("answers", "no_level").format(amount=_money(facts.amount_vnd))
    level, line = _levels_for(programme, facts)
    if level is None:
        return None
    words = ctx.texts.labels["answers"]
    amount = facts.amount_vnd
    if level.percent is None:
        return words["fixed"].format(cap=_money(level.cap_vnd or 0), per=level.per)
    share = int(amount * level.percent / 100)
    supported = max_support(level, amount) or share
    values: dict[str, Any] = {
        "percent": f"{level.percent:g}".replace(".", ","),
        "amount": _money(amount),
        "share": _money(share),
        "cap": _money(level.cap_vnd) if level.cap_vnd else "",
        "per": level.per,
        "result": _money(supported),
    }
    key = "over_cap" if level.cap_vnd and share > level.cap_vnd else "under_cap"
    text = words[key].format(**values)
    if line is not None and line.cap_vnd and facts.technology_line is None:
        text += " " + words["line_cap"].format(cap=_money(line.cap_vnd))  # machine or line: not said
    return text


def place_notes(ctx: Ctx, facts: MessageFacts) -> list[str]:
    """Which province (new name) the place is in now, its centre, and the ward rule of the cities."""
    place = facts.place
    if place is None:
        return []
    words = ctx.texts.labels["answers"]
    if place.ambiguous:
        names = ", ".join(p.name for p in (place.province, *place.alternatives))
        said = place.place.name if place.place else ""
        return [words["place_ambiguous"].format(names=names, said=said).replace("  ", " ")]
    province = place.province
    unit = "thành phố" if province.is_city else "tỉnh"
    name = province.name.removeprefix("TP ")  # "thành phố Hồ Chí Minh", not "thành phố TP Hồ Chí Minh"
    notes = []
    where = place.place.name if place.place is not None else place.old_name
    if place.place is not None and place.place.special_zone:
        old = place.old_name or province.name
        notes.append(words["special_zone"].format(place=where, old=old, unit=unit, province=name))
    elif where and place.old_name and place.place is not None:
        notes.append(words["place_moved"].format(place=where, old=place.old_name, unit=unit, province=name))
    elif where and place.old_name:
        notes.append(words["province_moved"].format(old=place.old_name, unit=unit, province=name))
    elif where:
        notes.append(words["place_in"].format(place=where, unit=unit, province=name))
    contact = ctx.catalog.kb.contact_for(province.name)
    centre = (contact.centre if contact and contact.centre else "") or words["centre"].format(
        unit=unit, province=name
    )
    reach = "".join(
        words[name].format(**{name: value})
        for name in ("phone", "zalo", "hours")
        if contact and (value := getattr(contact, name))
    )
    notes.append(words["centre_line"].format(centre=centre) + reach)
    if province.is_city and facts.place_type == "ward":
        notes.insert(0, words["city_ward"].format(province=province.name))
    elif province.is_city and facts.place_type is None:
        notes.append(words["city_maybe_ward"].format(province=province.name))
    return notes


def fit_notes(ctx: Ctx, entry: Programme | Faq, facts: MessageFacts) -> list[str]:
    """Plain warnings when what the message says does not fit the programme."""
    if not isinstance(entry, Programme):
        return []
    words = ctx.texts.labels["answers"]
    notes = []
    if facts.trading_only:
        notes.append(words["trading_only"])
    forms = [c for c in entry.criteria if isinstance(c, LegalFormCriterion)]
    if facts.legal_form and forms and all(facts.legal_form not in c.allowed for c in forms):
        key = "unregistered" if facts.legal_form == "unregistered" else "legal_form"
        notes.append(words[key].format(form=ctx.texts.legal_form_label(facts.legal_form)))
    return notes


def _next_step(ctx: Ctx, entry: Programme | Faq) -> str:
    words = ctx.texts.labels["answers"]
    return words["next_programme"] if isinstance(entry, Programme) else words["next_faq"]


def _entry_buttons(ctx: Ctx, entry: Programme | Faq, facts: MessageFacts) -> list[list[Button]]:
    labels = ctx.texts.labels["answers"]["buttons"]
    rows: list[list[Button]] = []
    if isinstance(entry, Programme):
        rows.append(
            [
                Button(labels["details"], cb.build(cb.PROGRAMME, entry.id)),
                Button(labels["documents"], cb.build(cb.PROGRAMME_DOCS, entry.id)),
            ]
        )
        rows.append(
            [
                Button(labels["check"], cb.build(cb.CHECK, entry.id)),
                Button(labels["apply"], cb.build(cb.APPLY, entry.id)),
            ]
        )
    else:
        rows.append([Button(labels["details"], cb.build(cb.PROGRAMME, entry.id))])
        related = [ctx.catalog.kb.by_id[r] for r in entry.related if r in ctx.catalog.kb.by_id][:1]
        rows += [[entry_button(e)] for e in related]
    saved = _describe(ctx, ctx.state.memory.read_facts or {})
    last = [ctx.button("ask_staff", cb.SEND_LAST_QUESTION)]
    if saved:
        last.append(Button(labels["save"].format(what=", ".join(saved))[:60], cb.SAVE_FACTS))
    rows.append(last)
    rows.append(
        [
            Button(labels["helpful"], cb.feedback(entry.id, True)),
            Button(labels["unhelpful"], cb.feedback(entry.id, False)),
        ]
    )
    return rows


def _describe(ctx: Ctx, values: dict[str, Any]) -> list[str]:
    """What will be (or was) kept, in words: "Tuyên Quang", "hộ kinh doanh", "800 triệu"."""
    words = []
    for name, value in values.items():
        if name == "province":
            words.append(str(value))
        elif name == "legal_form":
            words.append(ctx.texts.legal_form_label(str(value)).lower())
        elif name == "investment_cost_vnd":
            words.append(_money(int(value)))
        elif name == "place_type":
            words.append(ctx.texts.labels["answers"]["place_types"][str(value)])
        elif name == "activity":
            words.append(ctx.texts.labels["answers"]["trading_short"])
        elif name == "technology_line" and value:
            words.append(ctx.texts.labels["answers"]["line_short"])
    return words
