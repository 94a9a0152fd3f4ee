"""Dashboard pages: login, the lead list with filters and search, a lead's detail with its
eligibility breakdown, conversation and audit log, the status workflow, CSV/XLSX export, and the
pending "Hỏi cán bộ" questions with a reply box. Every page needs a logged-in active staff account;
every form carries a CSRF token."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from bot.channels.plaintext import html_to_text
from bot.dashboard import export
from bot.dashboard.security import LoginLimiter, csrf_ok, csrf_token, current_staff, log_in, log_out
from handlers import staff as workflow
from knowledge.money import format_vnd
from storage.db import Database
from storage.models import Lead, MessageLog, StaffAccount, StaffQuestion, User, utcnow
from storage.passwords import verify_password
from storage.repositories import LeadQuery, Repos

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.filters["vnd"] = lambda v: format_vnd(int(v)) if v else ""
TEMPLATES.env.filters["plain"] = html_to_text
PAGE_SIZE = 50
SESSION_HOURS = 8


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


def filtered_leads(repos: Repos, f: LeadFilter, tz: ZoneInfo, limit: int | None = None) -> list[Lead]:
    return repos.leads.search(lead_query(f, tz), limit=limit)


def create_dashboard(app: FastAPI, session_secret: str, secure_cookies: bool) -> None:
    """Mount the dashboard on ``app`` (which holds ``state.services`` and ``state.outbox``)."""
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret,
        session_cookie="kc_session",
        max_age=SESSION_HOURS * 3600,
        same_site="strict",
        https_only=secure_cookies,
    )
    app.state.login_limiter = LoginLimiter()
    app.include_router(router)
    from bot.dashboard.outreach import router as outreach_router  # it builds on this module's helpers

    app.include_router(outreach_router)


router = APIRouter()


def _services(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.services


def _tz(request: Request) -> ZoneInfo:
    return ZoneInfo(_services(request).settings.timezone)


def _labels(request: Request) -> dict[str, Any]:
    services = _services(request)
    texts = services.texts
    return {
        "statuses": texts.labels["lead_status"],
        "eligibility": texts.labels["status"],
        "legal_forms": {str(o["value"]): o["label"] for o in texts.questions["legal_form"]["options"]},
        "programmes": {p.id: p.title for p in services.catalog.kb.programmes},
        "provinces": services.catalog.kb.provinces.names(),
    }


def _page(
    request: Request, template: str, staff: StaffAccount | None, status_code: int = 200, **context: Any
):
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "staff": staff,
            "csrf": csrf_token(request),
            "labels": _labels(request),
            "tz": _tz(request),
            **context,
        },
        status_code=status_code,
    )


def _to_login() -> RedirectResponse:
    return RedirectResponse("/", status_code=303)


def guard(request: Request, repos: Repos, csrf: str | None = None) -> StaffAccount | Response:
    """The logged-in staff account, or the response to give instead: the login page when nobody is
    logged in, 403 when a form came without this session's CSRF token."""
    staff = current_staff(request, repos)
    if staff is None:
        return _to_login()
    if csrf is not None and not csrf_ok(request, csrf):
        return _page(request, "forbidden.html", staff, status_code=403)
    return staff


