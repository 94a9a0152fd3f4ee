"""The live knowledge base: versions in the database (each one every knowledge file, with who changed
it, when and why), the newest of which every process answers from. Publishing validates exactly as
``kb validate`` does; nothing invalid ever becomes live. Reverting publishes an old version again."""

from __future__ import annotations

from datetime import date
from typing import Any

import yaml

from knowledge.catalog import Catalog, catalog_of
from knowledge.files import KnowledgeFiles, entry_path, entry_text, load, read_folder
from knowledge.yamlio import load_yaml
from storage.repositories import Repos

MAX_REASON = 1000
CONTACTS_FILE = "contacts.yaml"


def live_files(repos: Repos) -> KnowledgeFiles:
    """The knowledge every process answers from: the newest version, or the seed files."""
    newest = repos.knowledge.newest()
    return dict(newest.files) if newest is not None else read_folder()


def publish(repos: Repos, files: KnowledgeFiles, by: str, reason: str, today: date | None = None) -> int:
    """Make ``files`` the live knowledge (raises ``KnowledgeError`` listing every problem); its id."""
    return publish_catalog(repos, files, by, reason, today)[0]


def publish_catalog(
    repos: Repos, files: KnowledgeFiles, by: str, reason: str, today: date | None = None
) -> tuple[int, Catalog]:
    """``publish``, also giving the catalog the files load into (for this process to answer from)."""
    catalog = catalog_of(load(files, today))
    version = repos.knowledge.add(files, by, reason.strip()[:MAX_REASON])
    assert version.id is not None
    return version.id, catalog


def revert(repos: Repos, version_id: int, by: str, today: date | None = None) -> int | None:
    """Publish an earlier version again (a new version: the history keeps both); None if unknown."""
    old = repos.knowledge.get(version_id)
    if old is None:
        return None
    return publish(repos, dict(old.files), by, f"quay lại phiên bản {version_id}", today)


def changed_files(before: KnowledgeFiles, after: KnowledgeFiles) -> list[str]:
    """The files a version changed (added, edited or removed), in order."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def with_entry(files: KnowledgeFiles, entry: dict[str, Any]) -> KnowledgeFiles:
    """``files`` with one entry (a dict in the knowledge format) written in its file."""
    return files | {entry_path(entry): entry_text(entry)}


def with_contact(files: KnowledgeFiles, contact: dict[str, str]) -> KnowledgeFiles:
    """``files`` with one province's contact record replaced (or added)."""
    original = files.get(CONTACTS_FILE, "contacts: []")
    header = "".join(line for line in original.splitlines(keepends=True)[:40] if line.startswith("#"))
    data = load_yaml(original) or {}
    records = [c for c in data.get("contacts", []) if c.get("province") != contact["province"]]
    position = next(
        (i for i, c in enumerate(data.get("contacts", [])) if c.get("province") == contact["province"]),
        len(records),
    )
    records.insert(position, contact)
    text = yaml.safe_dump({"contacts": records}, allow_unicode=True, sort_keys=False, width=100)
    return files | {CONTACTS_FILE: header + text}  # the guidance comments at the top are kept


def live_catalog(repos: Repos) -> tuple[int | None, Catalog | None]:
    """The newest version's id and catalog; (None, None) when only the seed files exist."""
    newest = repos.knowledge.newest_files()
    if newest is None:
        return None, None
    version, files = newest
    kb = load(files)
    del files, newest  # the texts go before the search index is built: a lower peak
    return version, catalog_of(kb)
