"""Editing the live knowledge on the dashboard: the list of entries, one entry's form (plain fields,
lists one per line, structured parts as YAML), a province's contact record, the synonyms and
out-of-scope files, and the versions with what each changed and a revert. Every save is validated
exactly as ``kb validate`` does (problems shown beside their field, the text kept), published as a
new version with who and why, and answered from at once in this process (the others within
KNOWLEDGE_CHECK_SECONDS). Province staff edit only their province's local programmes and contacts."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response

from bot.dashboard.pages import (
    Staff,
    StaffForm,
    UnitOfWork,
    actor,
    after_commit,
    form_text,
    labels,
    not_found,
    page,
    redirect,
    scope,
    services,
)
from knowledge.files import KnowledgeFiles, read_folder
from knowledge.loader import KnowledgeError
from knowledge.models import Faq, Programme
from knowledge.yamlio import load_yaml
from services import audit, knowledge
from storage.models import StaffAccount
from storage.repositories import Repos

router = APIRouter()


async def form_values(request: Request) -> dict[str, str]:
    """Every field of a posted form (for forms whose fields depend on what is edited)."""
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


FormValues = Annotated[dict[str, str], Depends(form_values)]
MAX_FIELD = 20_000
EDITABLE_FILES = ("synonyms.yaml", "out_of_scope.yaml", "deadlines.yaml")
CONTACT_FIELDS = ("centre", "phone", "zalo", "address", "hours", "email", "website")
VERSIONS_SHOWN = 50


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str  # text | long | lines | yaml


COMMON = (
    Field("title", "Tên", "text"),
    Field("short_answer", "Câu trả lời ngắn (tin đầu tiên)", "long"),
    Field("aliases", "Tên gọi khác (mỗi dòng một tên)", "lines"),
    Field("questions", "Cách hỏi thường gặp (mỗi dòng một câu)", "lines"),
    Field("keywords", "Từ khóa (mỗi dòng một từ)", "lines"),
    Field("related", "Mục liên quan (mã, mỗi dòng một mã)", "lines"),
    Field("valid_from", "Áp dụng từ (YYYY-MM-DD)", "text"),
    Field("valid_to", "Áp dụng đến (YYYY-MM-DD, để trống nếu chưa hết hạn)", "text"),
    Field("legal_basis", "Căn cứ pháp lý (YAML)", "yaml"),
)
PROGRAMME = (
    Field("summary", "Tóm tắt", "long"),
    Field("what_is_supported", "Hỗ trợ những gì (mỗi dòng một ý)", "lines"),
    Field("conditions", "Điều kiện (mỗi dòng một ý)", "lines"),
    Field("criteria", "Điều kiện để máy kiểm tra (YAML)", "yaml"),
    Field("levels", "Mức hỗ trợ (YAML)", "yaml"),
    Field("level_note", "Ghi chú khi chưa có mức xác nhận", "long"),
    Field("historical_levels", "Mức cũ (YAML)", "yaml"),
    Field("documents", "Giấy tờ (YAML)", "yaml"),
    Field("how_to_apply", "Các bước đăng ký (mỗi dòng một bước)", "lines"),
    Field("where_to_apply", "Nộp ở đâu", "long"),
    Field("timing", "Thời gian", "long"),
)
FAQ = (Field("answer", "Câu trả lời", "long"),)


def fields_of(entry: Programme | Faq) -> tuple[Field, ...]:
    return COMMON[:1] + (PROGRAMME if isinstance(entry, Programme) else FAQ) + COMMON[1:]


def shown(value: Any, kind: str) -> str:
    """A field's value as the form shows it."""
    if value is None:
        return ""
    if kind == "lines":
        return "\n".join(str(v) for v in value)
    if kind == "yaml":
        return yaml.safe_dump(value, allow_unicode=True, sort_keys=False, width=100) if value else ""
    return str(value)


def parsed(text: str, kind: str) -> Any:
    """A field as typed, in the knowledge format (ValueError when its YAML cannot be read)."""
    text = text.replace("\r\n", "\n").strip()
    if kind == "lines":
        return [line.strip() for line in text.splitlines() if line.strip()]
    if kind == "yaml":
        if not text:
            return []
        try:
            return load_yaml(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"YAML không đọc được: {exc}") from exc
    return text or None


def in_words(message: str, table: list[dict[str, str]]) -> str:
    """A knowledge check's problem as staff read it (the ``validation`` table of labels.yaml)."""
    for rule in table:
        found = re.search(rule["pattern"], message)
        if found:
            return rule["text"].format(*found.groups())
    return f"Chưa đúng: {message}"


def _may_edit(staff: StaffAccount, entry: Programme | Faq) -> bool:
    within = scope(staff)
    return within.is_admin or entry.scope == within.province


