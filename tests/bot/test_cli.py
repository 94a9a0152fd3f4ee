"""The command line contracts of design.md, run as a real subprocess."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import closing
from pathlib import Path

import pytest

from storage.db import Database
from storage.models import StaffAccount
from storage.repositories import Repos

ROOT = Path(__file__).resolve().parents[2]
# The commands of one test run share a database of their own, not the checkout's data/ folder
# (another test run in the same checkout, or the bot itself, may be using that one).
CLI_DATA = Path(tempfile.mkdtemp(prefix="kc-cli-"))
atexit.register(shutil.rmtree, CLI_DATA, True)


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DATABASE_URL": f"sqlite:///{CLI_DATA / 'kc.db'}"}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=env,
    )


def test_ask_json_shape() -> None:
    out = run("ask", "mua may say nong san duoc ho tro bao nhieu", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result) == {"query", "confident", "matches"}
    assert result["query"] == "mua may say nong san duoc ho tro bao nhieu"
    assert isinstance(result["confident"], bool)
    assert 1 <= len(result["matches"]) <= 5
    first = result["matches"][0]
    assert set(first) == {"id", "category", "title", "score"}
    assert first["category"] == "machinery"
    scores = [m["score"] for m in result["matches"]]
    assert scores == sorted(scores, reverse=True)


def test_ask_batch_reads_one_question_per_line() -> None:
    questions = [
        "hỗ trợ máy móc bao nhiêu",
        "",
        "di hoi cho nuoc ngoai duoc may lan",
        "thoi tiet mai the nao",
    ]
    out = run("ask", "--json", stdin="\n".join(questions) + "\n")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["query"] for r in lines] == [q for q in questions if q]
    assert lines[1]["matches"][0]["category"] == "trade_fair"
    assert lines[2]["confident"] is False


def test_eligibility_json_contract() -> None:
    profile = {
        "legal_form": "household_business",
        "activity": "production",
        "province": "nghe an",
        "place_type": "commune",
        "investment_cost_vnd": 800_000_000,
        "unknown_extra": 1,
    }
    out = run("eligibility", "--json", stdin=json.dumps(profile))
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)["results"]
    machinery = next(r for r in results if r["id"] == "machinery-national")
    assert machinery == machinery | {
        "category": "machinery",
        "scope": "national",
        "status": "eligible",
        "max_support_vnd": 300_000_000,
    }
    assert all(r["status"] in {"eligible", "not_eligible", "unknown"} for r in results)
    assert all(r["reasons"] for r in results)
    local = next(r for r in results if r["scope"] == "Đắk Lắk")
    assert local["status"] == "not_eligible"


def test_eligibility_with_empty_profile_is_all_unknown_or_not() -> None:
    out = run("eligibility", "--json", stdin="{}")
    assert out.returncode == 0, out.stderr
    statuses = {r["status"] for r in json.loads(out.stdout)["results"]}
    assert "eligible" not in statuses


def test_eligibility_rejects_a_bad_profile_clearly() -> None:
    out = run("eligibility", "--json", stdin='{"legal_form": "spaceship"}')
    assert out.returncode == 2
    assert "legal_form" in out.stderr
    assert "Traceback" not in out.stderr


def test_kb_validate_and_export() -> None:
    out = run("kb", "validate")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK:")
    export = run("kb", "export", "--json")
    entries = json.loads(export.stdout)
    assert all({"id", "category", "title", "scope"} <= set(e) for e in entries)
    assert len({e["id"] for e in entries}) == len(entries)


def staff_add(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")} | {
        "DATABASE_URL": database_url
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "staff", "add", *args],
        input="mat-khau-du-dai-123\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def account(database: Database, username: str) -> StaffAccount | None:
    with database.session() as s:
        found = Repos(s).staff.by_username(username)
        if found is not None:
            s.expunge(found)
        return found


@pytest.mark.parametrize(
    ("spelling", "province"),
    [
        ("Nghệ An", "Nghệ An"),
        ("nghe an", "Nghệ An"),
        ("tinh Quang Binh", "Quảng Trị"),
        ("Thái Bình", "Hưng Yên"),
    ],
)
def test_staff_add_a_province_account_in_any_spelling(
    database: Database, database_url: str, spelling: str, province: str
) -> None:
    out = staff_add(
        database_url, "canbo.tinh", "--role", "province", "--province", spelling, "--telegram-id", "42"
    )
    assert out.returncode == 0, out.stderr
    found = account(database, "canbo.tinh")
    assert found is not None
    assert (found.role, found.province, found.telegram_id) == ("province", province, 42)


def test_staff_add_is_an_admin_by_default(database: Database, database_url: str) -> None:
    assert staff_add(database_url, "quantri").returncode == 0
    found = account(database, "quantri")
    assert found is not None and (found.role, found.province) == ("admin", None)


def test_a_new_password_keeps_the_accounts_role(database: Database, database_url: str) -> None:
    assert staff_add(database_url, "canbo.tinh", "--province", "ha tinh").returncode == 0  # implies the role
    assert staff_add(database_url, "canbo.tinh").returncode == 0  # a new password, nothing else
    found = account(database, "canbo.tinh")
    assert found is not None and (found.role, found.province) == ("province", "Hà Tĩnh")
    assert staff_add(database_url, "canbo.tinh", "--role", "admin").returncode == 0
    found = account(database, "canbo.tinh")
    assert found is not None and (found.role, found.province) == ("admin", None)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("--role", "province"), "--province"),  # a province account needs its province
        (("--role", "admin", "--province", "Nghệ An"), "--province"),  # an admin has none
        (("--role", "province", "--province", "Atlantis"), "unknown province"),
        (("--role", "chief"), "invalid choice"),
    ],
)
def test_staff_add_refuses_a_wrong_role_or_province(
    database: Database, database_url: str, args: tuple[str, ...], problem: str
) -> None:
    out = staff_add(database_url, "canbo.sai", *args)
    assert out.returncode == 2 and problem in out.stderr, out.stderr
    assert account(database, "canbo.sai") is None


def test_staff_add_from_another_folder_leaves_it_untouched(tmp_path: Path) -> None:
    """`python -m bot staff add` run outside the project: the account lands in the configured
    database and the working folder gets no stray ./data/."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    database = tmp_path / "db" / "kc.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_", "DATA_DIR"))}
    env |= {"DATABASE_URL": f"sqlite:///{database}", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "bot", "staff", "add", "canbo.xa"],
        input="mat-khau-du-dai-123\n",
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert list(elsewhere.iterdir()) == []
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("SELECT username FROM staff_accounts").fetchall() == [("canbo.xa",)]
