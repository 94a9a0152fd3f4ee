"""Questions to staff ("Hỏi cán bộ"): a producer's question is stored with their province as it is
when asked and announced to every staff chat; each answer is recorded and reaches the producer as its
own message (a second answer too)."""

from __future__ import annotations

from dataclasses import dataclass

from services import audit, learning, notifications
from services.messages import Messages
from services.staff_directory import StaffDirectory
from storage.models import StaffQuestion, User, utcnow
from storage.repositories import Repos

MAX_QUESTION = 4000
MAX_ANSWER = 4000
MAX_ACTOR = 128


@dataclass(frozen=True)
class QuestionService:
    messages: Messages
    staff: StaffDirectory

    def ask(self, repos: Repos, asker: User, text: str, province: str | None) -> StaffQuestion:
        assert asker.id is not None
        question = repos.staff_questions.add(asker.id, text.strip()[:MAX_QUESTION], province)
        assert question.id is not None
        # Every question to staff is also one the bot could not answer: the learning queue counts it.
        learning.note(repos, question.text, learning.ASK_STAFF, question.user_id, province)
        message = self.messages.new_question(question, asker, province)
        notifications.to_staff(repos, self.staff, "question_new", question.id, message, province)
        return question

    def answer(self, repos: Repos, question: StaffQuestion, answer: str, actor: str) -> bool:
        """Record the answer and send it; True when the question had been answered already."""
        already = question.status == "answered"
        question.answer = answer.strip()[:MAX_ANSWER]
        question.answered_by = actor[:MAX_ACTOR]
        question.answered_at = utcnow()
        question.status = "answered"
        repos.staff_questions.save(question)
        assert question.id is not None
        # Not the answer's text: it may name the producer, and erasure deletes the question.
        audit.record(repos, actor, audit.QUESTION_ANSWER, "question", question.id, f"{len(answer)} ký tự")
        message = self.messages.question_answer(question)
        notifications.to_user(
            repos, question.user_id, "question_answer", question.id, message, repeatable=True
        )
        return already