def _publish(
    request: Request, repos: Repos, files: KnowledgeFiles, staff: StaffAccount, reason: str, what: str
) -> int:
    """Publish (KnowledgeError when invalid), audit it, and answer from it here once committed."""
    version, catalog = knowledge.publish_catalog(repos, files, actor(staff), reason)
    audit.record(repos, actor(staff), audit.KNOWLEDGE_PUBLISH, "knowledge_version", version, what)
    running = services(request)
    after_commit(request, partial(running.use_catalog, version, catalog))
    return version


@router.get("/knowledge", response_class=HTMLResponse)
def knowledge_page(request: Request, staff: Staff) -> Response:
    kb = services(request).catalog.kb
    entries = [e for e in kb.entries if _may_edit(staff, e)]
    within = scope(staff)
    provinces = kb.provinces.names() if within.is_admin else [within.province or ""]
    return page(
        request,
        "knowledge.html",
        staff,
        entries=sorted(entries, key=lambda e: (str(e.category), e.title)),
        provinces=provinces,
        files=EDITABLE_FILES if within.is_admin else (),
        version=services(request).knowledge_version,
        message=request.query_params.get("msg", ""),
    )


def _entry_form(
    request: Request,
    staff: StaffAccount,
    entry: Programme | Faq,
    values: dict[str, str],
    status: int = 200,
    **more: Any,
) -> Response:
    return page(
        request,
        "knowledge_entry.html",
        staff,
        status_code=status,
        entry=entry,
        fields=fields_of(entry),
        values=values,
        errors=more.pop("errors", {}),
        general=more.pop("general", []),
        reason=more.pop("reason", ""),
        **more,
    )


@router.get("/knowledge/entries/{entry_id}", response_class=HTMLResponse)
def entry_page(request: Request, staff: Staff, entry_id: str = Path(max_length=64)) -> Response:
    entry = services(request).catalog.kb.by_id.get(entry_id)
    if entry is None or not _may_edit(staff, entry):
        return not_found(request, staff)
    raw = entry.model_dump(mode="json")
    values = {f.name: shown(raw.get(f.name), f.kind) for f in fields_of(entry)}
    return _entry_form(request, staff, entry, values)


@router.post("/knowledge/entries/{entry_id}")
def save_entry(
    request: Request,
    repos: UnitOfWork,
    staff: StaffForm,
    form: FormValues,
    entry_id: str = Path(max_length=64),
) -> Response:
    entry = services(request).catalog.kb.by_id.get(entry_id)
    if entry is None or not _may_edit(staff, entry):
        return not_found(request, staff)
    fields = fields_of(entry)
    values = {f.name: form_text(str(form.get(f.name, "")), MAX_FIELD) for f in fields}
    reason = form_text(str(form.get("reason", "")), 1000)
    raw = entry.model_dump(mode="json")
    errors: dict[str, list[str]] = {}
    for f in fields:
        try:
            raw[f.name] = parsed(values[f.name], f.kind)
        except ValueError as exc:
            errors.setdefault(f.name, []).append(str(exc))
    if not reason:
        errors.setdefault("reason", []).append("Xin ghi lý do thay đổi.")
    if errors:
        return _entry_form(request, staff, entry, values, 400, errors=errors, reason=reason)
    files = knowledge.with_entry(knowledge.live_files(repos), raw)
    try:
        version = _publish(request, repos, files, staff, reason, f"mục {entry_id}")
    except KnowledgeError as exc:
        names = {f.name for f in fields}
        table = labels(request)["validation"]
        own = [p for p in exc.problems if p.entry == entry_id]
        # An entry that does not load makes every reference to it fail too: show its own problems.
        for problem in own or exc.problems:
            where = problem.top_field if problem.entry == entry_id else ""
            key = where if where in names else ""
            words = in_words(problem.message, table)
            errors.setdefault(key, []).append(words if key else f"{problem.file}: {words}")
        general = errors.pop("", [])
        return _entry_form(request, staff, entry, values, 400, errors=errors, general=general, reason=reason)
    return redirect(f"/knowledge?msg=saved&v={version}")


@router.get("/knowledge/contacts/{province}", response_class=HTMLResponse)
def contact_page(request: Request, staff: Staff, province: str = Path(max_length=64)) -> Response:
    kb = services(request).catalog.kb
    within = scope(staff)
    if province not in kb.provinces.names() or not (within.is_admin or within.province == province):
        return not_found(request, staff)
    record = kb.contacts.get(province)
    values = {name: str(getattr(record, name, "") or "") for name in CONTACT_FIELDS}
    return page(
        request, "knowledge_contact.html", staff, province=province, values=values, errors=[], reason=""
    )


