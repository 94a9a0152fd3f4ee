"""The learning queue: grouping by similar wording (deterministic), counting, province scope, and the
three ways staff resolve a group through the live knowledge (each validated and audited)."""

from __future__ import annotations

import pytest

from knowledge.files import load_catalog_of
from knowledge.text import fold
from services import knowledge, learning
from services.staff_scope import Scope
from storage.db import Database
from storage.models import saved_id
from storage.repositories import Repos

UNSURE = "xin hỗ trợ làm tem truy xuất nguồn gốc"
STAFF = "dashboard:admin"


def test_similar_wordings_join_one_group_and_others_start_their_own() -> None:
    heads = [("g1", fold("xin ho tro lam tem truy xuat nguon goc"))]
    assert learning.choose_group(fold("Xin hỗ trợ làm tem truy xuất nguồn gốc ạ"), heads) == "g1"
    assert learning.choose_group(fold("hỗ trợ làm tem truy xuất nguồn gốc"), heads) == "g1"
    other = learning.choose_group(fold("muốn làm kho lạnh bảo quản hàng"), heads)
    assert other != "g1" and other == learning.group_key(fold("muốn làm kho lạnh bảo quản hàng"))


def test_a_few_shared_words_do_not_swallow_a_longer_question() -> None:
    heads = [("g1", fold("hỗ trợ"))]
    assert learning.choose_group(fold("hỗ trợ làm tem truy xuất nguồn gốc cho hũ mắm"), heads) != "g1"


def test_the_key_is_stable_and_the_most_similar_group_wins() -> None:
    a, b = fold("xin tien lam nha kho chung"), fold("xin tien lam nha kho lanh")
    assert learning.group_key("b a c a") == "a b c"
    assert learning.choose_group(fold("xin tien lam nha kho lanh"), [("a", a), ("b", b)]) == "b"
    assert learning.choose_group(fold("xin tien lam nha kho lanh"), [("b", b), ("a", a)]) == "b"


def _queue(repos: Repos, texts: list[tuple[str, str | None]], source: str = learning.NOT_CONFIDENT) -> None:
    for i, (text, province) in enumerate(texts):
        user = repos.users.get_or_create("telegram", f"u{i}-{province}", "Anh Ba")
        learning.note(repos, text, source, saved_id(user), province)


def test_groups_are_counted_most_asked_first_and_scoped_to_a_province(database: Database) -> None:
    with database.unit() as repos:
        _queue(
            repos,
            [
                ("muốn làm kho lạnh bảo quản hàng", "Hà Nội"),
                (UNSURE, "Hà Nội"),
                ("Xin hỗ trợ làm tem truy xuất nguồn gốc ạ", "Đắk Lắk"),
                ("xin ho tro lam tem truy xuat nguon goc", None),
            ],
        )
        learning.note(repos, "   ", learning.ASK_STAFF, None, None)  # nothing to learn from
    with database.unit() as repos:
        groups = learning.open_groups(repos, Scope())
        assert [g.count for g in groups] == [3, 1]
        assert groups[0].sources == {"not_confident": 3}
        assert len(groups[0].examples) == 2  # "... nguồn gốc" and "... nguồn gốc ạ"
        local = learning.open_groups(repos, Scope(province="Hà Nội"))
        assert sorted(g.count for g in local) == [1, 1]
        assert learning.open_groups(repos, Scope(province="Huế")) == []


def test_a_thumbs_down_queues_its_question_once_and_a_thumbs_up_does_not(database: Database) -> None:
    with database.unit() as repos:
        user_id = saved_id(repos.users.get_or_create("zalo", "z1", "Chị Hoa"))
        learning.feedback(repos, user_id, "branding-trademark", UNSURE, True, None)
        assert learning.open_groups(repos, Scope()) == []
        learning.feedback(repos, user_id, "branding-trademark", UNSURE, False, None)
        learning.feedback(repos, user_id, "branding-trademark", UNSURE, False, None)
        [group] = learning.open_groups(repos, Scope())
        assert group.count == 1 and group.sources == {"unhelpful": 1}
        assert group.entries == ("branding-trademark",)
        [vote] = repos.feedback.for_entry("branding-trademark")
        assert not vote.helpful


