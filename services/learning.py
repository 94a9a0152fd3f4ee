"""The learning loop: every message the bot could not answer well lands in a queue, grouped by
similar wording and counted, for staff to turn into knowledge (``/unanswered``).

Three sources: a free question the search was not confident about (``not_confident``), a question
handed to staff ("Hỏi cán bộ", ``ask_staff``), an answer the producer marked 👎 (``unhelpful``).

Grouping is deterministic: a new item joins the open group whose first item's folded wording is the
most similar (rapidfuzz ``token_set_ratio`` at least ``SIMILAR``, and neither wording more than
twice as many words as the other, so "hỗ trợ" alone does not swallow every question); otherwise it
starts a group of its own, keyed by its sorted distinct words.

Staff resolve a whole group in one of three ways, each published as a new version of the live
knowledge (``services.knowledge.publish``, validated as ``kb validate``) and recorded in the audit
log: (a) its wording becomes a phrasing of an existing entry, (b) a new FAQ answers it, (c) it is a
topic khuyến công does not cover (a topic in ``out_of_scope.yaml`` with its reply).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePosixPath
from typing import Any

import yaml
from rapidfuzz import fuzz

from knowledge.catalog import Catalog
from knowledge.files import ENTRY_FOLDERS, KnowledgeFiles, entry_path, entry_text
from knowledge.loader import KnowledgeError
from knowledge.models import Category
from knowledge.text import fold
from knowledge.yamlio import load_yaml
from services import audit, knowledge
from services.staff_scope import Scope
from storage.models import AnswerFeedback, LearningItem, utcnow
from storage.repositories import Repos

NOT_CONFIDENT = "not_confident"
ASK_STAFF = "ask_staff"
UNHELPFUL = "unhelpful"
SOURCES = (NOT_CONFIDENT, ASK_STAFF, UNHELPFUL)

SIMILAR = 90  # token_set_ratio of the folded wordings, 0-100
MAX_WORDS_RATIO = 2.0
OPEN_GROUPS_COMPARED = 500
MAX_TEXT = 1000
MAX_KEY = 200
EXAMPLES_SHOWN = 3
OUT_OF_SCOPE_FILE = "out_of_scope.yaml"

# What staff did with a group (the ``resolution`` of its items is "<kind>:<id>").
PHRASING = "phrasing"
NEW_FAQ = "faq"
OUT_OF_SCOPE = "out_of_scope"


# --- grouping ---


def group_key(folded: str) -> str:
    """A group's key: the distinct words of its first wording, sorted."""
    return " ".join(sorted(set(folded.split())))[:MAX_KEY] or "-"


def similar(a: str, b: str) -> float:
    """How alike two folded wordings are (0-100); 0 when one has over twice the words of the other."""
    wa, wb = len(set(a.split())), len(set(b.split()))
    if not wa or not wb or max(wa, wb) > MAX_WORDS_RATIO * min(wa, wb):
        return 0.0
    return float(fuzz.token_set_ratio(a, b))


def choose_group(folded: str, heads: list[tuple[str, str]]) -> str:
    """The key of the open group ``folded`` joins: the most similar head at or above ``SIMILAR``
    (the oldest on a tie), else a new group's key."""
    best: tuple[float, str] | None = None
    for key, head in heads:
        score = similar(folded, head)
        if score >= SIMILAR and (best is None or score > best[0]):
            best = (score, key)
    return best[1] if best is not None else group_key(folded)


def note(
    repos: Repos,
    text: str,
    source: str,
    user_id: int | None,
    province: str | None,
    entry_id: str | None = None,
) -> LearningItem | None:
    """Put one message in the queue (None when it has no words to learn from)."""
    assert source in SOURCES
    typed = text.strip()[:MAX_TEXT]
    folded = fold(typed)
    if not folded:
        return None
    key = choose_group(folded, repos.learning.open_group_heads(OPEN_GROUPS_COMPARED))
    item = LearningItem(
        text=typed,
        folded=folded,
        source=source,
        entry_id=entry_id,
        user_id=user_id,
        province=province,
        group_key=key,
    )
    return repos.learning.add(item)


