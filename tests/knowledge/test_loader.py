"""Loading the knowledge base: the real data is valid, and each kind of mistake is named precisely."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from knowledge.loader import DEFAULT_DATA_DIR, KnowledgeError, load_knowledge
from knowledge.models import Category, Programme

TODAY = date(2026, 11, 23)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DEFAULT_DATA_DIR, target)
    return target


def _edit(path: Path, **changes: object) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")


def _problems(data_dir: Path) -> list[str]:
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(data_dir, TODAY)
    return [str(p) for p in info.value.problems]


def test_real_knowledge_base_is_valid_and_covers_every_category() -> None:
    kb = load_knowledge(today=TODAY)
    assert {e.category for e in kb.entries} == set(Category)
    for category in Category:
        if category != Category.GENERAL:
            assert any(isinstance(e, Programme) for e in kb.in_category(category)), category


def test_programme_is_found_by_id_and_an_faq_is_not_one() -> None:
    kb = load_knowledge(today=TODAY)
    programme = kb.programmes[0]
    faq = next(e for e in kb.entries if not isinstance(e, Programme))
    assert kb.programme(programme.id) is programme
    assert kb.programme(faq.id) is None
    assert kb.programme("no-such-id") is None
    assert kb.programme(None) is None


def test_every_entry_cites_a_legal_basis_with_a_source() -> None:
    for entry in load_knowledge(today=TODAY).entries:
        assert entry.legal_basis, entry.id
        assert all(b.source and b.document for b in entry.legal_basis), entry.id


def test_empty_contacts_are_warnings_not_errors() -> None:
    kb = load_knowledge(today=TODAY)
    assert any(w.file == "contacts.yaml" for w in kb.warnings)


def test_unknown_field_is_named(data_dir: Path) -> None:
    _edit(data_dir / "programmes" / "machinery-national.yaml", sumary="typo")
    problems = _problems(data_dir)
    assert any(
        "programmes/machinery-national.yaml" in p and "machinery-national" in p and "sumary" in p
        for p in problems
    ), problems


def test_unknown_category_is_named(data_dir: Path) -> None:
    _edit(data_dir / "programmes" / "machinery-national.yaml", category="machines")
    problems = _problems(data_dir)
    assert any("machinery-national" in p and "'category'" in p for p in problems), problems


def test_missing_legal_basis_is_named(data_dir: Path) -> None:
    _edit(data_dir / "programmes" / "machinery-national.yaml", legal_basis=None)
    problems = _problems(data_dir)
    assert any("machinery-national" in p and "legal_basis" in p for p in problems), problems


def test_duplicate_id_is_named(data_dir: Path) -> None:
    source = data_dir / "programmes" / "machinery-national.yaml"
    copy = data_dir / "programmes" / "machinery-copy.yaml"
    shutil.copy(source, copy)
    problems = _problems(data_dir)
    assert any("machinery-copy.yaml" in p and "'id'" in p for p in problems), problems


def test_expired_entry_is_named(data_dir: Path) -> None:
    _edit(data_dir / "programmes" / "machinery-national.yaml", valid_to="2026-01-31")
    problems = _problems(data_dir)
    assert any("machinery-national" in p and "valid_to" in p and "expired" in p for p in problems), problems


def test_unknown_scope_and_related_are_named(data_dir: Path) -> None:
    _edit(data_dir / "programmes" / "machinery-national.yaml", scope="Hòa Bình", related=["no-such-entry"])
    problems = _problems(data_dir)
    assert any("'scope'" in p and "Hòa Bình" in p for p in problems), problems
    assert any("'related'" in p and "no-such-entry" in p for p in problems), problems


def test_unconfirmed_levels_need_a_note(data_dir: Path) -> None:
    _edit(data_dir / "programmes" / "machinery-national.yaml", levels=[], level_note=None)
    problems = _problems(data_dir)
    assert any("machinery-national" in p and "level_note" in p for p in problems), problems


def test_broken_yaml_is_named(data_dir: Path) -> None:
    (data_dir / "faq" / "broken.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    problems = _problems(data_dir)
    assert any("broken.yaml" in p and "YAML" in p for p in problems), problems


def test_a_legal_document_cited_twice_or_a_news_report_as_legal_basis_is_named(data_dir: Path) -> None:
    path = data_dir / "programmes" / "machinery-national.yaml"
    basis = yaml.safe_load(path.read_text(encoding="utf-8"))["legal_basis"]
    news = {"document": "Báo Công Thương: tỉnh hỗ trợ máy móc", "source": "https://example.vn/tin"}
    _edit(path, legal_basis=[*basis, basis[0], news])
    problems = _problems(data_dir)
    assert any("cited twice" in p and "machinery-national" in p for p in problems), problems
    assert any("not a legal document" in p for p in problems), problems
