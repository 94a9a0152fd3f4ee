"""The knowledge as files: what ``kb export --json`` prints imports back to the same knowledge, an
entry file adds or replaces one entry, a folder replaces what it holds, and junk is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge import files
from knowledge.loader import KnowledgeError, load_knowledge


def exported() -> list[dict[str, object]]:
    return [entry.model_dump(mode="json") for entry in load_knowledge().entries]


def test_an_export_imports_back_to_the_same_knowledge(tmp_path: Path) -> None:
    path = tmp_path / "kb.json"
    path.write_text(json.dumps(exported(), ensure_ascii=False), encoding="utf-8")
    again = files.load(files.imported(path, files.read_folder()))
    assert sorted((e.model_dump(mode="json") for e in again.entries), key=lambda e: str(e["id"])) == sorted(
        exported(), key=lambda e: str(e["id"])
    )


def test_an_entry_file_replaces_that_entry_only(tmp_path: Path) -> None:
    entry = next(e for e in exported() if e["id"] == "machinery-national")
    entry["short_answer"] = "Dạ, có. Mức hỗ trợ mới: tối đa 50% chi phí máy móc."
    path = tmp_path / "machinery-national.yaml"
    path.write_text(files.entry_text(entry), encoding="utf-8")
    kb = files.load(files.imported(path, files.read_folder()))
    assert len(kb.entries) == len(exported())
    assert kb.by_id["machinery-national"].short_answer == entry["short_answer"]


def test_a_folder_replaces_the_entries_it_holds(tmp_path: Path) -> None:
    base = files.read_folder()
    kept = {p: t for p, t in base.items() if p != "faq/designated-energy-users.yaml"}
    files.write_folder(kept, tmp_path)
    kb = files.load(files.imported(tmp_path, base))
    assert "designated-energy-users" not in kb.by_id  # deleted in the folder: deleted in the knowledge


@pytest.mark.parametrize(
    ("name", "text"),
    [("kb.json", "{not json"), ("kb.json", '{"id": "x"}'), ("x.yaml", "- 1\n- 2\n"), ("x.yaml", ": : :")],
)
def test_what_is_not_knowledge_is_refused(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(files.ImportProblem):
        files.imported(path, files.read_folder())


def test_invalid_content_fails_as_kb_validate_does(tmp_path: Path) -> None:
    entry = next(e for e in exported() if e["id"] == "machinery-national")
    entry["legal_basis"] = []
    path = tmp_path / "machinery-national.yaml"
    path.write_text(files.entry_text(entry), encoding="utf-8")
    with pytest.raises(KnowledgeError) as refused:
        files.load(files.imported(path, files.read_folder()))
    assert any(p.entry == "machinery-national" for p in refused.value.problems)