def feedback(
    repos: Repos, user_id: int, entry_id: str, question: str, helpful: bool, province: str | None
) -> AnswerFeedback:
    """A 👍 or 👎 under an answer. The same producer's vote on the same answer is changed, not added;
    a 👎 puts the question in the queue (once)."""
    question = question.strip()[:MAX_TEXT]
    row = repos.feedback.find(user_id, entry_id, question)
    queued_before = row is not None and not row.helpful
    if row is None:
        row = AnswerFeedback(user_id=user_id, entry_id=entry_id, question=question, helpful=helpful)
    row.helpful, row.created_at = helpful, utcnow()
    repos.feedback.save(row)
    if not helpful and not queued_before and question:
        note(repos, question, UNHELPFUL, user_id, province, entry_id)
    return row


# --- the groups staff see ---


@dataclass(frozen=True)
class Group:
    key: str
    count: int
    examples: tuple[str, ...]
    sources: dict[str, int]
    entries: tuple[str, ...]  # ids of the entries shown to those who asked
    newest_at: datetime
    items: tuple[int, ...]


@dataclass(frozen=True)
class Resolved:
    key: str
    example: str
    kind: str
    target: str
    by: str
    at: datetime
    count: int


def _group(key: str, items: list[LearningItem]) -> Group:
    examples: list[str] = []
    seen: set[str] = set()
    for item in sorted(items, key=lambda i: -(i.id or 0)):
        if item.folded not in seen and len(examples) < EXAMPLES_SHOWN:
            seen.add(item.folded)
            examples.append(item.text)
    entries = sorted({i.entry_id for i in items if i.entry_id})
    return Group(
        key=key,
        count=len(items),
        examples=tuple(examples),
        sources=dict(Counter(i.source for i in items)),
        entries=tuple(entries),
        newest_at=max(i.created_at for i in items),
        items=tuple(sorted(i.id for i in items if i.id is not None)),
    )


def open_groups(repos: Repos, scope: Scope) -> list[Group]:
    """The open groups within ``scope`` (a province account: items from its province's producers),
    the most asked first, then the newest."""
    by_key: dict[str, list[LearningItem]] = {}
    for item in repos.learning.open_items(scope.province):
        by_key.setdefault(item.group_key, []).append(item)
    groups = [_group(key, items) for key, items in by_key.items()]
    return sorted(groups, key=lambda g: (-g.count, -g.newest_at.timestamp(), g.key))


def find_group(repos: Repos, scope: Scope, key: str) -> Group | None:
    items = repos.learning.open_group(key, scope.province)
    return _group(key, items) if items else None


def resolved_groups(repos: Repos, scope: Scope, limit: int = 20) -> list[Resolved]:
    """Groups resolved lately (newest first), one line each."""
    seen: dict[tuple[str, str], list[LearningItem]] = {}
    for item in repos.learning.recently_resolved(limit * 10, scope.province):
        assert item.resolved_at is not None
        seen.setdefault((item.group_key, item.resolved_at.isoformat()), []).append(item)
    out = []
    for (key, _), items in list(seen.items())[:limit]:
        first = min(items, key=lambda i: i.id or 0)
        kind, _, target = (first.resolution or "").partition(":")
        assert first.resolved_at is not None
        out.append(
            Resolved(key, first.text, kind, target, first.resolved_by or "", first.resolved_at, len(items))
        )
    return out


def answered_now(catalog: Catalog, text: str, province: str | None = None) -> str | None:
    """The title of what the live search now answers ``text`` with: a confident entry, or an
    out-of-scope topic; None when it is still unsure."""
    result = catalog.index.search(text, province=province)
    if result.out_of_scope is not None:
        topic = next((t for t in catalog.kb.out_of_scope if t.id == result.out_of_scope.id), None)
        return topic.title if topic is not None else result.out_of_scope.title
    if result.confident and result.matches:
        return catalog.kb.by_id[result.matches[0].id].title
    return None


