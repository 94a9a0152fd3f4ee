"""Broadcasts rendered and selected in SQL agree with the Python rules: the text of every outbox row
equals ``render`` (escaping, whitespace, missing profiles) for plain templates (one INSERT ... SELECT)
and for templates SQL cannot render (Python batches); the audience filter in SQL picks exactly whom
the Python reading of the filter picks; a refused confirmation selects nobody."""

from __future__ import annotations

import pytest
from sqlmodel import select

from knowledge.catalog import Catalog
from services import broadcasts
from services.broadcasts import Audience, BroadcastService, compile_template, render
from services.staff_directory import StaffDirectory
from storage.db import Database
from storage.models import Broadcast, OutboxMessage, Profile, Subscription, User, saved_id
from storage.repositories import Repos

SERVICE = BroadcastService(StaffDirectory.of(["900"]))
NAMES = [
    "Lan",
    " Bình ",
    "Cúc <b>&amp;</b>",
    'Dũng "Út" O\'Neil',
    "\u00a0Hà\u3000",
    "",
    "Mai\n",
    "%_\\",
]
TEMPLATES = [
    "Chào {{ ten }} ở {{ tinh }} <nhớ nộp hồ sơ> & chuẩn bị",
    "{{ ten }}",
    "  {{ co_so }}  \r\nThân ái, {{name}} ({{ province }}, {{ establishment }})\n",
    "{{ ten }}{{ tinh }}{{ co_so }}{# ghi chú #}",
    "{% raw %}{{ ten }}{% endraw %} là chữ",
    "Văn bản không có biến",
]
# Beyond plain variables: rendered in Python batches, with the same result.
PYTHON_TEMPLATES = ["Chào {{ ten | upper }}", "{% if tinh %}Ở {{ tinh }}{% else %}Chưa rõ tỉnh{% endif %}"]


def seed(database: Database) -> dict[str, tuple[User, Profile | None]]:
    with database.session() as s:
        repos = Repos(s)
        for i, name in enumerate(NAMES):
            user = repos.users.get_or_create("telegram" if i % 2 else "zalo", f"c{i}", name)
            if i % 3 != 2:  # some have no profile at all
                repos.profiles.update(
                    saved_id(user),
                    province=None if i % 4 == 3 else "Nghệ An",
                    establishment_name=None if i == 1 else f"Cơ sở <{i}> & 'x'",
                )
    with database.session() as s:
        rows = s.exec(select(User, Profile).join(Profile, isouter=True)).all()
        for user, profile in rows:
            s.expunge(user)
            if profile is not None:
                s.expunge(profile)
        return {user.external_id: (user, profile) for user, profile in rows}


def queued_texts(database: Database, catalog: Catalog, template: str) -> dict[str, str]:
    with database.session() as s:
        repos = Repos(s)
        draft = SERVICE.create(repos, template, Audience(), [], "test")
        assert SERVICE.confirm(repos, catalog.kb, draft) == len(NAMES)
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.source_id == draft.id)).all()
        assert {r.dedupe_key for r in rows} == {f"broadcast:{draft.id}:{r.user_id}" for r in rows}
        return {r.chat_id: r.text for r in rows}


@pytest.mark.parametrize("template", TEMPLATES + PYTHON_TEMPLATES)
def test_every_row_reads_as_the_python_rendering(database: Database, catalog: Catalog, template: str) -> None:
    people = seed(database)
    sql_rendered = compile_template(template).parts is not None
    assert sql_rendered == (template in TEMPLATES)
    texts = queued_texts(database, catalog, template)
    assert texts == {chat: render(template, user, profile) for chat, (user, profile) in people.items()}


