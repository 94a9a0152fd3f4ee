"""Loading and validating the knowledge base from its YAML files.

Layout under a data directory (default: ``knowledge/data``)::

    programmes/<id>.yaml   one support programme per file (file name = id)
    faq/<id>.yaml          one general question per file
    synonyms.yaml          synonym groups, chat abbreviations, filler words
    provinces.yaml         the 34 provincial units and the old names they absorbed
    places.yaml            old districts, towns, cities and everyday names, with their old province
    out_of_scope.yaml      neighbouring topics khuyến công does not cover, and who does
    contacts.yaml          one contact record per province, filled in by staff

``load_knowledge`` returns an immutable ``KnowledgeBase`` or raises ``KnowledgeError`` listing every
problem with its file, entry and field. Empty contact records are warnings, not errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from knowledge.deadlines import DeadlineSpec, parse_deadlines
from knowledge.models import (
    Category,
    Contact,
    Entry,
    Faq,
    OutOfScopeFile,
    OutOfScopeTopic,
    Programme,
    SynonymFile,
)
from knowledge.provinces import Provinces
from knowledge.yamlio import load_yaml

DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "data"
_ENTRY_ADAPTER: TypeAdapter[Programme | Faq] = TypeAdapter(Entry)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the knowledge files."""

    file: str
    entry: str | None
    field: str | None
    message: str

    @property
    def top_field(self) -> str:
        """The entry's field the problem is in: "levels" for "levels.0.cap_vnd" (a form's field)."""
        return re.split(r"[.\[]", self.field or "", maxsplit=1)[0]

    def __str__(self) -> str:
        where = self.file
        if self.entry:
            where += f" [entry {self.entry}]"
        if self.field:
            where += f" field '{self.field}'"
        return f"{where}: {self.message}"


