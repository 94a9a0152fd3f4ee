"""Registration deadlines on the dashboard: the list (recent and coming, withdrawn ones marked), adding
one (validated by ``services.deadlines``, as the command line does) and withdrawing one."""

from __future__ import annotations

from datetime import date, timedelta

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
    tz,
)
from services import deadlines
from storage.models import utcnow

router = APIRouter()
RECENT_DAYS = 30


def _today(request: Request) -> date:
    return utcnow().astimezone(tz(request)).date()


@router.get("/deadlines", response_class=HTMLResponse)
def deadlines_page(request: Request, repos: UnitOfWork, staff: Staff) -> Response:
    today = _today(request)
    within = scope(staff)
    listed = repos.deadlines.listed_from(today - timedelta(days=RECENT_DAYS))
    return page(
        request,
        "deadlines.html",
        staff,
        deadlines=[d for d in listed if within.sees_deadline(d)],
        today=today,
        categories=categories(request),
        programmes={p.id: p.title for p in services(request).catalog.kb.programmes},
        error=request.query_params.get("error", ""),
        message=request.query_params.get("msg", ""),
    )


@router.post("/deadlines")
def add_deadline(
    request: Request,
    repos: UnitOfWork,
    staff: StaffForm,
    due_on: str = Form(""),
    action: str = Form(""),
    place: str = Form(""),
    note: str = Form(""),
    province: str = Form(""),
    category: str = Form(""),
    programme: str = Form(""),
) -> Response:
    try:
        day = date.fromisoformat(due_on)
    except ValueError:
        return redirect("/deadlines?error=date")
    new = deadlines.NewDeadline(
        due_on=day,
        action=form_text(action, deadlines.MAX_ACTION),
        place=form_text(place, deadlines.MAX_PLACE),
        note=form_text(note, deadlines.MAX_NOTE),
        province=scope(staff).deadline_province(province or None),
        category=category or None,
        programme_id=programme or None,
    )
    try:
        deadlines.add(repos, services(request).catalog.kb, new, _today(request), actor(staff))
    except deadlines.DeadlineProblem as exc:
        return redirect(f"/deadlines?error={exc.code}")
    return redirect("/deadlines?msg=added")


@router.post("/deadlines/{deadline_id}/withdraw")
def withdraw_deadline(
    request: Request, repos: UnitOfWork, staff: StaffForm, deadline_id: int = Path(ge=1, le=MAX_ID)
) -> Response:
    deadline = repos.deadlines.get(deadline_id)
    if deadline is None or not scope(staff).edits_deadline(deadline):
        return not_found(request, staff)  # another province's, or national (read-only for a province)
    deadlines.withdraw(repos, deadline, actor(staff), utcnow())
    return redirect("/deadlines?msg=withdrawn")
