"""Dashboard security: who is logged in (server-side sessions), CSRF tokens on every form, the login
limit (in the database, per client address and per normalised username), the client's address
behind trusted proxies only, and the security headers of every response."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storage.models import StaffAccount, utcnow
from storage.repositories import Repos, normalise_username

SESSION_TOKEN = "sid"
SESSION_CSRF = "csrf"
SESSION_LIFETIME = timedelta(hours=8)
# Scripts and styles from our own files only (no inline script or style: the statistics charts are
# drawn by /static files from a JSON element), no framing, forms post back here only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def csrf_token(request: Request) -> str:
    """This session's CSRF token (created on first use)."""
    token = request.session.get(SESSION_CSRF)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return token


def csrf_ok(request: Request, submitted: str | None) -> bool:
    expected = request.session.get(SESSION_CSRF)
    return bool(expected and submitted) and hmac.compare_digest(str(expected), str(submitted))


def current_staff(request: Request, repos: Repos) -> StaffAccount | None:
    """The account of this request's session, if the session still exists server-side."""
    token = request.session.get(SESSION_TOKEN)
    if not isinstance(token, str) or not token:
        return None
    return repos.staff.by_session(token, utcnow())


def log_in(request: Request, repos: Repos, account: StaffAccount) -> None:
    """A fresh session (and CSRF token): the cookie gets a random token, the database its digest."""
    assert account.id is not None
    request.session.clear()
    token = secrets.token_urlsafe(32)
    repos.staff.start_session(account.id, token, utcnow(), SESSION_LIFETIME)
    request.session[SESSION_TOKEN] = token
    csrf_token(request)


def log_out(request: Request, repos: Repos) -> None:
    """End the session for good: a copy of the cookie saved before logging out no longer works."""
    token = request.session.get(SESSION_TOKEN)
    if isinstance(token, str) and token:
        repos.staff.end_session(token)
    request.session.clear()


# --- the client's address ---


def parse_networks(values: list[str]) -> list[Network]:
    return [ipaddress.ip_network(value, strict=False) for value in values]


def _within(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: Request, trusted: list[Network]) -> str:
    """The peer's address; behind a proxy listed in TRUSTED_PROXIES, the nearest address in
    ``X-Forwarded-For`` that is not itself a trusted proxy. From anyone else the header is ignored."""
    peer = request.client.host if request.client else "unknown"
    if not _within(peer, trusted):
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _within(hop, trusted):
            return hop
    return peer


def login_keys(client: str, username: str) -> tuple[str, str]:
    return f"ip:{client}", f"user:{normalise_username(username)[:120]}"


# --- the login limit ---


@dataclass
class LoginLimiter:
    """At most ``max_failures`` failed logins per key in ``window`` seconds. The failures are rows
    in the database, so every process of a deployment counts the same ones."""

    max_failures: int = 5
    window: float = 900.0
    clock: Callable[[], datetime] = field(default=utcnow)

    def retry_after(self, repos: Repos, keys: tuple[str, ...]) -> int:
        """Seconds to wait before another try, 0 when allowed."""
        now = self.clock()
        recent = repos.login_failures.recent(keys, now - timedelta(seconds=self.window))
        waits = [
            int(self.window - (now - failures[-self.max_failures]).total_seconds()) + 1
            for failures in recent.values()
            if len(failures) >= self.max_failures
        ]
        return max(waits, default=0)

    def failed(self, repos: Repos, keys: tuple[str, ...]) -> None:
        repos.login_failures.add(keys, self.clock())

    def succeeded(self, repos: Repos, keys: tuple[str, ...]) -> None:
        repos.login_failures.clear(keys)


# --- headers on every response ---


class SecurityHeaders:
    """Adds the security headers to every HTTP response (pages, files, errors, webhooks)."""

    def __init__(self, app: ASGIApp, hsts: bool):
        self.app = app
        self.headers = {
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
            "Cross-Origin-Opener-Policy": "same-origin",
        }
        if hsts:  # only over HTTPS (production): a browser would otherwise refuse plain HTTP later
            self.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    if name not in headers:
                        headers[name] = value
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"  # pages hold producers' personal data
            await send(message)

        await self.app(scope, receive, send_with_headers)
