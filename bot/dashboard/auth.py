"""Logging in and out of the dashboard.

One normalisation of usernames (``storage.repositories.normalise_username``) for the lookup and the
login limit, so a differently spelled username cannot sidestep a lock; an unknown username costs the
same time as a wrong password; the client's address comes from ``X-Forwarded-For`` only behind a
proxy listed in TRUSTED_PROXIES. A session lives in the database and ends for good at logout.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from bot.dashboard.pages import actor, page, services, to_login
from bot.dashboard.security import client_address, csrf_ok, current_staff, log_in, log_out, login_keys
from services import audit
from storage.models import utcnow
from storage.passwords import check_password

router = APIRouter()
MAX_FIELD = 200  # longer usernames or passwords are not ours: refused before any hashing


def _same_origin(request: Request) -> bool:
    """A cross-site form post carries the other site's Origin (or Referer); refuse those."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


@router.post("/")
@router.post("/login")
def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    csrf_token_field: str = Form("", alias="csrf_token"),
) -> Response:
    running = services(request)
    limiter = request.app.state.login_limiter
    keys = login_keys(client_address(request, request.app.state.trusted_proxies), username)
    # The login form carries a CSRF token; a scripted client without a session is judged by its origin.
    token_ok = csrf_ok(request, csrf_token_field) if request.session.get("csrf") else True
    if not (token_ok and _same_origin(request)):
        return page(request, "login.html", None, status_code=403, error="csrf")
    with running.db.unit() as repos:
        wait = limiter.retry_after(repos, keys)
    if wait:
        return page(request, "login.html", None, status_code=429, error="rate", wait_minutes=-(-wait // 60))
    with running.db.unit() as repos:
        account = repos.staff.by_username(username[:MAX_FIELD])
        stored = account.password_hash if account is not None and account.is_active else None
    # Hashing (tens of ms, one at a time) happens with no database connection held: a flood of logins
    # must not take the connections the bots need.
    valid = check_password(password[:MAX_FIELD], stored) and account is not None
    with running.db.unit() as repos:
        if not valid or account is None:
            limiter.failed(repos, keys)
            return page(request, "login.html", None, status_code=401, error="invalid", username=username[:64])
        repos.staff.touch_login(account, utcnow())
        limiter.succeeded(repos, keys)
        log_in(request, repos, account)
        audit.login(repos, actor(account))
    return RedirectResponse("/", status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token_field: str = Form("", alias="csrf_token")) -> Response:
    if csrf_ok(request, csrf_token_field):
        with services(request).db.unit() as repos:
            staff = current_staff(request, repos)
            if staff is not None:
                audit.logout(repos, actor(staff))
            log_out(request, repos)
    return to_login()
