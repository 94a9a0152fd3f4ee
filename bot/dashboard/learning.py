"""The learning queue (``/unanswered``): what the bot could not answer well, grouped by similar
wording and counted (an administrator sees all; a province account only its province's producers').
For each group staff can (a) add its wording as a phrasing of an existing entry, (b) write a new
FAQ from it, or (c) mark it out of scope with a reply; each is published as a new version of the live
knowledge (``services.learning``). Resolved groups show what the live search answers them with now.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from bot.dashboard.pages import (
    Staff,
    StaffForm,
    UnitOfWork,
    actor,
    categories,
    form_text,
    page,
    page_number,
    redirect,
    scope,
    services,
)
from knowledge.catalog import Catalog
from services import learning
from services.staff_scope import Scope
from storage.models import StaffAccount
from storage.repositories import Repos

router = APIRouter()
RESOLVED_SHOWN = 20
GROUPS_PAGE = 30  # open groups per page, the most asked first
MAX_FIELD = 2000


def live_catalog(request: Request, repos: Repos) -> Catalog:
    """The catalog of the newest published version, swapped into this process if it is not in use yet
    (as ``bot.knowledge_watch`` does), so the page shows what the bots answer now."""
    running = services(request)
    running.catch_up_knowledge(repos)
    return running.catalog


def _entries(catalog: Catalog, within: Scope) -> list[tuple[str, str]]:
    """The entries this staff member may add a phrasing to: national ones and their province's."""
    allowed = ("national", within.province) if within.province is not None else None
    return [(e.id, e.title) for e in catalog.kb.entries if allowed is None or e.scope in allowed]


def _render(
    request: Request,
    repos: Repos,
    staff: StaffAccount,
    status_code: int = 200,
    failed: dict[str, Any] | None = None,
) -> Response:
    within = scope(staff)
    catalog = live_catalog(request, repos)
    every = learning.open_groups(repos, within)
    pages = max(1, -(-len(every) // GROUPS_PAGE))
    number = min(page_number(request), pages)
    # Only the groups shown are searched for a suggestion and drawn with their forms.
    groups = every[(number - 1) * GROUPS_PAGE : number * GROUPS_PAGE]
    suggested = {}
    for group in groups:
        result = catalog.index.search(group.examples[0])
        suggested[group.key] = result.matches[0].id if result.matches else ""
    resolved = learning.resolved_groups(repos, within, RESOLVED_SHOWN)
    return page(
        request,
        "unanswered.html",
        staff,
        status_code=status_code,
        groups=groups,
        total=len(every),
        page=number,
        pages=pages,
        suggested=suggested,
        keywords={g.key: learning.suggested_keywords(g) for g in groups},
        entries=_entries(catalog, within),
        titles={e.id: e.title for e in catalog.kb.entries},
        resolved=[(r, learning.answered_now(catalog, r.example)) for r in resolved],
        faq_categories=categories(request)
        | {"general": services(request).texts.labels["categories"]["general"]},
        failed=failed or {},
        message=request.query_params.get("msg", ""),
    )


@router.get("/unanswered", response_class=HTMLResponse)
def unanswered_page(request: Request, repos: UnitOfWork, staff: Staff) -> Response:
    return _render(request, repos, staff)


def _group(repos: Repos, staff: StaffAccount, key: str) -> learning.Group | None:
    return learning.find_group(repos, scope(staff), form_text(key, 200))


def _refused(
    request: Request,
    repos: Repos,
    staff: StaffAccount,
    key: str,
    kind: str,
    exc: learning.Refused,
    draft: Any,
) -> Response:
    failed = {"key": key, "kind": kind, "errors": exc.errors, "draft": draft}
    return _render(request, repos, staff, status_code=422, failed=failed)


@router.post("/unanswered/phrasing")
def add_phrasing(
    request: Request,
    repos: UnitOfWork,
    staff: StaffForm,
    group: str = Form(""),
    entry_id: str = Form(""),
) -> Response:
    found = _group(repos, staff, group)
    if found is None:
        return redirect("/unanswered?msg=gone")
    try:
        learning.add_phrasing(repos, found, form_text(entry_id, 64), scope(staff), actor(staff))
    except learning.Refused as exc:
        return _refused(request, repos, staff, found.key, "phrasing", exc, {"entry_id": entry_id})
    return redirect("/unanswered?msg=phrasing#resolved")


@router.post("/unanswered/faq")
def new_faq(
    request: Request,
    repos: UnitOfWork,
    staff: StaffForm,
    group: str = Form(""),
    id: str = Form(""),
    title: str = Form(""),
    answer: str = Form(""),
    legal_basis: str = Form(""),
    keywords: str = Form(""),
    category: str = Form("general"),
) -> Response:
    found = _group(repos, staff, group)
    if found is None:
        return redirect("/unanswered?msg=gone")
    draft = learning.FaqDraft(
        id=form_text(id, 48),
        title=form_text(title, 300),
        answer=form_text(answer, MAX_FIELD),
        legal_basis=form_text(legal_basis, MAX_FIELD),
        keywords=form_text(keywords, MAX_FIELD),
        category=form_text(category, 32),
    )
    try:
        learning.new_faq(repos, found, draft, scope(staff), actor(staff))
    except learning.Refused as exc:
        return _refused(request, repos, staff, found.key, "faq", exc, draft)
    return redirect("/unanswered?msg=faq#resolved")


@router.post("/unanswered/out-of-scope")
def out_of_scope(
    request: Request,
    repos: UnitOfWork,
    staff: StaffForm,
    group: str = Form(""),
    id: str = Form(""),
    title: str = Form(""),
    answer: str = Form(""),
    handled_by: str = Form(""),
    keywords: str = Form(""),
) -> Response:
    found = _group(repos, staff, group)
    if found is None or not scope(staff).is_admin:  # out_of_scope.yaml is national: admins only
        return redirect("/unanswered?msg=gone")
    draft = learning.TopicDraft(
        id=form_text(id, 48),
        title=form_text(title, 300),
        answer=form_text(answer, MAX_FIELD),
        handled_by=form_text(handled_by, 300),
        keywords=form_text(keywords, MAX_FIELD),
    )
    try:
        learning.out_of_scope(repos, found, draft, actor(staff))
    except learning.Refused as exc:
        return _refused(request, repos, staff, found.key, "out_of_scope", exc, draft)
    return redirect("/unanswered?msg=out_of_scope#resolved")