def _wake_outbox(request: Request) -> None:
    outbox = getattr(request.app.state, "outbox", None)
    if outbox is not None:
        outbox.wake()


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# --- login ---


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    with _services(request).db.session() as s:
        repos = Repos(s)
        staff = current_staff(request, repos)
        if staff is None:
            return _page(request, "login.html", None)
        f = LeadFilter.from_request(request)
        page_text = request.query_params.get("page", "1")
        page = int(page_text) if page_text.isdigit() and int(page_text) > 0 else 1
        query = lead_query(f, _tz(request))
        total = repos.leads.count(query)
        shown = repos.leads.search(query, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        open_questions = len(repos.staff_questions.open_questions())
        return _page(
            request,
            "leads.html",
            staff,
            leads=shown,
            total=total,
            page=page,
            pages=max(1, -(-total // PAGE_SIZE)),
            f=f,
            open_questions=open_questions,
        )


def _same_origin(request: Request) -> bool:
    """A cross-site form post carries the other site's Origin (or Referer); refuse those."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


@router.post("/")
@router.post("/login")
async def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    csrf_token_field: str = Form("", alias="csrf_token"),
) -> Response:
    limiter: LoginLimiter = request.app.state.login_limiter
    keys = (f"ip:{_client(request)}", f"user:{username.lower()}")
    # The login form carries a CSRF token; a scripted client without a session is judged by its origin.
    token_ok = csrf_ok(request, csrf_token_field) if request.session.get("csrf") else True
    if not (token_ok and _same_origin(request)):
        return _page(request, "login.html", None, status_code=403, error="csrf")
    wait = limiter.retry_after(*keys)
    if wait:
        return _page(request, "login.html", None, status_code=429, error="rate", wait_minutes=-(-wait // 60))
    with _services(request).db.session() as s:
        repos = Repos(s)
        account = repos.staff.by_username(username.strip())
        valid = account is not None and account.is_active and verify_password(password, account.password_hash)
        if not valid or account is None:
            limiter.failed(*keys)
            return _page(request, "login.html", None, status_code=401, error="invalid", username=username)
        account.last_login_at = utcnow()
        s.add(account)
        limiter.succeeded(*keys)
        log_in(request, account)
    return RedirectResponse("/", status_code=303)


@router.post("/logout")
async def logout(request: Request, csrf_token_field: str = Form("", alias="csrf_token")) -> Response:
    if csrf_ok(request, csrf_token_field):
        log_out(request)
    return _to_login()


# --- leads ---


@router.get("/leads/{lead_id}", response_class=HTMLResponse)
async def lead_page(request: Request, lead_id: int) -> Response:
    services = _services(request)
    with services.db.session() as s:
        repos = Repos(s)
        staff = guard(request, repos)
        if isinstance(staff, Response):
            return staff
        lead = repos.leads.get(lead_id)
        if lead is None:
            return _page(request, "not_found.html", staff, status_code=404)
        history = list(
            s.exec(
                select(MessageLog)
                .where(MessageLog.user_id == lead.user_id)
                .order_by(col(MessageLog.id).desc())
                .limit(200)
            ).all()
        )[::-1]
        return _page(
            request,
            "lead.html",
            staff,
            lead=lead,
            events=repos.leads.events(lead.id),
            history=history,
            programme=services.catalog.kb.by_id.get(lead.programme_id or ""),
            next_statuses=workflow.TRANSITIONS.get(lead.status, ()),
            producer=repos.users.get(lead.user_id),
            message=request.query_params.get("msg", ""),
        )


@router.post("/leads/{lead_id}/status")
async def lead_status(
    request: Request,
    lead_id: int,
    to_status: str = Form(""),
    note: str = Form(""),
    csrf_token_field: str = Form("", alias="csrf_token"),
) -> Response:
    services = _services(request)
    with services.db.session() as s:
        repos = Repos(s)
        staff = guard(request, repos, csrf_token_field)
        if isinstance(staff, Response):
            return staff
        lead = repos.leads.get(lead_id)
        if lead is None:
            return _page(request, "not_found.html", staff, status_code=404)
        try:
            workflow.change_status(
                repos, services.texts, lead, to_status, f"dashboard:{staff.username}", note
            )
            msg = "status"
        except workflow.TransitionError:
            msg = "refused"
    _wake_outbox(request)
    return RedirectResponse(f"/leads/{lead_id}?msg={msg}", status_code=303)


@router.post("/leads/{lead_id}/note")
async def lead_note(
    request: Request, lead_id: int, note: str = Form(""), csrf_token_field: str = Form("", alias="csrf_token")
) -> Response:
    with _services(request).db.session() as s:
        repos = Repos(s)
        staff = guard(request, repos, csrf_token_field)
        if isinstance(staff, Response):
            return staff
        lead = repos.leads.get(lead_id)
        if lead is None:
            return _page(request, "not_found.html", staff, status_code=404)
        if note.strip():
            workflow.add_note(repos, lead, f"dashboard:{staff.username}", note)
    return RedirectResponse(f"/leads/{lead_id}?msg=note", status_code=303)


@router.get("/export.{fmt}")
async def export_leads(request: Request, fmt: str) -> Response:
    """The filtered list, all of it, streamed: CSV row by row, XLSX through a temporary file."""
    if fmt not in ("csv", "xlsx"):
        return Response(status_code=404)
    services = _services(request)
    tz = _tz(request)
    with services.db.session() as s:
        if current_staff(request, Repos(s)) is None:
            return _to_login()
    f = LeadFilter.from_request(request)
    query = lead_query(f, tz)
    now = utcnow().astimezone(tz)
    cols = export.columns(_labels(request), tz)
    name = f"ho-so-khuyen-cong-{now:%Y%m%d-%H%M}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":
        return StreamingResponse(
            _csv_stream(services.db, query, cols), media_type="text/csv; charset=utf-8", headers=headers
        )
    words = export.layout()
    with services.db.session() as s:
        count = Repos(s).leads.count(query)
    subtitle = words["subtitle"].format(
        time=f"{now:%H:%M %d/%m/%Y}", filters=f.describe(words["all_leads"]), count=count
    )
    spool = await run_in_threadpool(_xlsx_file, services.db, query, cols, words["title"], subtitle, now)
    return StreamingResponse(
        _file_chunks(spool),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=headers,
    )


def _csv_stream(db: Database, query: LeadQuery, cols: list[export.Column]) -> Iterator[bytes]:
    """Runs in Starlette's thread pool (a plain iterator), one database session for the whole file."""
    with db.session() as s:
        yield from export.csv_chunks(Repos(s).leads.stream(query), cols)


def _xlsx_file(
    db: Database, query: LeadQuery, cols: list[export.Column], title: str, subtitle: str, now: datetime
) -> BinaryIO:
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 (closed by _file_chunks)
    with db.session() as s:
        export.write_xlsx(Repos(s).leads.stream(query), cols, title, subtitle, now, spool)
    spool.seek(0)
    return spool


def _file_chunks(spool: BinaryIO, size: int = 256 * 1024) -> Iterator[bytes]:
    with spool:
        while chunk := spool.read(size):
            yield chunk


# --- questions for staff ---


@router.get("/questions", response_class=HTMLResponse)
async def questions_page(request: Request) -> Response:
    with _services(request).db.session() as s:
        repos = Repos(s)
        staff = guard(request, repos)
        if isinstance(staff, Response):
            return staff
        pending = repos.staff_questions.open_questions()
        askers = {q.user_id: s.get(User, q.user_id) for q in pending}
        answered = list(
            s.exec(
                select(StaffQuestion)
                .where(StaffQuestion.status == "answered")
                .order_by(col(StaffQuestion.answered_at).desc())
                .limit(20)
            ).all()
        )
        return _page(
            request,
            "questions.html",
            staff,
            pending=pending,
            askers=askers,
            answered=answered,
            message=request.query_params.get("msg", ""),
        )


@router.post("/questions/{question_id}/answer")
async def answer_question(
    request: Request,
    question_id: int,
    answer: str = Form(""),
    csrf_token_field: str = Form("", alias="csrf_token"),
) -> Response:
    services = _services(request)
    with services.db.session() as s:
        repos = Repos(s)
        staff = guard(request, repos, csrf_token_field)
        if isinstance(staff, Response):
            return staff
        question = repos.staff_questions.get(question_id)
        if question is None:
            return _page(request, "not_found.html", staff, status_code=404)
        if not answer.strip():
            return RedirectResponse("/questions?msg=empty", status_code=303)
        workflow.answer_question(repos, services.texts, question, answer, f"dashboard:{staff.username}")
    _wake_outbox(request)
    return RedirectResponse("/questions?msg=sent", status_code=303)
