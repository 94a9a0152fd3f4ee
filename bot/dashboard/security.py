"""Dashboard security: who is logged in, CSRF tokens on every form, and a login rate limit."""

from __future__ import annotations

import hmac
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from fastapi import Request

from storage.models import StaffAccount
from storage.repositories import Repos

SESSION_STAFF = "staff_id"
SESSION_CSRF = "csrf"


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
    staff_id = request.session.get(SESSION_STAFF)
    if not isinstance(staff_id, int):
        return None
    account = repos.staff.get(staff_id)
    return account if account is not None and account.is_active else None


def log_in(request: Request, account: StaffAccount) -> None:
    request.session.clear()  # a fresh session (and CSRF token) on every login
    request.session[SESSION_STAFF] = account.id
    csrf_token(request)


def log_out(request: Request) -> None:
    request.session.clear()


@dataclass
class LoginLimiter:
    """At most ``max_failures`` failed logins per client address and per username in ``window`` seconds."""

    max_failures: int = 5
    window: float = 900.0
    clock: object = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))

    def _recent(self, key: str) -> deque[float]:
        now = self.clock()  # type: ignore[operator]
        failures = self._failures[key]
        while failures and now - failures[0] > self.window:
            failures.popleft()
        return failures

    def retry_after(self, *keys: str) -> int:
        """Seconds to wait before another try, 0 when allowed."""
        now = self.clock()  # type: ignore[operator]
        waits = [
            int(self.window - (now - recent[0])) + 1
            for key in keys
            if len(recent := self._recent(key)) >= self.max_failures
        ]
        return max(waits, default=0)

    def failed(self, *keys: str) -> None:
        now = self.clock()  # type: ignore[operator]
        for key in keys:
            self._recent(key).append(now)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)
