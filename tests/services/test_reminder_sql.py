"""The reminder sweep in SQL: the rows ``plan`` inserts are exactly the (subscriber, deadline) pairs
the documented rule ``deadline_matches`` accepts, on a matrix of deadlines (province, programme,
category) and subscriptions (programme, categories, province, the profile's province); a sweep plans
a deadline for everyone once and then only newer subscriptions; with nothing due and nobody new it
reads no producer row."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import col, select

from knowledge.catalog import Catalog
from services.reminders import ReminderService, ReminderSettings, deadline_matches
from storage.db import Database
from storage.models import Deadline, Profile, Reminder, Subscription, saved_id
from storage.repositories import Repos
from tests.support.checks import one

NOW = datetime(2027, 3, 1, 3, 0, tzinfo=UTC)


class _Silent:
    def reminder(self, deadline: Deadline, days_left: int) -> Any:
        raise AssertionError("nothing is due in these tests")


def service(channels: tuple[str, ...] | None = ("telegram", "zalo")) -> ReminderService:
    return ReminderService(_Silent(), ReminderSettings(offsets_days=(14, 1)), channels)  # type: ignore[arg-type]


def seed_matrix(database: Database, catalog: Catalog) -> None:
    trade_fair = next(e.id for e in catalog.kb.programmes if str(e.category) == "trade_fair")
    with database.session() as s:
        repos = Repos(s)
        for i, (province, programme, category) in enumerate(
            itertools.product(
                [None, "Nghệ An", ""],
                [None, "machinery-national", "no-such-entry"],
                [None, "machinery", "trade_fair"],
            )
        ):
            repos.deadlines.add(
                Deadline(
                    due_on=date(2027, 4, 1) + timedelta(days=i),
                    action="Nộp hồ sơ",
                    province=province,
                    programme_id=programme,
                    category=category,
                    created_by="test",
                )
            )
        subscriptions = itertools.product(
            [None, "", "machinery-national", trade_fair, "no-such-entry"],
            [[], ["machinery"], ["trade_fair", "branding"]],
            [None, "", "Nghệ An", "Sơn La"],
            [None, "Nghệ An", "Sơn La"],
        )
        for i, (programme, categories, sub_province, profile_province) in enumerate(subscriptions):
            user = repos.users.get_or_create("zalo" if i % 2 else "telegram", f"m{i}", f"P{i}")
            if profile_province is not None:
                repos.profiles.update(saved_id(user), province=profile_province)
            s.add(
                Subscription(
                    user_id=saved_id(user),
                    programme_id=programme,
                    categories=categories,
                    province=sub_province,
                )
            )
        repos.users.get_or_create("console", "c1", "Elsewhere")  # not on the delivery channels


def expected_pairs(database: Database, catalog: Catalog) -> set[tuple[int, int]]:
    with database.session() as s:
        deadlines = s.exec(select(Deadline)).all()
        pairs = set()
        for sub in s.exec(select(Subscription)).all():
            profile = s.get(Profile, sub.user_id)
            province = profile.province if profile is not None else None
            for deadline in deadlines:
                if deadline_matches(deadline, sub, province, catalog.kb):
                    pairs.add((sub.user_id, saved_id(deadline)))
        return pairs


def planned_pairs(database: Database) -> set[tuple[int, int]]:
    with database.session() as s:
        reminders = s.exec(select(Reminder)).all()
        offsets: dict[tuple[int, int], set[int]] = {}
        for r in reminders:
            offsets.setdefault((r.user_id, r.deadline_id), set()).add(r.offset_days)
        assert all(found == {14, 1} for found in offsets.values())
        return set(offsets)


def test_the_sql_plan_matches_the_documented_rule(database: Database, catalog: Catalog) -> None:
    seed_matrix(database, catalog)
    expected = expected_pairs(database, catalog)
    assert 100 < len(expected) < 27 * 180  # the matrix has both outcomes
    with database.session() as s:
        added = service().plan(Repos(s), catalog.kb, NOW)
    assert added == 2 * len(expected)
    assert planned_pairs(database) == expected
    with database.session() as s:  # planned once: a second sweep adds nothing
        assert service().plan(Repos(s), catalog.kb, NOW) == 0


def test_one_users_plan_matches_the_rule_too(database: Database, catalog: Catalog) -> None:
    seed_matrix(database, catalog)
    expected = expected_pairs(database, catalog)
    with database.session() as s:
        repos = Repos(s)
        users = {
            saved_id(one(repos.users.find(c, f"m{i}")))
            for c, i in (("zalo", 7), ("telegram", 40), ("zalo", 123))
        }
        for user_id in users:
            service().plan(repos, catalog.kb, NOW, user_id=user_id)
    assert planned_pairs(database) == {(u, d) for u, d in expected if u in users}


def test_a_sweep_plans_new_subscribers_and_everyone_again_when_a_deadline_changes(
    database: Database, catalog: Catalog
) -> None:
    seed_matrix(database, catalog)
    with database.session() as s:
        service().plan(Repos(s), catalog.kb, NOW)
    with database.session() as s:  # a subscription inserted behind the service's back (an import)
        user = Repos(s).users.get_or_create("telegram", "late", "Muộn")
        s.add(Subscription(user_id=saved_id(user), categories=[], created_at=NOW - timedelta(hours=1)))
    with database.session() as s:
        assert service().plan(Repos(s), catalog.kb, NOW) == 2 * 9  # the national deadlines
    assert planned_pairs(database) == expected_pairs(database, catalog)
    with database.session() as s:  # staff move a national deadline to one province
        deadline = s.exec(select(Deadline).where(col(Deadline.province).is_(None))).first()
        assert deadline is not None
        deadline.province = "Sơn La"
        s.add(deadline)
    expected = expected_pairs(database, catalog)
    with database.session() as s:
        service().plan(Repos(s), catalog.kb, NOW)
    assert expected <= planned_pairs(database)


def test_an_idle_sweep_reads_no_producer_row(database: Database, catalog: Catalog) -> None:
    seed_matrix(database, catalog)
    with database.session() as s:
        service().plan(Repos(s), catalog.kb, NOW)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    later = NOW + timedelta(hours=1)  # every subscription has settled by now
    with database.session() as s:
        service().plan(Repos(s), catalog.kb, later)
    event.listen(database.engine, "before_cursor_execute", record)
    try:
        with database.session() as s:
            repos = Repos(s)
            assert service().plan(repos, catalog.kb, later) == 0
            assert service().queue_due(repos, later) == 0
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    assert len(statements) <= 6
    touched = " ".join(statements).lower()
    assert "from users" not in touched and "join users" not in touched
    assert "profiles" not in touched and "insert" not in touched
    with database.session() as s:
        assert one(s.exec(select(Subscription)).first()).is_active


def test_a_sweep_plans_everyone_for_a_few_deadlines_at_a_time(
    database: Database, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planning a deadline for everyone is a scan of the subscriptions; past the time budget a sweep
    leaves the rest to the next sweeps (soonest deadlines first), so none holds a long transaction."""
    from services import reminders

    seed_matrix(database, catalog)
    monkeypatch.setattr(reminders, "FULL_PLANS_SECONDS", 0.0)
    for sweep in range(27):  # one deadline planned for everyone per sweep
        with database.session() as s:
            repos = Repos(s)
            service().plan(repos, catalog.kb, NOW)
            assert len(repos.reminders.plan_marks(list(range(1, 100)))) == sweep + 1
    assert planned_pairs(database) == expected_pairs(database, catalog)
