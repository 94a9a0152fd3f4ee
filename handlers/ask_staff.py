""" "Hỏi cán bộ": a producer's question is stored for centre staff, who answer later."""

from __future__ import annotations

from handlers.ask import MAX_STORED_QUESTION_CHARS
from handlers.context import Ctx
from handlers.flow import Flow
from handlers.types import Reply

FLOW = "ask_staff"


def start(ctx: Ctx) -> list[Reply]:
    ctx.state.go(FLOW, "wait_text")
    return [ctx.reply("ask_staff_prompt", [[ctx.button("cancel", "x")]])]


def send_last_question(ctx: Ctx) -> list[Reply]:
    question = ctx.state.memory.last_question
    if not question:
        return start(ctx)
    return _store(ctx, question)


def on_text(ctx: Ctx, text: str) -> list[Reply]:
    if not text.strip():
        return [ctx.reply("ask_staff_prompt", [[ctx.button("cancel", "x")]])]
    return _store(ctx, text)


STEPS = Flow(FLOW, on_text=on_text, resume=start)


def _store(ctx: Ctx, text: str) -> list[Reply]:
    # The province goes with the question as it is now: a later move does not rewrite the past.
    question = ctx.services.questions.ask(
        ctx.repos, ctx.user, text.strip()[:MAX_STORED_QUESTION_CHARS], ctx.profile.province
    )
    ctx.state.reset()
    return [ctx.main_menu("ask_staff_done", question=question)]
