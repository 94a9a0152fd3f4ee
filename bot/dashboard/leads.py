"""Dashboard pages for leads: the list with filters and a search that ignores diacritics (all in
SQL, no cap), a lead's detail with its eligibility breakdown, conversation and audit log, the status
workflow and notes, and CSV/XLSX export of the filtered list (streamed as it is written, read in
batches, with spreadsheet formulas neutralised)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from bot.dashboard import export
from bot.dashboard.pages import (
    MAX_ID,
    Staff,
    StaffForm,
    UnitOfWork,
    actor,
    form_text,
    labels,
    not_found,
    page,
    page_number,
    redirect,
    scope,
    services,
    tz,
    wake_outbox,
)
from bot.dashboard.security import current_staff
from services.leads import FINAL_STATUSES, ReasonNeeded, TransitionError, next_statuses
from storage.db import Database
from storage.models import Lead, StaffAccount, utcnow
from storage.repositories import LeadQuery, Repos

router = APIRouter()
PAGE_SIZE = 50
LeadId = Path(ge=1, le=MAX_ID)
# The conversation shown on a lead: the messages before its submission and after it.
MESSAGES_BEFORE = 20
MESSAGES_AFTER = 10
EXPORT_BATCH = 1000


@dataclass(frozen=True)
class LeadFilter:
    status: str = ""
    province: str = ""
    programme: str = ""
    date_from: str = ""
    date_to: str = ""
    q: str = ""

    @classmethod
    def from_request(cls, request: Request) -> LeadFilter:
        params = request.query_params
        return cls(**{name: params.get(name, "").strip()[:100] for name in cls.__dataclass_fields__})

    def query_string(self, **extra: Any) -> str:
        values = {k: v for k, v in self.__dict__.items() if v} | {k: v for k, v in extra.items() if v}
        return urlencode(values)

    def describe(self, nothing: str) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.__dict__.items() if v) or nothing


def _day_start(text: str, tz: ZoneInfo) -> datetime | None:
    try:
        return datetime.combine(date.fromisoformat(text), time.min, tzinfo=tz).astimezone(UTC)
    except ValueError:
        return None


def lead_query(f: LeadFilter, tz: ZoneInfo) -> LeadQuery:
    """The filter as a query run in SQL (folded search: "nguyen" finds "Nguyễn", "0912 345" the phone)."""
    end = _day_start(f.date_to, tz)
    return LeadQuery(
        status=f.status or None,
        province=f.province or None,
        programme=f.programme or None,
        created_from=_day_start(f.date_from, tz),
        created_before=end + timedelta(days=1) if end is not None else None,
        text=f.q,
    )


@router.get("/", response_class=HTMLResponse)
def home(request: Request, repos: UnitOfWork) -> Response:
    staff = current_staff(request, repos)
    if staff is None:
        return page(request, "login.html", None)
    f = LeadFilter.from_request(request)
    number = page_number(request)
    within = scope(staff)
    query = within.lead_query(lead_query(f, tz(request)))
    total = repos.leads.count(query)
    shown = repos.leads.search(query, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    return page(
        request,
        "leads.html",
        staff,
        leads=shown,
        total=total,
        page=number,
        pages=max(1, -(-total // PAGE_SIZE)),
        f=f,
        open_questions=repos.staff_questions.count_open(within.province),
    )


# --- leads ---


def _visible_lead(repos: Repos, staff: StaffAccount, lead_id: int) -> Lead | None:
    """The lead, when it exists and this staff member may see it: another province's lead is "not
    found", so its existence is not revealed."""
    lead = repos.leads.get(lead_id)
    return lead if lead is not None and scope(staff).sees_lead(lead) else None


