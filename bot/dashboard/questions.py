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
    redirect,
    scope,
    services,
    wake_outbox,
)

router = APIRouter()
ANSWERED_SHOWN = 20
# The conversation shown with an open question: the messages before it and after it.
TALK_BEFORE = 6
TALK_AFTER = 2


@router.get("/questions", response_class=HTMLResponse)
def questions_page(request: Request, repos: UnitOfWork, staff: Staff) -> Response:
    province = scope(staff).province
    pending = repos.staff_questions.open_questions(province)
    answered = repos.staff_questions.recently_answered(ANSWERED_SHOWN, province)
    askers = {q.user_id for q in [*pending, *answered]}
    return page(
        request,
        "questions.html",
        staff,
        pending=pending,
        askers={q.user_id: repos.users.get(q.user_id) for q in pending},
        leads_of={user_id: repos.leads.for_user(user_id) for user_id in askers},
        talk={q.id: repos.messages.around(q.user_id, q.created_at, TALK_BEFORE, TALK_AFTER) for q in pending},
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
