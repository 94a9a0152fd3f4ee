"""What every dashboard page shares: the templates, rendering a page with its common context, and
the FastAPI dependencies every route takes: the running process's services, one unit of work per
request (committed before the response is sent), the logged-in staff member, and the CSRF check of a
form. A route that needs a login or a valid form simply asks for ``Staff`` or ``StaffForm``; without
one the visitor gets the login page (``LoginNeeded``) or a 403 page (``FormRefused``).

Routes are plain ``def`` functions: FastAPI runs them in its thread pool, so password hashing,
database work and exports never hold up the event loop that serves the bots.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Form, HTTPException, Request
from fastapi.dependencies.utils import request_params_to_args
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from bot.channels.plaintext import html_to_text
from bot.dashboard.security import csrf_ok, csrf_token, current_staff
from handlers.types import clean_text
from knowledge.models import Category
from knowledge.money import format_vnd
from knowledge.yamlio import read_yaml
from services.staff_scope import Scope
from storage.models import StaffAccount
from storage.repositories import Repos

if TYPE_CHECKING:
    from bot.services import Services

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
LABELS_FILE = Path(__file__).parent / "templates" / "labels.yaml"
TEMPLATES.env.filters["vnd"] = lambda v: format_vnd(int(v)) if v else ""
TEMPLATES.env.filters["plain"] = html_to_text


def who(actor: str | None, words: dict[str, str]) -> str:
    """Who did something, in words: "dashboard:canbo.ha" is "cán bộ canbo.ha", "producer" the
    producer, "knowledge" the programme calendar (the words come from ``labels.yaml``)."""
    if not actor:
        return ""
    if actor in words:
        return words[actor].format(name=actor)
    kind, _, rest = actor.partition(":")
    if kind == "telegram":  # "telegram:<chat id> <name>" (staff in the chat)
        rest = rest.partition(" ")[2] or rest
    return words.get(kind, words["other"]).format(name=rest.strip() or actor)


def when(moment: datetime | None, zone: ZoneInfo) -> str:
    """A moment as staff read it: 05/03/2027 14:30, in the centre's time zone."""
    if moment is None:
        return ""
    if moment.tzinfo is None:  # SQLite gives stored UTC times back without their zone
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%d/%m/%Y %H:%M")


def day(value: date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else ""


TEMPLATES.env.filters["who"] = who
TEMPLATES.env.filters["when"] = when
TEMPLATES.env.filters["day"] = day
MAX_ID = 2**31 - 1  # ids in URLs beyond this are "not found", never a database error


class LoginNeeded(Exception):
    """Nobody is logged in: the visitor is sent to the login page."""


class FormRefused(Exception):
    """A form came without this session's CSRF token."""

    def __init__(self, staff: StaffAccount):
        super().__init__("csrf")
        self.staff = staff


def services(request: Request) -> Services:
    running: Services = request.app.state.services
    return running


def unit_of_work(request: Request) -> Iterator[Repos]:
    with services(request).db.unit() as repos:
        yield repos
    if getattr(request.state, "wake_outbox", False):
        outbox = getattr(request.app.state, "outbox", None)
        if outbox is not None:
            outbox.wake()
    for then in getattr(request.state, "after_commit", []):
        then()


def after_commit(request: Request, then: Callable[[], None]) -> None:
    """Run ``then`` once this request's changes are committed (not at all if they are not)."""
    if not hasattr(request.state, "after_commit"):
        request.state.after_commit = []
    request.state.after_commit.append(then)


def logged_in(request: Request, repos: UnitOfWork) -> StaffAccount:
    staff = current_staff(request, repos)
    if staff is None:
        raise LoginNeeded
    return staff


def checked_form(
    request: Request,
    repos: UnitOfWork,
    staff: Annotated[StaffAccount, Depends(logged_in)],
    csrf_token: Annotated[str, Form()] = "",
) -> StaffAccount:
    if not csrf_ok(request, csrf_token):
        if not _path_is_valid(request):
            raise HTTPException(status_code=404)  # a form to a page that does not exist
        repos.staff.detach(staff)  # the refusal page shows who is logged in, after the rollback
        raise FormRefused(staff)
    return staff


def _path_is_valid(request: Request) -> bool:
    """Would the route accept this path's ids? (FastAPI checks them only after the dependencies.)"""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return True
    _, errors = request_params_to_args(dependant.path_params, request.path_params)
    return not errors


# The unit of work ends with the route function (scope "function"): it is committed before the
# redirect that follows a form reaches the browser, so the next page shows the change.
UnitOfWork = Annotated[Repos, Depends(unit_of_work, scope="function")]
Staff = Annotated[StaffAccount, Depends(logged_in)]
StaffForm = Annotated[StaffAccount, Depends(checked_form)]


def tz(request: Request) -> ZoneInfo:
    return ZoneInfo(services(request).settings.timezone)


def scope(staff: StaffAccount) -> Scope:
    """What this staff member may see and do (``services.staff_scope``)."""
    return Scope.of(staff)


def labels(request: Request, within: Scope | None = None) -> dict[str, Any]:
    """Label tables for the templates; the provinces offered are those of ``within`` only."""
    running = services(request)
    provinces = running.catalog.kb.provinces.names()
    if within is not None and within.province is not None:
        provinces = [p for p in provinces if p == within.province]
    texts = running.texts
    return read_yaml(LABELS_FILE) | {
        "statuses": texts.labels["lead_status"],
        "eligibility": texts.labels["status"],
        "legal_forms": {str(o["value"]): o["label"] for o in texts.questions["legal_form"]["options"]},
        "programmes": {p.id: p.title for p in running.catalog.kb.programmes},
        "provinces": provinces,
    }


def categories(request: Request) -> dict[str, str]:
    """The categories staff may target, with their Vietnamese names."""
    names = services(request).texts.labels["categories"]
    return {str(c): names[str(c)] for c in Category if c != Category.GENERAL}


def page(
    request: Request, template: str, staff: StaffAccount | None, status_code: int = 200, **context: Any
) -> Response:
    within = scope(staff) if staff is not None else None
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "staff": staff,
            "scope": within,
            "csrf": csrf_token(request),
            "labels": labels(request, within),
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


def not_found(request: Request, staff: StaffAccount) -> Response:
    return page(request, "not_found.html", staff, status_code=404)


def to_login() -> RedirectResponse:
    return RedirectResponse("/", status_code=303)


def redirect(url: str) -> RedirectResponse:
    """After a form: see the result with a GET."""
    return RedirectResponse(url, status_code=303)


def wake_outbox(request: Request) -> None:
    """This request queued messages: have the outbox look for them once they are committed."""
    request.state.wake_outbox = True


def page_number(request: Request) -> int:
    """The ``page`` of the query string (1 when missing or not a page number)."""
    text = request.query_params.get("page", "1")
    return int(text) if text.isdigit() and 0 < int(text) < MAX_ID else 1


def form_text(value: str, limit: int) -> str:
    """Text typed by staff, as stored: without control characters, trimmed, at most ``limit``."""
    return clean_text(value).strip()[:limit]


def actor(staff: StaffAccount) -> str:
    """How a staff member's actions are recorded."""
    return f"dashboard:{staff.username}"
