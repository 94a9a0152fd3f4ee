"""The statistics aggregates (``StatsRepo`` through ``services.stats``) on seeded rows, on SQLite
or PostgreSQL: each figure is the count of the rows behind it, days are local days, rows outside the
period or the province are not counted, and a province account sees only its province."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from services import learning
from services.staff_scope import Scope
from services.stats import Statistics, StatsFilter, checked_filter, statistics
from storage.db import Database
from storage.models import Conversation, Lead, MessageLog, OutboxMessage, StaffQuestion, saved_id
from storage.repositories import Repos
from tests.support.checks import one

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
A = "Nghệ An"
B = "Hà Tĩnh"
NOVEMBER = StatsFilter(date(2026, 11, 1), date(2026, 11, 30))


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@dataclass
class Users:
    a: int
    b: int
    c: int


def _seed(db: Database) -> Users:
    with db.unit() as repos:
        s = repos.session
        ids = []
        for i, province in enumerate((A, B, None)):
            user = repos.users.get_or_create("telegram", f"90{i}", f"U{i}")
            ids.append(saved_id(user))
            repos.profiles.update(saved_id(user), province=province)
        users = Users(*ids)
        repos.profiles.update(users.b, legal_form="sme")  # answered the eligibility questions
        repos.profiles.update(users.c, legal_form="coop")  # ...but wrote nothing in the period

        def message(user_id: int, when: datetime, kind: str = "text", direction: str = "in") -> None:
            s.add(
                MessageLog(
                    user_id=user_id,
                    channel="telegram",
                    direction=direction,
                    kind=kind,
                    text="x",
                    created_at=when,
                )
            )

        message(users.a, at(5, 16, 30))  # 23:30 on 5/11 in Hà Nội
        message(users.a, at(5, 17, 30))  # 00:30 on 6/11
        message(users.a, at(5, 17, 31), kind="command")  # not a question
        message(users.a, at(5, 17, 32), direction="out")  # the bot's answer
        message(users.b, at(10, 3))
        message(users.b, at(10, 4))
        message(users.c, at(31, 16, 59, month=10))  # 23:59 on 31/10: before the period
        message(users.c, at(31, 17, 0, month=10))  # 00:00 on 1/11: the first instant of it
        message(users.a, at(30, 17, 0))  # 00:00 on 1/12: after it

        def lead(
            user_id: int,
            key: str,
            province: str | None,
            when: datetime,
            programme_id: str,
            category: str,
            status: str,
        ) -> None:
            row = Lead(
                submission_key=key,
                user_id=user_id,
                channel="telegram",
                full_name="N",
                phone="0912345678",
                province=province,
                consent_at=when,
                created_at=when,
                programme_id=programme_id,
                category=category,
                status=status,
            )
            repos.leads.add(row, 2026)

        lead(users.a, "a1", A, at(6, 2), programme_id="p1", category="machinery", status="approved")
        lead(users.a, "a2", A, at(7, 2), programme_id="p2", category="machinery", status="new")
        lead(users.b, "b1", B, at(8, 2), programme_id="p1", category="branding", status="new")
        lead(users.b, "b0", B, at(20, 2, month=10), programme_id="p1", category="branding", status="approved")
        s.flush()
        s.add(
            Conversation(
                user_id=users.c,
                flow="apply",
                data={"_draft": {"id": "d1", "values": {}}},
                updated_at=at(12, 5),
            )
        )

        def question(
            user_id: int, text: str, province: str | None, when: datetime, status: str = "open"
        ) -> None:
            s.add(
                StaffQuestion(user_id=user_id, text=text, province=province, status=status, created_at=when)
            )
            # As services.questions.ask does: the question also lands in the learning queue.
            item = one(learning.note(Repos(s), text, "ask_staff", user_id, province))
            item.created_at = when
            if status == "answered":
                item.resolved_at = when
            s.add(item)
            s.flush()

        question(users.a, "Hỗ trợ máy móc thế nào?", A, at(6, 1))
        question(users.a, "hỗ trợ  máy móc thế nào", A, at(6, 2))
        question(users.a, "Hỗ trợ máy móc thế nào?", A, at(9, 2))
        question(users.a, "Câu đã trả lời", A, at(9, 3), status="answered")
        question(users.b, "Hạn nộp hồ sơ?", B, at(9, 4))
        question(users.b, "Hạn nộp hồ sơ?", B, at(20, 4, month=10))  # before the period

        def outbox(user_id: int, kind: str, status: str, when: datetime, n: int) -> None:
            s.add(
                OutboxMessage(
                    kind=kind,
                    source_id=n,
                    dedupe_key=f"{kind}:{n}:{user_id}",
                    user_id=user_id,
                    channel="telegram",
                    chat_id="1",
                    text="t",
                    status=status,
                    created_at=when,
                )
            )

        outbox(users.a, "broadcast", "sent", at(3, 1), 1)
        outbox(users.b, "broadcast", "sent", at(3, 1), 1)
        outbox(users.b, "broadcast", "blocked", at(3, 1), 2)
        outbox(users.a, "broadcast", "pending", at(3, 1), 3)
        outbox(users.a, "broadcast", "sending", at(3, 1), 4)
        outbox(users.b, "reminder", "failed", at(4, 1), 5)
        outbox(users.a, "reminder", "sent", at(20, 1, month=10), 6)  # before the period
        outbox(users.a, "reply", "sent", at(4, 1), 7)  # a live reply: not counted
    return users


def _stats(db: Database, scope: Scope, wanted: StatsFilter = NOVEMBER) -> Statistics:
    with db.unit() as repos:
        return statistics(Repos(repos.session), scope, wanted, TZ)


def _by_day(stats: Statistics, series: list[int]) -> dict[str, int]:
    return {d: n for d, n in zip(stats.days, series, strict=True) if n}


def test_every_figure_counts_the_rows_behind_it(database: Database) -> None:
    _seed(database)
    stats = _stats(database, Scope())
    assert len(stats.days) == 30 and stats.days[0] == "2026-11-01" and stats.days[-1] == "2026-11-30"
    assert _by_day(stats, stats.questions) == {
        "2026-11-01": 1,
        "2026-11-05": 1,
        "2026-11-06": 1,
        "2026-11-10": 2,
    }
    assert _by_day(stats, stats.staff_questions) == {"2026-11-06": 2, "2026-11-09": 3}
    assert stats.topics == [("machinery", 2), ("branding", 1)]
    assert stats.unanswered == [("Hỗ trợ máy móc thế nào?", 3), ("Hạn nộp hồ sơ?", 1)]
    assert stats.leads_by_province == [(A, 2), (B, 1)]
    assert stats.leads_by_programme == [("p1", 2), ("p2", 1)]
    assert stats.leads_by_status == [("new", 2), ("approved", 1)]
    # asked: a, b, c (c at the first instant); checked: b (answers + wrote), a (submitted), c has
    # answers and wrote in the period too; started: c's draft, a and b submitted.
    assert dict(stats.funnel) == {"asked": 3, "checked": 3, "started": 3, "submitted": 2, "approved": 1}
    assert stats.deliveries == {
        "broadcast": {"sent": 2, "blocked": 1, "failed": 0, "waiting": 2},
        "reminder": {"sent": 0, "blocked": 0, "failed": 1, "waiting": 0},
    }


def test_a_province_counts_only_its_own(database: Database) -> None:
    _seed(database)
    for stats in (
        _stats(database, Scope(province=A)),
        _stats(database, Scope(), StatsFilter(NOVEMBER.start, NOVEMBER.end, A)),
    ):
        assert stats.province == A
        assert _by_day(stats, stats.questions) == {"2026-11-05": 1, "2026-11-06": 1}
        assert _by_day(stats, stats.staff_questions) == {"2026-11-06": 2, "2026-11-09": 2}
        assert stats.topics == [("machinery", 2)]
        assert stats.unanswered == [("Hỗ trợ máy móc thế nào?", 3)]
        assert stats.leads_by_province == [(A, 2)]
        assert dict(stats.funnel) == {"asked": 1, "checked": 1, "started": 1, "submitted": 1, "approved": 1}
        assert stats.deliveries["broadcast"] == {"sent": 1, "blocked": 0, "failed": 0, "waiting": 2}
        assert stats.deliveries["reminder"] == {"sent": 0, "blocked": 0, "failed": 0, "waiting": 0}


def test_a_province_account_cannot_ask_for_another_province(database: Database) -> None:
    _seed(database)
    stats = _stats(database, Scope(province=A), StatsFilter(NOVEMBER.start, NOVEMBER.end, B))
    assert stats.province == A
    assert stats.leads_by_province == [(A, 2)]


def test_the_csv_rows_are_the_figures(database: Database) -> None:
    _seed(database)
    rows = _stats(database, Scope()).rows()
    assert ("questions_per_day", "2026-11-10", 2) in rows
    assert ("questions_per_day", "2026-11-02", 0) in rows
    assert ("funnel", "approved", 1) in rows
    assert ("delivery_broadcast", "waiting", 2) in rows
    assert ("unanswered", "Hỗ trợ máy móc thế nào?", 3) in rows


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, (date(2026, 11, 2), date(2026, 12, 1))),
        (date(2026, 11, 20), date(2026, 11, 10), (date(2026, 11, 10), date(2026, 11, 20))),
        (date(2024, 1, 1), date(2026, 12, 1), (date(2025, 12, 1), date(2026, 12, 1))),
        (date(2026, 11, 1), None, (date(2026, 11, 1), date(2026, 11, 30))),
    ],
)
def test_the_period_is_made_sound(start: date | None, end: date | None, expected: tuple[date, date]) -> None:
    wanted = checked_filter(start, end, "", date(2026, 12, 1))
    assert (wanted.start, wanted.end) == expected
    assert wanted.province is None