# --- resolving a group ---


class Refused(ValueError):
    """The change cannot be made: ``errors`` maps a form field (or "" for the whole form) to what is
    wrong, either a code the page words (``id_taken``, ``required``...) or the validator's message."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def _entry_file(files: KnowledgeFiles, entry_id: str) -> str | None:
    for path in files:
        parts = PurePosixPath(path)
        if parts.parts[0] in ENTRY_FOLDERS and parts.suffix == ".yaml" and parts.stem == entry_id:
            return path
    return None


def with_phrasing(text: str, phrasing: str) -> str:
    """An entry file's text with ``phrasing`` appended to its ``questions`` list; the rest of the file,
    comments included, as it was."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(r"questions:\s*$", line)), None)
    if start is None:
        data = load_yaml(text)
        data["questions"] = [*(data.get("questions") or []), phrasing]
        return entry_text(data)
    end = start + 1
    while end < len(lines) and (lines[end].startswith((" ", "\t", "-")) or not lines[end].strip()):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    item = lines[start + 1].split("-", 1)[0] if start + 1 < len(lines) else "  "
    added = f"{item}- {json.dumps(phrasing, ensure_ascii=False)}\n"
    if end > 0 and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    return "".join([*lines[:end], added, *lines[end:]])


def _publish(repos: Repos, files: KnowledgeFiles, by: str, reason: str, today: date | None) -> int:
    try:
        return knowledge.publish(repos, files, by, reason, today)
    except KnowledgeError as exc:
        errors: dict[str, list[str]] = {}
        for problem in exc.problems:
            errors.setdefault(problem.top_field, []).append(problem.message)
        raise Refused(errors) from exc


def _resolve(repos: Repos, group: Group, kind: str, target: str, by: str, details: str) -> None:
    items = repos.learning.open_group(group.key)
    items = [i for i in items if i.id in set(group.items)]
    repos.learning.resolve(items, f"{kind}:{target}", by, utcnow())
    audit.record(repos, by, audit.LEARNING_RESOLVE, "learning", group.items[0], f"{kind} {target}: {details}")


def add_phrasing(
    repos: Repos, group: Group, entry_id: str, scope: Scope, by: str, today: date | None = None
) -> int:
    """(a) The group's wordings become phrasings of ``entry_id`` (new ones only); the version id.
    A province account may add them to national entries and its own province's."""
    files = knowledge.live_files(repos)
    path = _entry_file(files, entry_id.strip())
    if path is None:
        raise Refused({"entry_id": ["unknown_entry"]})
    text = files[path]
    data = load_yaml(text) or {}
    if scope.province is not None and data.get("scope", "national") not in ("national", scope.province):
        raise Refused({"entry_id": ["unknown_entry"]})
    known = {fold(q) for q in data.get("questions") or []}
    for example in group.examples:
        if fold(example) not in known:
            text = with_phrasing(text, example)
            known.add(fold(example))
    version = _publish(repos, files | {path: text}, by, f"hàng chờ học: thêm cách hỏi vào {entry_id}", today)
    _resolve(repos, group, PHRASING, entry_id, by, group.examples[0])
    return version


@dataclass
class FaqDraft:
    """What staff typed in the "new FAQ" form (kept as typed when it is refused)."""

    id: str = ""
    title: str = ""
    answer: str = ""
    legal_basis: str = ""  # one line per document: "Văn bản | nguồn"
    keywords: str = ""  # comma separated
    category: str = str(Category.GENERAL)


def _basis(lines: str) -> tuple[list[dict[str, str]], list[str]]:
    basis, errors = [], []
    for line in (x.strip() for x in lines.splitlines()):
        if not line:
            continue
        document, _, source = (p.strip() for p in line.partition("|"))
        if not source:
            errors.append("basis_format")
            continue
        basis.append({"document": document, "source": source})
    return basis, errors


