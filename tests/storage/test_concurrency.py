"""Storage under several processes at once: rows created on first contact (users, profiles,
conversations, calendar deadlines, staff accounts) by two sessions at the same moment, each over its
own engine as two processes would be; the first commits a moment after the second tried, so the
second really meets the first's uncommitted row. Both succeed and see one and the same row."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from sqlmodel import func, select

from storage.db import Database
from storage.models import Conversation, Deadline, Profile, StaffAccount, User, saved_id
from storage.repositories import Repos

# How long the first session keeps its new row uncommitted once the second has started.
HOLD = 0.4


@pytest.fixture
def other_process(database_url: str) -> Iterator[Database]:
    """A second engine on the same database: what another process would have."""
    db = Database(database_url)
    yield db
    db.dispose()


def race(first: Database, second: Database, create: Callable[[Repos], int]) -> tuple[int, int]:
    """``create`` in two sessions: the first creates, waits until the second has started, and
    commits ``HOLD`` seconds later; the second creates meanwhile. The ids each one got."""
    started = threading.Barrier(2, timeout=10)

    def one() -> int:
        with first.unit() as repos:
            row_id = create(repos)
            started.wait()
            time.sleep(HOLD)
        return row_id

    def two() -> int:
        started.wait()
        with second.unit() as repos:
            return create(repos)

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.submit(one), pool.submit(two)
        return a.result(timeout=30), b.result(timeout=30)


def a_user(database: Database, external_id: str = "race-1") -> int:
    with database.unit() as repos:
        return saved_id(repos.users.get_or_create("telegram", external_id, "Chị Lan"))


def count(database: Database, model: type[User | Profile | Conversation | Deadline | StaffAccount]) -> int:
    with database.session() as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def test_two_processes_create_one_user_at_once(database: Database, other_process: Database) -> None:
    ids = race(
        database,
        other_process,
        lambda repos: saved_id(repos.users.get_or_create("telegram", "700001", "Anh Minh", "minh")),
    )
    assert ids[0] == ids[1]
    assert count(database, User) == 1
    with database.session() as s:
        user = Repos(s).users.find("telegram", "700001")
        assert user is not None and user.display_name == "Anh Minh" and user.username == "minh"


def test_two_processes_create_one_profile_at_once(database: Database, other_process: Database) -> None:
    user_id = a_user(database)
    ids = race(database, other_process, lambda repos: repos.profiles.get_or_create(user_id).user_id)
    assert ids == (user_id, user_id)
    assert count(database, Profile) == 1


def test_two_processes_update_a_new_profile_at_once(database: Database, other_process: Database) -> None:
    """The first answer of a producer's profile (``update`` creates the row): both writes land."""
    user_id = a_user(database)
    race(database, other_process, lambda repos: repos.profiles.update(user_id, province="Huế").user_id)
    with database.session() as s:
        profile = Repos(s).profiles.get(user_id)
        assert profile is not None and profile.province == "Huế"


def test_two_processes_create_one_conversation_at_once(database: Database, other_process: Database) -> None:
    user_id = a_user(database)
    ids = race(database, other_process, lambda repos: repos.conversations.get(user_id).user_id)
    assert ids == (user_id, user_id)
    assert count(database, Conversation) == 1
    with database.session() as s:
        conversation = Repos(s).conversations.get(user_id)
        assert conversation.flow == "menu" and conversation.data == {}


def test_two_processes_save_a_new_conversation_at_once(database: Database, other_process: Database) -> None:
    user_id = a_user(database)

    def save(repos: Repos) -> int:
        repos.conversations.save(user_id, "ask", "question", {"q": "máy sấy"}, 2)
        return user_id

    race(database, other_process, save)
    with database.session() as s:
        conversation = Repos(s).conversations.get(user_id)
        assert (conversation.flow, conversation.step, conversation.data) == (
            "ask",
            "question",
            {"q": "máy sấy"},
        )


def test_two_processes_sync_one_calendar_deadline_at_once(
    database: Database, other_process: Database
) -> None:
    def sync(repos: Repos) -> int:
        deadline = repos.deadlines.upsert_by_key(
            "hoi-cho:2026-12-20", due_on=date(2026, 12, 20), action="Nộp hồ sơ", created_by="knowledge"
        )
        return saved_id(deadline)

    ids = race(database, other_process, sync)
    assert ids[0] == ids[1]
    assert count(database, Deadline) == 1


def test_two_processes_add_one_staff_account_at_once(database: Database, other_process: Database) -> None:
    ids = race(
        database,
        other_process,
        lambda repos: saved_id(repos.staff.upsert("CanBo1", "hash-1", None)[0]),
    )
    assert ids[0] == ids[1]
    assert count(database, StaffAccount) == 1


def test_two_processes_store_batches_of_the_same_chats_without_deadlock(
    database: Database, other_process: Database
) -> None:
    """Webhook updates arriving together are stored in one transaction, each chat locked (on
    PostgreSQL) until it commits: two processes storing the same chats in opposite orders must not
    wait for each other's locks in a cycle (PostgreSQL would abort one as a deadlock)."""
    chats = [f"chat-{i}" for i in range(12)]

    def store(db: Database, order: list[str], tag: str) -> int:
        stored = 0
        for round_ in range(15):
            with db.unit() as repos:
                rows = [("telegram", f"{tag}-{round_}-{chat}", chat, {"n": round_}) for chat in order]
                stored += sum(repos.inbox.add_many(rows))
        return stored

    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(store, database, chats, "a")
        b = pool.submit(store, other_process, chats[::-1], "b")
        assert (a.result(timeout=60), b.result(timeout=60)) == (15 * 12, 15 * 12)
