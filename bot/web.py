"""The web side of the process: health check, metrics, the Telegram and Zalo webhooks, and (mounted
by ``bot.dashboard``) the staff dashboard, all on one Starlette/FastAPI app and one event loop.

``/healthz`` also shows the inbox's backlog (updates waiting, the oldest one's wait, whether new ones
are accepted); while it is over ``INBOX_MAX_BACKLOG`` a webhook call is answered 503 with Retry-After
before its body is read, so the platform keeps the update and sends it again (``bot.inbox``).

``/metrics`` is this process's Prometheus exposition (``bot.metrics``). With ``METRICS_TOKEN`` set it
answers only requests carrying ``Authorization: Bearer <token>`` (401 otherwise); without, anyone
who reaches the port may read it (it holds counts, never personal data); the reverse proxy keeps
it off the public URL either way (``deploy/nginx.conf``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from bot.channels.telegram import SECRET_HEADER as TELEGRAM_SECRET_HEADER
from bot.channels.zalo import SECRET_HEADER as ZALO_SECRET_HEADER
from bot.dashboard.app import create_dashboard
from bot.inbox import RETRY_AFTER_SECONDS
from bot.metrics import CONTENT_TYPE, Metrics
from bot.secrets import session_key
from storage.models import utcnow
from storage.repositories import Repos

if TYPE_CHECKING:
    from bot.channels.telegram import TelegramChannel
    from bot.channels.zalo import ZaloChannel
    from bot.inbox import InboxWorker
    from bot.outbox import OutboxSender
    from bot.services import Services

log = logging.getLogger(__name__)
MAX_WEBHOOK_BYTES = 1_000_000


def create_web_app(
    services: Services,
    telegram: TelegramChannel | None = None,
    outbox: OutboxSender | None = None,
    *,
    zalo: ZaloChannel | None = None,
    metrics: Metrics | None = None,
    inbox: InboxWorker | None = None,
) -> FastAPI:
    app = FastAPI(title="Tro ly Khuyen cong", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.state.telegram = telegram
    app.state.outbox = outbox
    app.state.zalo = zalo
    settings = services.settings
    create_dashboard(app, settings, session_key(settings))
    if metrics is None:  # a web app alone (tests, tools): its database figures still count
        metrics = Metrics()
        metrics.watch_database(services.db, {})
    app.state.metrics = metrics
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        # The ping runs in the bots' worker threads, not the dashboard's (which a flood of logins or
        # an export may keep busy): health is reported as the bots see it.
        try:
            waiting, oldest = await asyncio.to_thread(_backlog, services)
        except Exception:
            return JSONResponse({"status": "unavailable"}, status_code=503)
        wait = max((utcnow() - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        backlog = {
            "waiting": waiting,
            "oldest_wait_seconds": round(wait, 3),
            "accepting": inbox is None or inbox.admitting,
        }
        return JSONResponse({"status": "ok", "inbox": backlog})

    @app.get("/metrics")
    async def metrics_page(request: Request) -> Response:
        if token is not None and not _bearer_ok(request.headers.get("authorization"), token):
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        # Read in the bots' worker threads, like the health check; bounded by DATABASE_TIMEOUT.
        body = await asyncio.to_thread(request.app.state.metrics.render)
        return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    @app.post("/webhook/telegram")
    async def telegram_webhook(request: Request) -> Response:
        return await _webhook(request, request.app.state.telegram, TELEGRAM_SECRET_HEADER)

    @app.post("/webhook/zalo")
    async def zalo_webhook(request: Request) -> Response:
        return await _webhook(request, request.app.state.zalo, ZALO_SECRET_HEADER)

    return app


async def _webhook(
    request: Request, channel: TelegramChannel | ZaloChannel | None, secret_header: str
) -> Response:
    """One webhook call: the secret header is checked before anything is read, the body is refused
    above ``MAX_WEBHOOK_BYTES`` without reading it all, and 200 comes only once the update is
    stored in the inbox (a repeated update is acknowledged too, and ignored)."""
    if channel is None or not channel.webhook_mode:
        return JSONResponse({"ok": False}, status_code=404)
    if not channel.secret_ok(request.headers.get(secret_header)):
        return JSONResponse({"ok": False}, status_code=403)
    if not channel.inbox.admitting:  # nothing stored, nothing acknowledged: the platform retries
        return JSONResponse(
            {"ok": False, "description": "busy"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    body = await _limited_body(request, MAX_WEBHOOK_BYTES)
    if body is None:
        return JSONResponse({"ok": False}, status_code=413)
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return JSONResponse({"ok": False}, status_code=400)
    try:
        status = await channel.accept_webhook(payload)
    except Exception:
        log.exception("could not store a webhook update; the platform will retry")
        return JSONResponse({"ok": False}, status_code=503)
    return JSONResponse({"ok": status == 200}, status_code=status)


def _bearer_ok(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _backlog(services: Services) -> tuple[int, datetime | None]:
    """The inbox's backlog, read fresh (which also says that the database answers)."""
    with services.db.session() as s:
        return Repos(s).inbox.backlog()


async def _limited_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to be longer than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