def suggested_keywords(group: Group) -> str:
    words = Counter(w for e in group.examples for w in fold(e).split() if len(w) > 2)
    return ", ".join(w for w, _ in words.most_common(5))


def new_faq(
    repos: Repos, group: Group, draft: FaqDraft, scope: Scope, by: str, today: date | None = None
) -> int:
    """(b) A new FAQ written from the group (a province account's is of its province); the version id."""
    errors: dict[str, list[str]] = {}
    for name in ("id", "title", "answer", "legal_basis"):
        if not getattr(draft, name).strip():
            errors.setdefault(name, []).append("required")
    basis, basis_errors = _basis(draft.legal_basis)
    if basis_errors:
        errors.setdefault("legal_basis", []).extend(basis_errors)
    files = knowledge.live_files(repos)
    entry_id = draft.id.strip()
    if entry_id and _entry_file(files, entry_id) is not None:
        errors.setdefault("id", []).append("id_taken")
    if draft.category not in {str(c) for c in Category}:
        errors.setdefault("category", []).append("required")
    if errors:
        raise Refused(errors)
    keywords = [k.strip() for k in draft.keywords.split(",") if k.strip()]
    questions = list(dict.fromkeys([*group.examples, draft.title.strip()]))
    entry: dict[str, Any] = {
        "id": entry_id,
        "kind": "faq",
        "category": draft.category,
        "title": draft.title.strip(),
        "scope": scope.province or "national",
        "valid_from": (today or date.today()).isoformat(),
        "legal_basis": basis,
        "questions": questions,
        "keywords": keywords,
        "answer": draft.answer.strip(),
    }
    text = entry_text(entry)
    version = _publish(
        repos, files | {entry_path(entry): text}, by, f"hàng chờ học: câu hỏi mới {entry_id}", today
    )
    _resolve(repos, group, NEW_FAQ, entry_id, by, draft.title.strip())
    return version


@dataclass
class TopicDraft:
    """The "out of scope" form: the reply and who does handle the topic."""

    id: str = ""
    title: str = ""
    answer: str = ""
    handled_by: str = ""
    keywords: str = ""


def out_of_scope(repos: Repos, group: Group, draft: TopicDraft, by: str, today: date | None = None) -> int:
    """(c) The group is a topic khuyến công does not cover: added to ``out_of_scope.yaml`` with the
    reply staff wrote and the group's wordings as its questions; the version id."""
    errors: dict[str, list[str]] = {}
    for name in ("id", "title", "answer", "handled_by"):
        if not getattr(draft, name).strip():
            errors.setdefault(name, []).append("required")
    files = knowledge.live_files(repos)
    current = files.get(OUT_OF_SCOPE_FILE, "topics:\n")
    data = load_yaml(current) or {}
    if any(t.get("id") == draft.id.strip() for t in data.get("topics") or []):
        errors.setdefault("id", []).append("id_taken")
    if errors:
        raise Refused(errors)
    questions = list(dict.fromkeys([*group.examples, draft.title.strip()]))
    topic_id, title = draft.id.strip(), draft.title.strip()
    topic: dict[str, Any] = {
        "id": topic_id,
        "title": draft.title.strip(),
        "answer": draft.answer.strip(),
        "handled_by": draft.handled_by.strip(),
        "questions": questions,
        "keywords": [k.strip() for k in draft.keywords.split(",") if k.strip()],
    }
    added = yaml.safe_dump([topic], allow_unicode=True, sort_keys=False, width=100)
    text = current if current.endswith("\n") else current + "\n"
    text += "".join(f"  {line}\n" for line in added.splitlines())
    version = _publish(
        repos, files | {OUT_OF_SCOPE_FILE: text}, by, f"hàng chờ học: ngoài phạm vi {topic_id}", today
    )
    _resolve(repos, group, OUT_OF_SCOPE, topic_id, by, title)
    return version
