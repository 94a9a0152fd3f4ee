"""Dashboard pages for reaching producers: registration deadlines (list, add, withdraw) and
broadcasts (compose, preview with recipients per channel, confirm, progress and delivery report)."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import col, select

from bot.dashboard.pages import MAX_ID, form_text, guard, page, services, tz, wake_outbox
from handlers import broadcasts, notify
from knowledge.models import Category
from storage.models import Broadcast, Deadline, User, utcnow
from storage.repositories import Repos

router = APIRouter()
RECENT_DAYS = 30
CHANNEL_NAMES = {"telegram": "Telegram", "zalo": "Zalo", "console": "màn hình dòng lệnh"}


def _categories(request: Request) -> dict[str, str]:
    names = services(request).texts.labels["categories"]
    return {str(c): names[str(c)] for c in Category if c != Category.GENERAL}


# --- deadlines ---


@router.get("/deadlines", response_class=HTMLResponse)
def deadlinespage(request: Request) -> Response:
    running = services(request)
    today = utcnow().astimezone(tz(request)).date()
    with running.db.session() as s:
        repos = Repos(s)
        staff = guard(request, repos)
        if isinstance(staff, Response):
            return staff
        rows = s.exec(
            select(Deadline)
            .where(Deadline.due_on >= today - timedelta(days=RECENT_DAYS))
            .order_by(col(Deadline.due_on))
        ).all()
        return page(
            request,
            "deadlines.html",
            staff,
            deadlines=rows,
            today=today,
            categories=_categories(request),
            programmes={p.id: p.title for p in running.catalog.kb.programmes},
            error=request.query_params.get("error", ""),
            message=request.query_params.get("msg", ""),
        )


@router.post("/deadlines")
def add_deadline(
    request: Request,
    due_on: str = Form(""),
    action: str = Form(""),
    place: str = Form(""),
    note: str = Form(""),
    province: str = Form(""),
    category: str = Form(""),
    programme: str = Form(""),
    csrf_token_field: str = Form("", alias="csrf_token"),
) -> Response:
    running = services(request)
    kb = running.catalog.kb
    with running.db.session() as s:
        repos = Repos(s)
        staff = guard(request, repos, csrf_token_field)
        if isinstance(staff, Response):
            return staff
        try:
            day = date.fromisoformat(due_on)
        except ValueError:
            return RedirectResponse("/deadlines?error=date", status_code=303)
        if day < utcnow().astimezone(tz(request)).date():
            return RedirectResponse("/deadlines?error=past", status_code=303)
        problems = [
            len(action.strip()) < 10 and "action",
            province and province not in kb.provinces.names() and "province",
            category and category not in _categories(request) and "category",
            programme and programme not in kb.by_id and "programme",
        ]
        problem = next((p for p in problems if p), None)
        if problem:
            return RedirectResponse(f"/deadlines?error={problem}", status_code=303)
        s.add(
            Deadline(
                due_on=day,
                action=form_text(action, 2000),
                place=form_text(place, 500),
                note=form_text(note, 1000),
                province=province or None,
                category=category or None,
                programme_id=programme or None,
                created_by=f"dashboard:{staff.username}",
            )
        )
    return RedirectResponse("/deadlines?msg=added", status_code=303)


@router.post("/deadlines/{deadline_id}/withdraw")
def withdraw_deadline(
    request: Request,
    deadline_id: int = Path(ge=1, le=MAX_ID),
    csrf_token_field: str = Form("", alias="csrf_token"),
) -> Response:
    with services(request).db.session() as s:
        repos = Repos(s)
        staff = guard(request, repos, csrf_token_field)
        if isinstance(staff, Response):
            return staff
        deadline = s.get(Deadline, deadline_id)
        if deadline is not None and deadline.is_active:
            deadline.is_active = False  # its pending reminders are skipped by the sweep
            deadline.withdrawn_by = f"dashboard:{staff.username}"[:128]
            deadline.withdrawn_at = utcnow()
            s.add(deadline)
    return RedirectResponse("/deadlines?msg=withdrawn", status_code=303)


# --- broadcasts ---


@router.get("/broadcasts", response_class=HTMLResponse)
def broadcastspage(request: Request) -> Response:
    with services(request).db.session() as s:
        repos = Repos(s)
        staff = guard(request, repos)
        if isinstance(staff, Response):
            return staff
        items = s.exec(select(Broadcast).order_by(col(Broadcast.id).desc()).limit(50)).all()
        reports = {b.id: broadcasts.report(repos, b) for b in items}
        return page(
            request,
            "broadcasts.html",
            staff,
            items=items,
            reports=reports,
            categories=_categories(request),
            programmes={p.id: p.title for p in services(request).catalog.kb.programmes},
            error=request.query_params.get("error", ""),
        )


@router.post("/broadcasts")
def create_broadcast(
    request: Request,
    template: str = Form(""),
    province: str = Form(""),
    category: str = Form(""),
    legal_form: str = Form(""),
    subscribers_only: str = Form(""),
    button: str = Form(""),
    button_label: str = Form(""),
    csrf_token_field: str = Form("", alias="csrf_token"),
) -> Response:
    running = services(request)
    with running.db.session() as s:
        repos = Repos(s)
        staff = guard(request, repos, csrf_token_field)
        if isinstance(staff, Response):
            return staff
        audience = broadcasts.Audience(
            province=province or None,
            category=category or None,
            legal_form=legal_form or None,
            subscribers_only=bool(subscribers_only),
        )
        try:
            buttons = broadcasts.broadcast_buttons(running.texts, button or None, button_label)
            draft = broadcasts.create(
                repos,
                form_text(template, broadcasts.MAX_TEMPLATE_CHARS + 1),
                audience,
                buttons,
                f"dashboard:{staff.username}",
            )
        except broadcasts.TemplateProblem:
            return RedirectResponse("/broadcasts?error=template", status_code=303)
    return RedirectResponse(f"/broadcasts/{draft.id}", status_code=303)


@router.get("/broadcasts/{broadcast_id}", response_class=HTMLResponse)
def broadcastpage(request: Request, broadcast_id: int = Path(ge=1, le=MAX_ID)) -> Response:
    running = services(request)
    with running.db.session() as s:
        repos = Repos(s)
        staff = guard(request, repos)
        if isinstance(staff, Response):
            return staff
        item = s.get(Broadcast, broadcast_id)
        if item is None:
            return page(request, "not_found.html", staff, status_code=404)
        audience = broadcasts.Audience.from_dict(item.audience)
        staff_ids = notify.staff_telegram_ids(repos, running.dialogue.staff_ids)
        channels = running.dialogue.channels
        chosen = (
            broadcasts.recipients(repos, running.catalog.kb, audience, staff_ids, channels)
            if item.status == "draft"
            else []
        )
        sample_user, sample_profile = chosen[0] if chosen else (None, None)
        if sample_user is None:  # nobody matches: show the text as it would read for a made-up user
            sample_user = User(channel="telegram", external_id="0", display_name=staff.username)
        sample = broadcasts.render(item.template, sample_user, sample_profile)
        return page(
            request,
            "broadcast.html",
            staff,
            item=item,
            audience=audience,
            counts=broadcasts.count_by_channel(chosen, channels),
            channel_names=CHANNEL_NAMES,
            sample=sample,
            report=broadcasts.report(repos, item),
            categories=_categories(request),
        )


@router.post("/broadcasts/{broadcast_id}/confirm")
def confirm_broadcast(
    request: Request,
    broadcast_id: int = Path(ge=1, le=MAX_ID),
    csrf_token_field: str = Form("", alias="csrf_token"),
) -> Response:
    running = services(request)
    with running.db.session() as s:
        repos = Repos(s)
        staff = guard(request, repos, csrf_token_field)
        if isinstance(staff, Response):
            return staff
        item = s.get(Broadcast, broadcast_id)
        if item is None:
            return page(request, "not_found.html", staff, status_code=404)
        broadcasts.confirm(
            repos,
            running.catalog.kb,
            item,
            notify.staff_telegram_ids(repos, running.dialogue.staff_ids),
            running.dialogue.channels,
        )
    wake_outbox(request)
    return RedirectResponse(f"/broadcasts/{broadcast_id}", status_code=303)


@router.post("/broadcasts/{broadcast_id}/cancel")
def cancel_broadcast(
    request: Request,
    broadcast_id: int = Path(ge=1, le=MAX_ID),
    csrf_token_field: str = Form("", alias="csrf_token"),
) -> Response:
    with services(request).db.session() as s:
        repos = Repos(s)
        staff = guard(request, repos, csrf_token_field)
        if isinstance(staff, Response):
            return staff
        item = s.get(Broadcast, broadcast_id)
        if item is not None:
            broadcasts.cancel(repos, item)
    return RedirectResponse("/broadcasts", status_code=303)