@router.post("/knowledge/contacts/{province}")
def save_contact(
    request: Request,
    repos: UnitOfWork,
    staff: StaffForm,
    form: FormValues,
    province: str = Path(max_length=64),
) -> Response:
    kb = services(request).catalog.kb
    within = scope(staff)
    if province not in kb.provinces.names() or not (within.is_admin or within.province == province):
        return not_found(request, staff)
    values = {name: form_text(str(form.get(name, "")), 500) for name in CONTACT_FIELDS}
    reason = form_text(str(form.get("reason", "")), 1000)
    if not reason:
        return page(
            request,
            "knowledge_contact.html",
            staff,
            400,
            province=province,
            values=values,
            errors=["Xin ghi lý do thay đổi."],
            reason=reason,
        )
    files = knowledge.with_contact(knowledge.live_files(repos), {"province": province, **values})
    try:
        _publish(request, repos, files, staff, reason, f"liên hệ {province}")
    except KnowledgeError as exc:
        return page(
            request,
            "knowledge_contact.html",
            staff,
            400,
            province=province,
            values=values,
            errors=[in_words(p.message, labels(request)["validation"]) for p in exc.problems],
            reason=reason,
        )
    return redirect("/knowledge?msg=saved")


@router.get("/knowledge/files/{name}", response_class=HTMLResponse)
def file_page(request: Request, repos: UnitOfWork, staff: Staff, name: str = Path(max_length=64)) -> Response:
    if name not in EDITABLE_FILES or not scope(staff).is_admin:
        return not_found(request, staff)
    text = knowledge.live_files(repos).get(name, "")
    return page(request, "knowledge_file.html", staff, name=name, text=text, errors=[], reason="")


@router.post("/knowledge/files/{name}")
def save_file(
    request: Request, repos: UnitOfWork, staff: StaffForm, form: FormValues, name: str = Path(max_length=64)
) -> Response:
    if name not in EDITABLE_FILES or not scope(staff).is_admin:
        return not_found(request, staff)
    text = str(form.get("text", ""))[:500_000].replace("\r\n", "\n")
    reason = form_text(str(form.get("reason", "")), 1000)
    errors: list[str] = [] if reason else ["Xin ghi lý do thay đổi."]
    if not errors:
        try:
            _publish(request, repos, knowledge.live_files(repos) | {name: text}, staff, reason, name)
        except KnowledgeError as exc:
            table = labels(request)["validation"]
            errors = [
                f"{p.file}{' · ' + p.field if p.field else ''}: {in_words(p.message, table)}"
                for p in exc.problems
            ]
    if errors:
        return page(
            request, "knowledge_file.html", staff, 400, name=name, text=text, errors=errors, reason=reason
        )
    return redirect("/knowledge?msg=saved")


@router.get("/knowledge/versions", response_class=HTMLResponse)
def versions_page(request: Request, repos: UnitOfWork, staff: Staff) -> Response:
    if not scope(staff).is_admin:
        return not_found(request, staff)
    versions = repos.knowledge.history(VERSIONS_SHOWN + 1)
    changes = {}
    for newer, older in zip(versions, [*versions[1:], None], strict=True):
        before = dict(older.files) if older is not None else read_folder()
        changes[newer.id] = knowledge.changed_files(before, dict(newer.files))
    return page(
        request,
        "knowledge_versions.html",
        staff,
        versions=versions[:VERSIONS_SHOWN],
        changes=changes,
        live=services(request).knowledge_version,
    )


@router.get("/knowledge/versions/{version_id}", response_class=HTMLResponse)
def version_page(
    request: Request, repos: UnitOfWork, staff: Staff, version_id: int = Path(ge=1, le=2**31 - 1)
) -> Response:
    """What one version changed, line by line, against the version before it (or the seed files)."""
    version = repos.knowledge.get(version_id)
    if version is None or not scope(staff).is_admin:
        return not_found(request, staff)
    older = repos.knowledge.before(version_id)
    before = dict(older.files) if older is not None else read_folder()
    after = dict(version.files)
    diffs = {
        path: list(
            difflib.unified_diff(
                before.get(path, "").splitlines(), after.get(path, "").splitlines(), lineterm="", n=2
            )
        )[2:]
        for path in knowledge.changed_files(before, after)
    }
    return page(request, "knowledge_version.html", staff, version=version, diffs=diffs)


@router.post("/knowledge/versions/{version_id}/revert")
def revert_version(
    request: Request, repos: UnitOfWork, staff: StaffForm, version_id: int = Path(ge=1, le=2**31 - 1)
) -> Response:
    if not scope(staff).is_admin:
        return not_found(request, staff)
    old = repos.knowledge.get(version_id)
    if old is None:
        return not_found(request, staff)
    _publish(
        request, repos, dict(old.files), staff, f"quay lại phiên bản {version_id}", f"phiên bản {version_id}"
    )
    return redirect("/knowledge/versions")