def test_the_python_batches_cover_everyone_once(
    database: Database, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = seed(database)
    monkeypatch.setattr(broadcasts, "RENDER_BATCH", 3)
    texts = queued_texts(database, catalog, PYTHON_TEMPLATES[0])
    assert sorted(texts) == sorted(people)


def test_the_whitespace_sql_trims_is_what_python_strips() -> None:
    import sys

    from storage.bulk import WHITESPACE

    assert set(WHITESPACE) == {c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()}


def _python_pick(
    catalog: Catalog, audience: Audience, people: list[tuple[User, Profile | None, list[Subscription]]]
) -> list[str]:
    """The audience rule in Python (as the service applied it before it was SQL)."""
    picked = []
    for user, profile, subs in people:
        if user.is_blocked or user.external_id == "900":
            continue
        if audience.province and (profile is None or profile.province != audience.province):
            continue
        if audience.legal_form and (profile is None or profile.legal_form != audience.legal_form):
            continue
        if audience.subscribers_only and not subs:
            continue
        if audience.category:
            interested = profile is not None and audience.category in (profile.interests or [])
            for sub in subs:
                if sub.programme_id:
                    entry = catalog.kb.by_id.get(sub.programme_id)
                    interested |= entry is not None and str(entry.category) == audience.category
                else:
                    interested |= not sub.categories or audience.category in sub.categories
            if not interested:
                continue
        picked.append(user.external_id)
    return picked


def test_the_sql_audience_picks_whom_the_python_rule_picks(database: Database, catalog: Catalog) -> None:
    interests = [[], ["machinery"], ["trade_fair", "branding"], ["machinery_x"]]
    subscriptions: list[list[dict[str, object]]] = [
        [],
        [{"categories": []}],
        [{"categories": ["trade_fair"]}],
        [{"programme_id": "machinery-national"}],
        [{"categories": ["machinery"], "is_active": False}],
        [{"programme_id": "no-such-entry"}, {"categories": ["branding"]}],
        [{"programme_id": "", "categories": ["machinery"]}],
    ]
    people = []
    with database.session() as s:
        repos = Repos(s)
        for i in range(56):
            user = repos.users.get_or_create("telegram" if i % 3 else "zalo", str(1000 + i), f"P{i}")
            if i % 11 == 5:
                repos.users.mark_blocked(saved_id(user))
            if i % 7 != 6:
                repos.profiles.update(
                    saved_id(user),
                    province=["Nghệ An", "Sơn La", None][i % 3],
                    legal_form=["household_business", "coop", None, "sme"][i % 4],
                    interests=interests[i % 4],
                )
            for values in subscriptions[i % 7]:
                s.add(Subscription(user_id=saved_id(user), **values))  # type: ignore[arg-type]
        repos.users.get_or_create("telegram", "900", "Cán bộ")
        s.flush()
        for user in s.exec(select(User).order_by(User.id)).all():  # type: ignore[arg-type]
            subs = s.exec(select(Subscription).where(Subscription.user_id == user.id)).all()
            profile = repos.profiles.get(saved_id(user))
            people.append((user, profile, [sub for sub in subs if sub.is_active]))
        audiences = [
            Audience(),
            Audience(province="Nghệ An"),
            Audience(legal_form="coop"),
            Audience(subscribers_only=True),
            Audience(category="machinery"),
            Audience(category="trade_fair", province="Sơn La"),
            Audience(category="branding", subscribers_only=True),
        ]
        for audience in audiences:
            expected = _python_pick(catalog, audience, people)
            assert [u.external_id for u, _ in SERVICE.recipients(repos, catalog.kb, audience)] == expected
            counts = SERVICE.count(repos, catalog.kb, audience)
            assert counts == broadcasts.count_by_channel(SERVICE.recipients(repos, catalog.kb, audience))


def test_a_refused_confirmation_selects_nobody(
    database: Database, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(database)
    with database.session() as s:
        repos = Repos(s)
        draft = SERVICE.create(repos, "Thông báo", Audience(), [], "test")
        assert SERVICE.confirm(repos, catalog.kb, draft) == len(NAMES)

        def no_selection(*args: object) -> object:
            raise AssertionError("a refused confirmation computed its recipients")

        monkeypatch.setattr(BroadcastService, "selection", no_selection)
        assert SERVICE.confirm(repos, catalog.kb, draft) == 0


def test_an_audience_of_nobody_leaves_a_draft(database: Database, catalog: Catalog) -> None:
    seed(database)
    with database.session() as s:
        repos = Repos(s)
        draft = SERVICE.create(repos, "Thông báo", Audience(province="Sơn La"), [], "test")
        assert SERVICE.confirm(repos, catalog.kb, draft) == 0
        assert s.exec(select(Broadcast)).one().status == "draft"
        assert draft.confirmed_at is None
        assert SERVICE.preview(repos, catalog.kb, draft).sample is None


def test_a_bulk_queue_refreshes_the_planners_statistics(
    database: Database, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Else PostgreSQL believes the new pending rows rare and claims each one through the claim index
    instead of its primary key (~300 ms a message at a million pending)."""
    from sqlalchemy import text

    from storage import repositories

    seed(database)
    monkeypatch.setattr(repositories, "ANALYZE_AFTER_ROWS", 5)
    with database.session() as s:
        repos = Repos(s)
        draft = SERVICE.create(repos, "Thông báo", Audience(), [], "test")
        assert SERVICE.confirm(repos, catalog.kb, draft) == len(NAMES)
    if database.dialect == "postgresql":
        with database.engine.connect() as conn:
            estimated = conn.execute(
                text("SELECT reltuples FROM pg_class WHERE relname = 'outbox'")
            ).scalar_one()
        assert estimated >= len(NAMES)