def test_a_phrasing_makes_the_question_confident_and_resolves_the_group(database: Database) -> None:
    with database.unit() as repos:
        _queue(repos, [(UNSURE, None)])
    with database.unit() as repos:
        before = load_catalog_of(knowledge.live_files(repos))
        assert learning.answered_now(before, UNSURE) is None
        [group] = learning.open_groups(repos, Scope())
        learning.add_phrasing(repos, group, "branding-trademark", Scope(), STAFF)
    with database.unit() as repos:
        files = knowledge.live_files(repos)
        assert UNSURE in files["programmes/branding-trademark.yaml"]
        assert files["programmes/branding-trademark.yaml"].startswith("#")  # comments kept
        catalog = load_catalog_of(files)
        assert learning.answered_now(catalog, UNSURE) == catalog.kb.by_id["branding-trademark"].title
        assert learning.open_groups(repos, Scope()) == []
        [done] = learning.resolved_groups(repos, Scope())
        assert (done.kind, done.target, done.by) == ("phrasing", "branding-trademark", STAFF)
        [action] = repos.staff_actions.newest(5)
        assert action.action == "learning_resolve" and action.actor == STAFF
        assert "hàng chờ học" in (repos.knowledge.newest() or pytest.fail()).reason


def test_a_new_faq_is_validated_and_published(database: Database) -> None:
    with database.unit() as repos:
        _queue(
            repos, [("muốn làm kho lạnh bảo quản hàng", "Hà Nội"), ("muon lam kho lanh bao quan hang", None)]
        )
    with database.unit() as repos:
        [group] = learning.open_groups(repos, Scope())
        bad = learning.FaqDraft(id="how-to-apply", title="Kho lạnh", answer="", legal_basis="Nghị định 45")
        with pytest.raises(learning.Refused) as refused:
            learning.new_faq(repos, group, bad, Scope(), STAFF)
        assert refused.value.errors["id"] == ["id_taken"]
        assert "required" in refused.value.errors["answer"]
        assert "basis_format" in refused.value.errors["legal_basis"]
        draft = learning.FaqDraft(
            id="cold-storage",
            title="Làm kho lạnh bảo quản hàng có được hỗ trợ không?",
            answer="Dạ, kho lạnh bảo quản hàng thường không thuộc khuyến công; anh/chị hỏi Trung tâm.",
            legal_basis="Nghị định 45/2012/NĐ-CP về khuyến công | thuvienphapluat.vn",
            keywords="kho lạnh, kho lanh, bảo quản",
        )
        learning.new_faq(repos, group, draft, Scope(), STAFF)
    with database.unit() as repos:
        catalog = load_catalog_of(knowledge.live_files(repos))
        assert catalog.kb.by_id["cold-storage"].title.startswith("Làm kho lạnh")
        assert (
            learning.answered_now(catalog, "muon lam kho lanh bao quan hang")
            == catalog.kb.by_id["cold-storage"].title
        )


def test_a_validator_problem_is_reported_beside_its_field(database: Database) -> None:
    with database.unit() as repos:
        _queue(repos, [("muốn làm kho lạnh bảo quản hàng", None)])
        [group] = learning.open_groups(repos, Scope())
        draft = learning.FaqDraft(
            id="Kho Lanh!", title="Kho lạnh?", answer="ngắn", legal_basis="Báo Nông thôn | nongthon.vn"
        )
        with pytest.raises(learning.Refused) as refused:
            learning.new_faq(repos, group, draft, Scope(), STAFF)
        assert {"id", "answer", "keywords"} <= set(refused.value.errors)
        assert learning.open_groups(repos, Scope())[0].count == 1  # still open


def test_out_of_scope_adds_a_topic_with_its_reply(database: Database) -> None:
    with database.unit() as repos:
        _queue(repos, [("giá vé máy bay đi Đà Nẵng tuần sau", None), ("gia ve may bay di da nang", None)])
    with database.unit() as repos:
        [group] = learning.open_groups(repos, Scope())
        draft = learning.TopicDraft(
            id="air-tickets",
            title="Giá vé máy bay, đi lại",
            answer="Dạ, khuyến công không hỗ trợ vé máy bay, đi lại; anh/chị hỏi hãng bay hoặc đại lý vé ạ.",
            handled_by="Các hãng hàng không, đại lý vé",
            keywords="vé máy bay, ve may bay",
        )
        learning.out_of_scope(repos, group, draft, STAFF)
    with database.unit() as repos:
        files = knowledge.live_files(repos)
        assert files["out_of_scope.yaml"].startswith("# Out-of-scope topics")
        catalog = load_catalog_of(files)
        assert (
            learning.answered_now(catalog, "giá vé máy bay đi Đà Nẵng tuần sau") == "Giá vé máy bay, đi lại"
        )
