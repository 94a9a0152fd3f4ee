"""The knowledge base as a set of files (relative path -> YAML text): read from and written to a
folder, changed by importing entries (what ``kb export --json`` prints) or a folder or file in the
knowledge format, and loaded, validated exactly as ``kb validate`` does. This is the form in which
versions of the live knowledge are stored and moved between processes."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from knowledge.catalog import Catalog, catalog_of
from knowledge.loader import DEFAULT_DATA_DIR, KnowledgeBase, load_files
from knowledge.yamlio import load_yaml

KnowledgeFiles = dict[str, str]
ENTRY_FOLDERS = ("programmes", "faq")


class ImportProblem(ValueError):
    """What was given cannot be read as knowledge (before any validation of its content)."""


def read_folder(folder: Path = DEFAULT_DATA_DIR) -> KnowledgeFiles:
    return {
        path.relative_to(folder).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(folder.rglob("*.yaml"))
    }


def write_folder(files: KnowledgeFiles, folder: Path) -> None:
    for relative, text in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def load(files: KnowledgeFiles, today: date | None = None) -> KnowledgeBase:
    """Validate and load (raises ``KnowledgeError`` with every problem, as ``kb validate``)."""
    return load_files(files, today)


def load_catalog_of(files: KnowledgeFiles, today: date | None = None) -> Catalog:
    return catalog_of(load(files, today))


def entry_path(entry: dict[str, Any]) -> str:
    kind = str(entry.get("kind", "programme"))
    folder = "faq" if kind == "faq" else "programmes"
    return f"{folder}/{entry.get('id')}.yaml"


def entry_text(entry: dict[str, Any]) -> str:
    return yaml.safe_dump(_without_empty(entry), allow_unicode=True, sort_keys=False, width=100)


def _without_empty(value: Any) -> Any:
    """Exported entries carry every field; the files hold only those with a value."""
    if isinstance(value, dict):
        return {k: _without_empty(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


def with_entries(base: KnowledgeFiles, entries: list[dict[str, Any]]) -> KnowledgeFiles:
    """``base`` with its programmes and FAQs replaced by ``entries`` (deleted ones go)."""
    if not all(isinstance(e, dict) and e.get("id") for e in entries):
        raise ImportProblem("every entry must be a mapping with an id")
    kept = {path: text for path, text in base.items() if path.split("/", 1)[0] not in ENTRY_FOLDERS}
    return kept | {entry_path(e): entry_text(e) for e in entries}


def imported(path: Path, base: KnowledgeFiles) -> KnowledgeFiles:
    """The knowledge after importing ``path``: a JSON list of entries (``kb export --json``), a YAML
    file of one entry or a list of them (added or replaced), or a folder in the knowledge format
    (its files replace the same files; its programmes/ and faq/, when present, replace them whole)."""
    if path.is_dir():
        given = read_folder(path)
        if not given:
            raise ImportProblem(f"{path}: no .yaml files")
        replaced = {p.split("/", 1)[0] for p in given if p.split("/", 1)[0] in ENTRY_FOLDERS}
        kept = {p: t for p, t in base.items() if p.split("/", 1)[0] not in replaced}
        return kept | given
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ImportProblem(f"{path}: {exc.strerror}") from exc
    if path.suffix == ".json":
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImportProblem(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from exc
        if not isinstance(entries, list):
            raise ImportProblem(f"{path}: expected a list of entries")
        return with_entries(base, entries)
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ImportProblem(f"{path}: not YAML ({exc})") from exc
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(e, dict) and e.get("id") for e in items):
        raise ImportProblem(f"{path}: expected an entry (a mapping with an id) or a list of them")
    return base | {entry_path(e): entry_text(e) for e in items}