@router.get("/leads/{lead_id}", response_class=HTMLResponse)
def lead_page(request: Request, repos: UnitOfWork, staff: Staff, lead_id: int = LeadId) -> Response:
    lead = _visible_lead(repos, staff, lead_id)
    if lead is None:
        return not_found(request, staff)
    events = repos.leads.events(lead_id)
    return page(
        request,
        "lead.html",
        staff,
        lead=lead,
        events=events,
        delivered=repos.outbox.statuses_of("lead_status", [e.id for e in events if e.id and e.to_status]),
        history=repos.messages.around(lead.user_id, lead.created_at, MESSAGES_BEFORE, MESSAGES_AFTER),
        programme=services(request).catalog.kb.by_id.get(lead.programme_id or ""),
        next_statuses=next_statuses(lead.status),
        final_statuses=FINAL_STATUSES,
        messages_before=MESSAGES_BEFORE,
        messages_after=MESSAGES_AFTER,
        producer=repos.users.get(lead.user_id),
        message=request.query_params.get("msg", ""),
    )


@router.post("/leads/{lead_id}/status")
def lead_status(
    request: Request,
    repos: UnitOfWork,
    staff: StaffForm,
    lead_id: int = LeadId,
    to_status: str = Form(""),
    note: str = Form(""),
) -> Response:
    lead = _visible_lead(repos, staff, lead_id)
    if lead is None:
        return not_found(request, staff)
    try:
        workflow = services(request).core.leads
        workflow.change_status(repos, lead, to_status, actor(staff), form_text(note, 2000))
        msg = "status"
    except ReasonNeeded:
        msg = "reason"
    except TransitionError:
        msg = "refused"
    wake_outbox(request)
    return redirect(f"/leads/{lead_id}?msg={msg}")


@router.post("/leads/{lead_id}/note")
def lead_note(
    request: Request, repos: UnitOfWork, staff: StaffForm, lead_id: int = LeadId, note: str = Form("")
) -> Response:
    lead = _visible_lead(repos, staff, lead_id)
    if lead is None:
        return not_found(request, staff)
    if text := form_text(note, 2000):
        services(request).core.leads.add_note(repos, lead, actor(staff), text)
    return redirect(f"/leads/{lead_id}?msg=note")


@router.get("/export.{fmt}")
def export_leads(request: Request, fmt: str, staff: Staff) -> Response:
    """The filtered list, all of it, streamed as it is written (CSV or XLSX): the first bytes leave
    at once, memory stays flat, and the leads are read a batch at a time, each batch in its own short
    unit of work, so a slow download holds no database connection the bots need."""
    if fmt not in ("csv", "xlsx"):
        raise HTTPException(status_code=404)
    running = services(request)
    zone = tz(request)
    f = LeadFilter.from_request(request)
    query = scope(staff).lead_query(lead_query(f, zone))
    now = utcnow().astimezone(zone)
    cols = export.columns(labels(request), zone)
    name = f"ho-so-khuyen-cong-{now:%Y%m%d-%H%M}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    leads = leads_in_batches(running.db, query)
    if fmt == "csv":
        return StreamingResponse(
            export.csv_chunks(leads, cols), media_type="text/csv; charset=utf-8", headers=headers
        )
    words = export.layout()
    with running.db.unit() as repos:
        count = repos.leads.count(query)
    subtitle = words["subtitle"].format(
        time=f"{now:%d/%m/%Y %H:%M}", filters=f.describe(words["all_leads"]), count=count
    )
    return StreamingResponse(
        export.xlsx_chunks(leads, cols, words["title"], subtitle, now),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=headers,
    )


def leads_in_batches(db: Database, query: LeadQuery, batch: int = EXPORT_BATCH) -> Iterator[Any]:
    """Every lead ``query`` matches, newest first, ``batch`` at a time (by id, each batch its own
    unit of work). Iterated by Starlette in its worker threads, one piece of the file at a time."""
    before: int | None = None
    while True:
        with db.unit() as repos:
            leads = repos.leads.batch_before(query, before, batch)
        yield from leads
        if len(leads) < batch:
            return
        before = int(leads[-1].id)
