"""Storage: migrations, URL handling, the unit of work and the repositories, on SQLite or PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from storage.db import Database, normalise_url
from storage.models import ChatPacing, Lead, User, metadata, saved_id, table_of
from storage.repositories import Repos
from tests.support.checks import one


def test_normalise_url_picks_psycopg_for_postgres() -> None:
    assert (
        normalise_url("postgresql://postgres@127.0.0.1:5432/kc")
        == "postgresql+psycopg://postgres@127.0.0.1:5432/kc"
    )
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///data/kc.db") == "sqlite:///data/kc.db"


def test_saved_id_is_the_id_of_a_flushed_row(database: Database) -> None:
    user = User(channel="console", external_id="saved-id")
    with pytest.raises(ValueError, match="User has no id yet"):
        saved_id(user)
    with database.session() as s:
        s.add(user)
        s.flush()
        assert saved_id(user) == user.id


def test_table_of_is_the_table_of_a_model() -> None:
    assert table_of(ChatPacing).name == "chat_pacing"
    assert table_of(Lead).c.get("phone") is not None
    assert table_of(Lead) is metadata.tables["leads"]


def test_migrations_create_every_table(database: Database) -> None:
    tables = set(inspect(database.engine).get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= tables
    assert "alembic_version" in tables


def test_migrations_match_the_models(database: Database) -> None:
    """What the migrations build is what the models describe (hand-edited migrations included)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.models import metadata

    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    outside_models = {"ix_leads_search_text_trgm"}  # PostgreSQL only (see migration 0005)
    differences = [d for d in differences if not (d[0] == "remove_index" and d[1].name in outside_models)]
    assert differences == []


def test_migrate_twice_is_harmless(database: Database) -> None:
    database.migrate()
    assert database.ping()


def test_sqlite_default_creates_its_directory(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'kc.db'}")
    db.migrate()
    assert (tmp_path / "nested" / "dir" / "kc.db").exists()
    db.dispose()


def test_users_are_unique_per_channel_and_id(database: Database) -> None:
    with database.session() as s:
        repos = Repos(s)
        a = repos.users.get_or_create("telegram", "42", "Nguyễn Văn A")
        b = repos.users.get_or_create("zalo", "42", "Trần Thị B")
        again = repos.users.get_or_create("telegram", "42", "Nguyễn Văn A")
        assert a.id == again.id != b.id
    with database.session() as s:
        assert Repos(s).users.count() == 2


def test_vietnamese_text_and_big_money_round_trip(database: Database) -> None:
    with database.session() as s:
        repos = Repos(s)
        user = repos.users.get_or_create("telegram", "7", "Đặng Thị Hồng <b>")
        repos.profiles.update(
            saved_id(user), province="Đắk Lắk", investment_cost_vnd=12_500_000_000, interests=["machinery"]
        )
    with database.session() as s:
        profile = one(Repos(s).profiles.get(saved_id(user)))
        assert profile.province == "Đắk Lắk"
        assert profile.investment_cost_vnd == 12_500_000_000
        assert profile.interests == ["machinery"]
        assert one(Repos(s).users.get(saved_id(user))).display_name == "Đặng Thị Hồng <b>"


def test_times_are_stored_timezone_aware_utc(database: Database) -> None:
    with database.session() as s:
        user = Repos(s).users.get_or_create("zalo", "abc123", "X")
    with database.session() as s:
        loaded = one(Repos(s).users.get(saved_id(user)))
        assert loaded.created_at.tzinfo is not None
        assert one(loaded.created_at.utcoffset()).total_seconds() == 0


def test_conversation_state_survives_a_new_session(database: Database) -> None:
    with database.session() as s:
        repos = Repos(s)
        user = repos.users.get_or_create("telegram", "1", "A")
        repos.conversations.save(
            saved_id(user), "eligibility", "ask_province", {"answers": {"legal_form": "coop"}}, 3
        )
    with database.session() as s:
        conv = Repos(s).conversations.get(saved_id(user))
        assert (conv.flow, conv.step, conv.menu_version) == ("eligibility", "ask_province", 3)
        assert conv.data == {"answers": {"legal_form": "coop"}}


def test_unit_of_work_rolls_back_on_error(database: Database) -> None:
    with pytest.raises(RuntimeError), database.session() as s:
        Repos(s).users.get_or_create("telegram", "99", "Rolled back")
        raise RuntimeError("boom")
    with database.session() as s:
        assert Repos(s).users.find("telegram", "99") is None


def _lead(user_id: int, key: str) -> Lead:
    return Lead(
        user_id=user_id,
        channel="telegram",
        submission_key=key,
        full_name="Lê Văn C",
        phone="0912345678",
        consent_at=datetime.now(UTC),
        programme_id="machinery-national",
        category="machinery",
    )


def test_lead_gets_reference_code_and_audit_event(database: Database) -> None:
    with database.session() as s:
        repos = Repos(s)
        user = repos.users.get_or_create("telegram", "5", "C")
        lead = repos.leads.add(_lead(saved_id(user), "sub-1"), year=2026)
        assert lead.ref_code == f"KC-2026-{lead.id:06d}"
    with database.session() as s:
        repos = Repos(s)
        assert one(repos.leads.by_ref(lead.ref_code)).full_name == "Lê Văn C"
        assert [e.to_status for e in repos.leads.events(saved_id(lead))] == ["new"]


def test_duplicate_submission_key_is_refused(database: Database) -> None:
    with database.session() as s:
        user = Repos(s).users.get_or_create("telegram", "6", "D")
        Repos(s).leads.add(_lead(saved_id(user), "same-key"), year=2026)
    with pytest.raises(IntegrityError), database.session() as s:
        Repos(s).leads.add(_lead(saved_id(user), "same-key"), year=2026)


def test_message_log_keeps_order(database: Database) -> None:
    with database.session() as s:
        repos = Repos(s)
        user = repos.users.get_or_create("zalo", "z1", "E")
        for i in range(3):
            repos.messages.add(saved_id(user), "zalo", "in" if i % 2 == 0 else "out", f"m{i}")
    with database.session() as s:
        assert [m.text for m in Repos(s).messages.history(saved_id(user))] == ["m0", "m1", "m2"]


def test_accounts_from_before_roles_become_admins(tmp_path: Path) -> None:
    """Migration 0008 on a database of 0007 with an account: it is a national administrator."""
    from alembic import command
    from sqlalchemy import text

    from storage.db import alembic_config

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    config = alembic_config(db.url)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
        connection.execute(
            text(
                "INSERT INTO staff_accounts (username, password_hash, is_active, created_at)"
                " VALUES ('canbo.cu', 'h', 1, '2026-01-01 00:00:00')"
            )
        )
    db.migrate()
    with db.session() as s:
        account = Repos(s).staff.by_username("canbo.cu")
        assert account is not None and (account.role, account.province) == ("admin", None)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0007")  # and back
    db.dispose()
