"""The "Hỏi cán bộ" questions: open ones with a reply box, the last answered ones. An answer reaches
the producer in their chat through the outbox; every answer is its own message."""

from __future__ import annotations

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import col, select

from bot.dashboard.pages import MAX_ID, form_text, guard, page, services, wake_outbox
from handlers import staff as workflow
from storage.models import StaffQuestion, User
from storage.repositories import Repos

router = APIRouter()


# --- questions for staff ---


@router.get("/questions", response_class=HTMLResponse)
def questions_page(request: Request) -> Response:
    with services(request).db.session() as s:
        repos = Repos(s)
        staff = guard(request, repos)
        if isinstance(staff, Response):
            return staff
        pending = repos.staff_questions.open_questions()
        askers = {q.user_id: s.get(User, q.user_id) for q in pending}
        answered = list(
            s.exec(
                select(StaffQuestion)
                .where(StaffQuestion.status == "answered")
                .order_by(col(StaffQuestion.answered_at).desc())
                .limit(20)
            ).all()
        )
        return page(
            request,
            "questions.html",
            staff,
            pending=pending,
            askers=askers,
            answered=answered,
            message=request.query_params.get("msg", ""),
        )


@router.post("/questions/{question_id}/answer")
def answer_question(
    request: Request,
    question_id: int = Path(ge=1, le=MAX_ID),
    answer: str = Form(""),
    csrf_token_field: str = Form("", alias="csrf_token"),
) -> Response:
    running = services(request)
    with running.db.session() as s:
        repos = Repos(s)
        staff = guard(request, repos, csrf_token_field)
        if isinstance(staff, Response):
            return staff
        question = repos.staff_questions.get(question_id)
        if question is None:
            return page(request, "not_found.html", staff, status_code=404)
        text = form_text(answer, 4000)
        if not text:
            return RedirectResponse("/questions?msg=empty", status_code=303)
        workflow.answer_question(repos, running.texts, question, text, f"dashboard:{staff.username}")
    wake_outbox(request)
    return RedirectResponse("/questions?msg=sent", status_code=303)