class KnowledgeError(Exception):
    """The knowledge files have problems; ``problems`` lists each one."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class KnowledgeBase:
    """Every entry, the shared lists, and the warnings found while loading."""

    entries: tuple[Programme | Faq, ...]
    provinces: Provinces
    synonyms: SynonymFile
    contacts: dict[str, Contact]
    deadlines: tuple[DeadlineSpec, ...] = ()
    warnings: tuple[Problem, ...] = ()
    by_id: dict[str, Programme | Faq] = field(default_factory=dict)
    out_of_scope: tuple[OutOfScopeTopic, ...] = ()

    @property
    def programmes(self) -> list[Programme]:
        return [e for e in self.entries if isinstance(e, Programme)]

    def programme(self, entry_id: str | None) -> Programme | None:
        """The programme with this id; None for an unknown id or the id of an FAQ."""
        entry = self.by_id.get(entry_id) if entry_id else None
        return entry if isinstance(entry, Programme) else None

    def in_category(self, category: Category | str) -> list[Programme | Faq]:
        return [e for e in self.entries if e.category == category]

    def contact_for(self, province_name: str | None) -> Contact | None:
        return self.contacts.get(province_name) if province_name else None


class _Source:
    """The knowledge files, by path relative to the data directory: a folder, or a mapping of
    relative path -> YAML text (a stored knowledge version: no temporary folder is written)."""

    def __init__(self, folder: Path | None = None, files: Mapping[str, str] | None = None):
        self.folder, self.files = folder, files

    def exists(self, relative: str) -> bool:
        return relative in self.files if self.files is not None else (self._path(relative)).exists()

    def text(self, relative: str) -> str:
        if self.files is not None:
            if relative not in self.files:
                raise FileNotFoundError(f"No such file: '{relative}'")
            return self.files[relative]
        return self._path(relative).read_text(encoding="utf-8")

    def entry_files(self) -> list[str]:
        """programmes/*.yaml then faq/*.yaml, each folder's files by name."""
        if self.files is not None:
            return [
                path
                for folder in ("programmes", "faq")
                for path in sorted(self.files)
                if path.startswith(f"{folder}/") and path.count("/") == 1 and path.endswith(".yaml")
            ]
        return [
            path.relative_to(self._path("")).as_posix()
            for folder in ("programmes", "faq")
            for path in sorted(self._path(folder).glob("*.yaml"))
        ]

    def _path(self, relative: str) -> Path:
        assert self.folder is not None
        return self.folder / relative


def _read_yaml(source: _Source, relative: str, problems: list[Problem]) -> Any:
    try:
        return load_yaml(source.text(relative))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(Problem(relative.rsplit("/", 1)[-1], None, None, f"cannot read YAML: {exc}"))
        return None


def _field_path(loc: tuple[Any, ...]) -> str:
    # Drop the tagged-union discriminator names pydantic puts in the location.
    parts = [str(p) for p in loc if p not in ("programme", "faq")]
    return ".".join(parts) or "(entry)"


def _shared(value: Any, strings: dict[str, str]) -> Any:
    """``value`` (parsed YAML) with every text replaced by one shared copy of it: entries made for
    many provinces repeat the same legal basis, documents and steps, held once in memory."""
    if isinstance(value, str):
        return strings.setdefault(value, value)
    if isinstance(value, dict):
        return {_shared(k, strings): _shared(v, strings) for k, v in value.items()}
    if isinstance(value, list):
        return [_shared(v, strings) for v in value]
    return value


# The parts of an entry that many entries repeat word for word (the same decree, the same documents
# to prepare, the same criteria): each distinct one is held once, shared by the entries citing it.
_SHARED_PARTS = ("legal_basis", "documents", "criteria", "levels", "historical_levels")


def _frozen(value: Any) -> Any:
    """A hashable key for parsed YAML."""
    if isinstance(value, dict):
        return tuple((k, _frozen(v)) for k, v in value.items())
    if isinstance(value, list):
        return ("[", *(_frozen(v) for v in value))
    return value if isinstance(value, str) else (type(value).__name__, value)


def _share_parts(entry: Programme | Faq, raw: dict[str, Any], parts: dict[Any, Any]) -> None:
    """Replace each part of ``entry`` (validated from ``raw``) by the first equal one already loaded.
    The models are frozen, so sharing them is safe; equal YAML validates to equal parts."""
    for name in _SHARED_PARTS:
        items, given = getattr(entry, name, None), raw.get(name)
        if not items or not isinstance(given, list) or len(given) != len(items):
            continue
        try:
            keys = [(name, _frozen(item)) for item in given]
            shared = [parts.setdefault(key, item) for key, item in zip(keys, items, strict=True)]
        except TypeError:  # an unhashable value somewhere: keep this entry's own parts
            continue
        entry.__dict__[name] = shared


def _load_entries(source: _Source, problems: list[Problem]) -> list[Programme | Faq]:
    entries: list[Programme | Faq] = []
    strings: dict[str, str] = {}
    parts: dict[Any, Any] = {}
    for rel in source.entry_files():
        path = PurePosixPath(rel)
        raw = _read_yaml(source, rel, problems)
        if raw is None:
            continue
        if not isinstance(raw, dict):
            problems.append(Problem(rel, None, None, "the file must hold one entry (a mapping)"))
            continue
        entry_id = str(raw.get("id", path.stem))
        raw = _shared(raw, strings)
        try:
            entry = _ENTRY_ADAPTER.validate_python(raw)
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(Problem(rel, entry_id, _field_path(err["loc"]), err["msg"]))
            continue
        _share_parts(entry, raw, parts)
        if entry.id != path.stem:
            problems.append(Problem(rel, entry.id, "id", f"must equal the file name '{path.stem}'"))
        expected_dir = "faq" if isinstance(entry, Faq) else "programmes"
        if path.parent.name != expected_dir:
            problems.append(
                Problem(rel, entry.id, "kind", f"a {entry.kind} entry belongs in {expected_dir}/")
            )
        entries.append(entry)
    return entries


def _entry_file(entry: Programme | Faq) -> str:
    return f"{'faq' if isinstance(entry, Faq) else 'programmes'}/{entry.id}.yaml"


def _check_entries(
    entries: list[Programme | Faq], provinces: Provinces, today: date, problems: list[Problem]
) -> None:
    seen: dict[str, str] = {}
    names = set(provinces.names())
    for entry in entries:
        rel = _entry_file(entry)
        if entry.id in seen:
            problems.append(Problem(rel, entry.id, "id", f"duplicate id, also used in {seen[entry.id]}"))
        seen.setdefault(entry.id, rel)
        if entry.scope != "national" and entry.scope not in names:
            problems.append(
                Problem(
                    rel, entry.id, "scope", f"'{entry.scope}' is neither 'national' nor a current province"
                )
            )
        if entry.valid_to is not None and entry.valid_to < today:
            problems.append(
                Problem(
                    rel,
                    entry.id,
                    "valid_to",
                    f"entry expired on {entry.valid_to.isoformat()}; update it or remove the file",
                )
            )
        problems.extend(_legal_basis_problems(entry, rel))
    for entry in entries:
        for other in entry.related:
            if other not in seen:
                problems.append(
                    Problem(_entry_file(entry), entry.id, "related", f"unknown entry id '{other}'")
                )
    present = {e.category for e in entries}
    for category in Category:
        if category not in present:
            problems.append(
                Problem("(knowledge base)", None, "category", f"no entry in category '{category}'")
            )


# The kinds of legal document a "Căn cứ" line may cite; a news report or a centre's guide is a
# source (``source``, ``note``), not a legal basis.
LEGAL_DOCUMENT_KINDS = (
    "Luật", "Nghị quyết", "Nghị định", "Quyết định", "Thông tư liên tịch", "Thông tư", "Chỉ thị", "Công văn",
)  # fmt: skip


def _legal_basis_problems(entry: Programme | Faq, rel: str) -> list[Problem]:
    """Each legal document cited once, and only legal documents."""
    problems = []
    seen: set[str] = set()
    for i, basis in enumerate(entry.legal_basis):
        where = f"legal_basis[{i}].document"
        name = basis.document.split(" (")[0].strip()
        if name in seen:
            problems.append(Problem(rel, entry.id, where, f"'{name}' is cited twice: one item per document"))
        seen.add(name)
        if not basis.document.startswith(LEGAL_DOCUMENT_KINDS):
            problems.append(
                Problem(
                    rel, entry.id, where, "not a legal document (news and guides go in 'source' or 'note')"
                )
            )
    return problems


def _load_contacts(
    source: _Source, provinces: Provinces, problems: list[Problem], warnings: list[Problem]
) -> dict[str, Contact]:
    raw = _read_yaml(source, "contacts.yaml", problems) or {}
    contacts: dict[str, Contact] = {}
    for i, item in enumerate(raw.get("contacts", [])):
        try:
            contact = Contact.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(Problem("contacts.yaml", f"#{i + 1}", _field_path(err["loc"]), err["msg"]))
            continue
        if contact.province not in provinces.names():
            problems.append(Problem("contacts.yaml", contact.province, "province", "not a current province"))
            continue
        contacts[contact.province] = contact
    empty = [
        name
        for name in provinces.names()
        if (c := contacts.get(name)) is None or not (c.phone or c.address or c.email)
    ]
    if empty:
        warnings.append(
            Problem(
                "contacts.yaml",
                None,
                "phone",
                f"no contact filled in yet for {len(empty)} province(s): " + ", ".join(empty),
            )
        )
    return contacts


def _load_out_of_scope(
    source: _Source, entry_ids: set[str], problems: list[Problem]
) -> tuple[OutOfScopeTopic, ...]:
    if not source.exists("out_of_scope.yaml"):
        return ()
    raw = _read_yaml(source, "out_of_scope.yaml", problems) or {"topics": []}
    try:
        topics = OutOfScopeFile.model_validate(raw).topics
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(Problem("out_of_scope.yaml", None, _field_path(err["loc"]), err["msg"]))
        return ()
    seen: set[str] = set()
    for topic in topics:
        if topic.id in seen or topic.id in entry_ids:
            problems.append(Problem("out_of_scope.yaml", topic.id, "id", "duplicate id"))
        seen.add(topic.id)
        for related in topic.see_also:
            if related not in entry_ids:
                problems.append(Problem("out_of_scope.yaml", topic.id, "see_also", f"no entry '{related}'"))
    return tuple(topics)


def _load_places(source: _Source, provinces: Provinces, problems: list[Problem]) -> None:
    if not source.exists("places.yaml"):
        return
    raw = _read_yaml(source, "places.yaml", problems) or {}
    try:
        for problem in provinces.add_places(raw.get("places", []), raw.get("not_alone", [])):
            problems.append(Problem("places.yaml", None, "old_province", problem))
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(Problem("places.yaml", None, _field_path(err["loc"]), err["msg"]))


def _load_deadline_specs(
    source: _Source, provinces: Provinces, entry_ids: set[str], problems: list[Problem]
) -> list[DeadlineSpec]:
    if not source.exists("deadlines.yaml"):
        return []
    try:
        specs = parse_deadlines(load_yaml(source.text("deadlines.yaml")))
    except (ValueError, yaml.YAMLError) as exc:
        problems.append(Problem("deadlines.yaml", None, None, str(exc)))
        return []
    for spec in specs:
        if spec.province and spec.province not in provinces.names():
            problems.append(
                Problem(
                    "deadlines.yaml", spec.key, "province", f"'{spec.province}' is not a current province"
                )
            )
        if spec.programme and spec.programme not in entry_ids:
            problems.append(
                Problem("deadlines.yaml", spec.key, "programme", f"unknown entry id '{spec.programme}'")
            )
    return specs


def load_knowledge(data_dir: Path | None = None, today: date | None = None) -> KnowledgeBase:
    """Load and validate every knowledge file; raise ``KnowledgeError`` listing all problems."""
    return _load(_Source(folder=data_dir or DEFAULT_DATA_DIR), today)


def load_files(files: Mapping[str, str], today: date | None = None) -> KnowledgeBase:
    """``load_knowledge`` of knowledge files given as relative path -> YAML text."""
    return _load(_Source(files=files), today)


def _load(source: _Source, today: date | None) -> KnowledgeBase:
    today = today or date.today()
    problems: list[Problem] = []
    warnings: list[Problem] = []
    try:
        provinces = Provinces.parse(load_yaml(source.text("provinces.yaml")))
    except (OSError, ValidationError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise KnowledgeError([Problem("provinces.yaml", None, None, f"cannot load: {exc}")]) from exc
    _load_places(source, provinces, problems)
    synonyms = SynonymFile(groups=[])
    raw_syn = _read_yaml(source, "synonyms.yaml", problems)
    if raw_syn is not None:
        try:
            synonyms = SynonymFile.model_validate(raw_syn)
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(Problem("synonyms.yaml", None, _field_path(err["loc"]), err["msg"]))
    entries = _load_entries(source, problems)
    _check_entries(entries, provinces, today, problems)
    deadlines = _load_deadline_specs(source, provinces, {e.id for e in entries}, problems)
    contacts = _load_contacts(source, provinces, problems, warnings)
    out_of_scope = _load_out_of_scope(source, {e.id for e in entries}, problems)
    if problems:
        raise KnowledgeError(problems)
    return KnowledgeBase(
        entries=tuple(entries),
        provinces=provinces,
        synonyms=synonyms,
        contacts=contacts,
        deadlines=tuple(deadlines),
        warnings=tuple(warnings),
        by_id={e.id: e for e in entries},
        out_of_scope=out_of_scope,
    )
