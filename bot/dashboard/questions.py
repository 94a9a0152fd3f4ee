"""The "Hỏi cán bộ" questions: open ones with a reply box, the last answered ones. An answer reaches
the producer in their chat through the outbox; every answer is its own message."""

from __future__ import annotations

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from bot.dashboard.pages import (
    MAX_ID,
    Staff,
    StaffForm,
    UnitOfWork,
    actor,
    form_text,
    not_found,
    page,
    page_number,
    redirect,
    scope,
    services,
    wake_outbox,
)
from storage.models import saved_id

router = APIRouter()
PAGE_SIZE = 50
ANSWERED_SHOWN = 20
# The conversation shown with an open question: the messages before it and after it.
TALK_BEFORE = 6
TALK_AFTER = 2


@router.get("/questions", response_class=HTMLResponse)
def questions_page(request: Request, repos: UnitOfWork, staff: Staff) -> Response:
    """One page of open questions (oldest first) with their askers, their leads and the talk around
    each, and the last answered ones: a fixed number of queries, however many are open."""
    province = scope(staff).province
    total = repos.staff_questions.count_open(province)
    pages = max(1, -(-total // PAGE_SIZE))
    number = min(page_number(request), pages)
    shown = repos.staff_questions.open_page((number - 1) * PAGE_SIZE, PAGE_SIZE, province)
    pending = [question for question, _ in shown]
    answered = repos.staff_questions.recently_answered(ANSWERED_SHOWN, province)
    return page(
        request,
        "questions.html",
        staff,
        pending=pending,
        total=total,
        page=number,
        pages=pages,
        asker_names={saved_id(question): name or "" for question, name in shown},
        leads_of=repos.leads.for_users({q.user_id for q in [*pending, *answered]}),
        talk=repos.staff_questions.talk_around([saved_id(q) for q in pending], TALK_BEFORE, TALK_AFTER),
        answered=answered,
        message=request.query_params.get("msg", ""),
    )


@router.post("/questions/{question_id}/answer")
def answer_question(
    request: Request,
    repos: UnitOfWork,
    staff: StaffForm,
    question_id: int = Path(ge=1, le=MAX_ID),
    answer: str = Form(""),
) -> Response:
    question = repos.staff_questions.get(question_id)
    if question is None or not scope(staff).sees_question(question):
        return not_found(request, staff)
    text = form_text(answer, 4000)
    if not text:
        return redirect("/questions?msg=empty")
    services(request).core.questions.answer(repos, question, text, actor(staff))
    wake_outbox(request)
    return redirect("/questions?msg=sent")
