"""The staff dashboard, assembled on the process's web app: sessions (a signed cookie that carries
only a random token; the session itself is a database row), security headers on every response, the
stylesheet, friendly Vietnamese error pages for any bad path, id or form, and the page groups."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware

from bot.dashboard import audit, auth, broadcasts, deadlines, knowledge, leads, learning, questions, stats
from bot.dashboard.pages import FormRefused, LoginNeeded, error_page, page, to_login
from bot.dashboard.security import SESSION_LIFETIME, LoginLimiter, SecurityHeaders, parse_networks
from bot.settings import Settings

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"


def create_dashboard(app: FastAPI, settings: Settings, session_key: str) -> None:
    """Mount the dashboard on ``app`` (which holds ``state.services`` and ``state.outbox``)."""
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_key,
        session_cookie="kc_session",
        max_age=int(SESSION_LIFETIME.total_seconds()),
        same_site="strict",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies)
    app.state.login_limiter = LoginLimiter()
    app.state.trusted_proxies = parse_networks(settings.trusted_proxies)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for group in (auth, leads, questions, deadlines, broadcasts, learning, knowledge, stats, audit):
        app.include_router(group.router)
    app.add_exception_handler(LoginNeeded, _login_needed)
    app.add_exception_handler(FormRefused, _form_refused)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.add_exception_handler(Exception, _server_error)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(("/webhook/", "/healthz"))


async def _login_needed(request: Request, exc: Exception) -> Response:
    return to_login()


# Starlette types every handler as taking any Exception; each is registered for one class only.


async def _form_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FormRefused)
    return page(request, "forbidden.html", exc.staff, status_code=403)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _is_api(request):
        return JSONResponse({"ok": False}, status_code=exc.status_code)
    return error_page(request, exc.status_code)


async def _bad_request(request: Request, exc: Exception) -> Response:
    """A bad id in the path is a page that does not exist; a bad form is a bad request."""
    assert isinstance(exc, RequestValidationError)
    status = 404 if any(error.get("loc", ("",))[0] == "path" for error in exc.errors()) else 400
    if _is_api(request):
        return JSONResponse({"ok": False}, status_code=status)
    return error_page(request, status)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("dashboard error on %s: %s", request.url.path, type(exc).__name__)
    if _is_api(request):
        return JSONResponse({"ok": False}, status_code=500)
    return error_page(request, 500)
