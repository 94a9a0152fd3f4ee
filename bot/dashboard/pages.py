"""What every dashboard page shares: the templates, rendering a page with its common context, the
login and CSRF guard, the services of the running process, and waking the outbox after a change.

Routes are plain ``def`` functions: FastAPI runs them in its thread pool, so password hashing,
database work and exports never hold up the event loop that serves the bots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from bot.channels.plaintext import html_to_text
from bot.dashboard.security import csrf_ok, csrf_token, current_staff
from handlers.types import clean_text
from knowledge.money import format_vnd
from storage.models import StaffAccount
from storage.repositories import Repos

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.filters["vnd"] = lambda v: format_vnd(int(v)) if v else ""
TEMPLATES.env.filters["plain"] = html_to_text
MAX_ID = 2**31 - 1  # ids in URLs beyond this are "not found", never a database error


def services(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.services


def tz(request: Request) -> ZoneInfo:
    return ZoneInfo(services(request).settings.timezone)


def labels(request: Request) -> dict[str, Any]:
    running = services(request)
    texts = running.texts
    return {
        "statuses": texts.labels["lead_status"],
        "eligibility": texts.labels["status"],
        "legal_forms": {str(o["value"]): o["label"] for o in texts.questions["legal_form"]["options"]},
        "programmes": {p.id: p.title for p in running.catalog.kb.programmes},
        "provinces": running.catalog.kb.provinces.names(),
    }


def page(request: Request, template: str, staff: StaffAccount | None, status_code: int = 200, **context: Any):
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "staff": staff,
            "csrf": csrf_token(request),
            "labels": labels(request),
            "tz": tz(request),
            **context,
        },
        status_code=status_code,
    )


def error_page(request: Request, status_code: int) -> Response:
    """A plain Vietnamese page for a bad path, id or form (no session, no database needed)."""
    template = "not_found.html" if status_code == 404 else "error.html"
    return TEMPLATES.TemplateResponse(
        request, template, {"staff": None, "csrf": "", "status": status_code}, status_code=status_code
    )


def to_login() -> RedirectResponse:
    return RedirectResponse("/", status_code=303)


def guard(request: Request, repos: Repos, csrf: str | None = None) -> StaffAccount | Response:
    """The logged-in staff account, or the response to give instead: the login page when nobody is
    logged in, 403 when a form came without this session's CSRF token."""
    staff = current_staff(request, repos)
    if staff is None:
        return to_login()
    if csrf is not None and not csrf_ok(request, csrf):
        return page(request, "forbidden.html", staff, status_code=403)
    return staff


def wake_outbox(request: Request) -> None:
    outbox = getattr(request.app.state, "outbox", None)
    if outbox is not None:
        outbox.wake()


def form_text(value: str, limit: int) -> str:
    """Text typed by staff, as stored: without control characters, trimmed, at most ``limit``."""
    return clean_text(value).strip()[:limit]
