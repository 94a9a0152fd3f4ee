"""The live knowledge base: versions in the database (each one every knowledge file, with who changed
it, when and why), the newest of which every process answers from. Publishing validates exactly as
``kb validate`` does; nothing invalid ever becomes live. Reverting publishes an old version again."""

from __future__ import annotations

from datetime import date

from knowledge.catalog import Catalog
from knowledge.files import KnowledgeFiles, load, load_catalog_of, read_folder
from storage.repositories import Repos

MAX_REASON = 1000


def live_files(repos: Repos) -> KnowledgeFiles:
    """The knowledge every process answers from: the newest version, or the seed files."""
    newest = repos.knowledge.newest()
    return dict(newest.files) if newest is not None else read_folder()


def publish(repos: Repos, files: KnowledgeFiles, by: str, reason: str, today: date | None = None) -> int:
    """Make ``files`` the live knowledge (raises ``KnowledgeError`` listing every problem); its id."""
    load(files, today)
    version = repos.knowledge.add(files, by, reason.strip()[:MAX_REASON])
    assert version.id is not None
    return version.id


def revert(repos: Repos, version_id: int, by: str, today: date | None = None) -> int | None:
    """Publish an earlier version again (a new version: the history keeps both); None if unknown."""
    old = repos.knowledge.get(version_id)
    if old is None:
        return None
    return publish(repos, dict(old.files), by, f"quay lại phiên bản {version_id}", today)


def live_catalog(repos: Repos) -> tuple[int | None, Catalog | None]:
    """The newest version's id and catalog; (None, None) when only the seed files exist."""
    newest = repos.knowledge.newest()
    if newest is None:
        return None, None
    return newest.id, load_catalog_of(dict(newest.files))
