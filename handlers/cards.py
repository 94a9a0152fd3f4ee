"""Programme cards, their detail page, and FAQ answers, shared by browsing and free-text questions."""

from __future__ import annotations

from handlers import callbacks as cb
from handlers.context import Ctx
from handlers.texts import Texts
from handlers.types import Button, Reply
from knowledge.models import Faq, Programme

BUTTON_TITLE_LENGTH = 48


def short_title(title: str, limit: int = BUTTON_TITLE_LENGTH) -> str:
    if len(title) <= limit:
        return title
    cut = title[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:(- ") + "…"


def entry_button(entry: Programme | Faq) -> Button:
    return Button(short_title(entry.title), cb.build(cb.PROGRAMME, entry.id))


def documents_for(texts: Texts, programme: Programme, legal_form: str | None) -> list[str]:
    """The programme's documents for this legal form; all of them, labelled, when it is not known."""
    if legal_form:
        return [d.text for d in programme.documents if not d.only_for or legal_form in d.only_for]
    template = texts.label("document_if_form")
    return [
        template.format(
            text=d.text.rstrip("."), forms=", ".join(texts.legal_form_label(f) for f in d.only_for)
        )
        if d.only_for
        else d.text
        for d in programme.documents
    ]


def programme_card(ctx: Ctx, programme: Programme) -> Reply:
    buttons = [
        [ctx.button("check_programme", cb.build(cb.CHECK, programme.id))],
        [
            ctx.button("apply_programme", cb.build(cb.APPLY, programme.id)),
            ctx.button("documents", cb.build(cb.PROGRAMME_DOCS, programme.id)),
        ],
        [
            Button(
                ctx.texts.label("reminders", "this_programme"), cb.build(cb.REMIND_PROGRAMME, programme.id)
            ),
            ctx.button("main_menu", cb.MAIN_MENU),
        ],
    ]
    return ctx.reply("programme_card", buttons, p=programme)


def programme_details(ctx: Ctx, programme: Programme) -> Reply:
    contact = ctx.catalog.kb.contact_for(ctx.profile.province)
    buttons = [
        [
            ctx.button("apply_programme", cb.build(cb.APPLY, programme.id)),
            ctx.button("check_programme", cb.build(cb.CHECK, programme.id)),
        ],
        [ctx.button("main_menu", cb.MAIN_MENU)],
    ]
    return ctx.reply(
        "programme_details",
        buttons,
        p=programme,
        documents=documents_for(ctx.texts, programme, ctx.profile.legal_form),
        contact=contact,
        province=ctx.profile.province,
    )


def faq_answer(ctx: Ctx, faq: Faq) -> Reply:
    related = [ctx.catalog.kb.by_id[r] for r in faq.related if r in ctx.catalog.kb.by_id][:3]
    buttons = [[entry_button(e)] for e in related]
    buttons.append([ctx.button("ask_staff", cb.ASK_STAFF), ctx.button("main_menu", cb.MAIN_MENU)])
    return ctx.reply("faq_answer", buttons, f=faq)


def entry_reply(ctx: Ctx, entry: Programme | Faq) -> Reply:
    return programme_card(ctx, entry) if isinstance(entry, Programme) else faq_answer(ctx, entry)
