"""The web side of the process: health check, the Telegram and Zalo webhooks, and (mounted by
``bot.dashboard``) the staff dashboard, all on one Starlette/FastAPI app and one event loop."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from bot.dashboard.routes import create_dashboard

if TYPE_CHECKING:
    from bot.channels.telegram import TelegramChannel
    from bot.channels.zalo import ZaloChannel
    from bot.outbox import OutboxSender
    from bot.services import Services


def create_web_app(
    services: Services,
    telegram: TelegramChannel | None = None,
    outbox: OutboxSender | None = None,
    *,
    zalo: ZaloChannel | None = None,
) -> FastAPI:
    app = FastAPI(title="Tro ly Khuyen cong", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.state.telegram = telegram
    app.state.outbox = outbox
    app.state.zalo = zalo
    settings = services.settings
    create_dashboard(app, settings.session_secret.get_secret_value(), secure_cookies=settings.secure_cookies)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        if services.db.ping():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable"}, status_code=503)

    @app.post("/webhook/telegram")
    async def telegram_webhook(request: Request) -> Response:
        return await _webhook(request, request.app.state.telegram, "X-Telegram-Bot-Api-Secret-Token")

    @app.post("/webhook/zalo")
    async def zalo_webhook(request: Request) -> Response:
        return await _webhook(request, request.app.state.zalo, "X-Bot-Api-Secret-Token")

    return app


async def _webhook(
    request: Request, channel: TelegramChannel | ZaloChannel | None, secret_header: str
) -> Response:
    """Hand a webhook call to its channel, which checks the secret before anything else (403)."""
    if channel is None or not channel.webhook_mode:
        return JSONResponse({"ok": False}, status_code=404)
    try:
        payload = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        payload = None
    status = await channel.process_webhook(request.headers.get(secret_header), payload)
    return JSONResponse({"ok": status == 200}, status_code=status)
