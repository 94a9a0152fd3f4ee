"""Broadcasts on the dashboard: compose (audience, template, one button), preview with the exact
recipients per channel and a sample for a real recipient, confirm, cancel, and follow the delivery.
Pages only read: a broadcast whose messages are all delivered is marked done by the periodic sweep
(until then its page shows it done from the counts)."""

from __future__ import annotations

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from bot.dashboard.pages import (
    MAX_ID,
    Staff,
    StaffForm,
    UnitOfWork,
    actor,
    categories,
    form_text,
    not_found,
    page,
    redirect,
    scope,
    services,
    wake_outbox,
)
from handlers.broadcasts import broadcast_buttons
from services.broadcasts import MAX_TEMPLATE_CHARS, Audience, TemplateProblem
from storage.models import Broadcast, StaffAccount
from storage.repositories import Repos

router = APIRouter()
LISTED = 50
SCANNED = 500  # a province account's list is picked from this many of the newest
BroadcastId = Path(ge=1, le=MAX_ID)


@router.get("/broadcasts", response_class=HTMLResponse)
def broadcasts_page(request: Request, repos: UnitOfWork, staff: Staff) -> Response:
    return _list_page(request, repos, staff, request.query_params.get("error", ""), {})


def _list_page(
    request: Request,
    repos: Repos,
    staff: StaffAccount,
    error: str,
    typed: dict[str, str],
    status_code: int = 200,
) -> Response:
    """The list and the compose form (``typed``: what staff typed, shown again with ``error``)."""
    within = scope(staff)
    newest = repos.broadcasts.newest(LISTED if within.is_admin else SCANNED)
    items = [b for b in newest if within.sees_broadcast(b)][:LISTED]
    service = services(request).core.broadcasts
    return page(
        request,
        "broadcasts.html",
        staff,
        status_code=status_code,
        items=items,
        reports={b.id: service.report(repos, b) for b in items},
        categories=categories(request),
        programmes={p.id: p.title for p in services(request).catalog.kb.programmes},
        error=error,
        typed=typed,
    )


@router.post("/broadcasts")
def create_broadcast(
    request: Request,
    repos: UnitOfWork,
    staff: StaffForm,
    template: str = Form(""),
    province: str = Form(""),
    category: str = Form(""),
    legal_form: str = Form(""),
    subscribers_only: str = Form(""),
    button: str = Form(""),
    button_label: str = Form(""),
) -> Response:
    running = services(request)
    audience = Audience(
        province=scope(staff).audience_province(province or None),
        category=category or None,
        legal_form=legal_form or None,
        subscribers_only=bool(subscribers_only),
    )
    try:
        buttons = broadcast_buttons(running.texts, button or None, button_label)
        text = form_text(template, MAX_TEMPLATE_CHARS + 1)
        draft = running.core.broadcasts.create(repos, text, audience, buttons, actor(staff))
    except TemplateProblem:  # the form again, as typed, with what is wrong
        typed = {
            "template": template[: MAX_TEMPLATE_CHARS + 1],
            "province": province,
            "category": category,
            "legal_form": legal_form,
            "subscribers_only": subscribers_only,
            "button": button,
            "button_label": button_label[:40],
        }
        return _list_page(request, repos, staff, "template", typed, status_code=400)
    return redirect(f"/broadcasts/{draft.id}")


@router.get("/broadcasts/{broadcast_id}", response_class=HTMLResponse)
def broadcast_page(
    request: Request, repos: UnitOfWork, staff: Staff, broadcast_id: int = BroadcastId
) -> Response:
    running = services(request)
    item = _visible(repos, staff, broadcast_id)
    if item is None:
        return not_found(request, staff)
    service = running.core.broadcasts
    audience = Audience.from_dict(item.audience)
    counts, sample, sample_for = {channel: 0 for channel in service.channels}, None, None
    if item.status == "draft":  # the counts, and the text exactly as its first recipient will read it
        preview = service.preview(repos, running.catalog.kb, item)
        counts, sample, sample_for = preview.counts, preview.sample, preview.sample_for
    elif (first := repos.outbox.first_of("broadcast", broadcast_id)) is not None:  # as it was sent
        sample, sample_for = first.text, repos.users.get(first.user_id)
    report = service.report(repos, item)
    return page(
        request,
        "broadcast.html",
        staff,
        item=item,
        audience=audience,
        counts=counts,
        sample=sample,
        sample_for=sample_for,
        message=request.query_params.get("msg", ""),
        report=report.counts,
        status=report.status,
        categories=categories(request),
    )


@router.post("/broadcasts/{broadcast_id}/confirm")
def confirm_broadcast(
    request: Request, repos: UnitOfWork, staff: StaffForm, broadcast_id: int = BroadcastId
) -> Response:
    running = services(request)
    item = _visible(repos, staff, broadcast_id)
    if item is None:
        return not_found(request, staff)
    running.core.broadcasts.confirm(repos, running.catalog.kb, item, actor(staff))
    if item.status == "draft":  # nobody matches the audience: nothing was sent, it is still a draft
        return redirect(f"/broadcasts/{broadcast_id}?msg=nobody")
    wake_outbox(request)
    return redirect(f"/broadcasts/{broadcast_id}")


@router.post("/broadcasts/{broadcast_id}/cancel")
def cancel_broadcast(
    request: Request, repos: UnitOfWork, staff: StaffForm, broadcast_id: int = BroadcastId
) -> Response:
    item = _visible(repos, staff, broadcast_id)
    if item is None:
        return not_found(request, staff)
    services(request).core.broadcasts.cancel(repos, item, actor(staff))
    return redirect("/broadcasts")


def _visible(repos: Repos, staff: StaffAccount, broadcast_id: int) -> Broadcast | None:
    """The broadcast, when it exists and this staff member may see it (else "not found")."""
    item = repos.broadcasts.get(broadcast_id)
    return item if item is not None and scope(staff).sees_broadcast(item) else None
