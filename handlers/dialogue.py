"""The dialogue: one incoming event in, replies out, everything stored in one unit of work.

``Dialogue.handle`` loads the user, profile and conversation state, routes the event to a flow
step, saves the new state and logs both directions before returning. Order of routing matters:
commands, then media we cannot read, then button presses, then typed text (numbered-menu picks,
words that work everywhere, the answer to a pending question, and finally a free question).

Multi-step flows are reached through one table, ``FLOWS``: the dialogue knows what a flow answers
to (``handlers.flow.Flow``), never its steps. A new flow is its module and one line there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from handlers import (
    answers,
    apply,
    ask,
    ask_staff,
    browse,
    eligibility,
    feedback,
    menu,
    notify,
    privacy,
    reminders,
    staff,
)
from handlers import callbacks as cb
from handlers.context import Ctx, State
from handlers.flow import Flow
from handlers.texts import Texts
from handlers.types import Button, Incoming, Kind, LeaseLost, Receipt, Reply
from knowledge.catalog import Catalog
from knowledge.text import fold
from services.broadcasts import CHANNELS
from services.bundle import ServiceSet, build_service_set
from services.notifications import PRIORITY_REPLY, PROACTIVE_FROM
from services.reminders import ReminderSettings
from storage.db import Database
from storage.models import Conversation, User, saved_id, utcnow
from storage.repositories import Repos

Action = Callable[[Ctx], list[Reply]]

# Every multi-step flow, by the name stored in the conversation row.
FLOWS: dict[str, Flow] = {
    eligibility.FLOW: eligibility.STEPS,
    apply.FLOW: apply.STEPS,
    ask_staff.FLOW: ask_staff.STEPS,
    reminders.FLOW: reminders.STEPS,
    privacy.FLOW: privacy.STEPS,
    staff.FLOW: Flow(staff.FLOW, on_text=staff.on_answer_text),
}
_NO_FLOW = Flow("menu")
# Channels whose buttons are pressed, never typed: a proactive message's menu is not numbered there
# (the channels' ``native_buttons``).
NATIVE_BUTTON_CHANNELS = frozenset({"telegram"})


class Dialogue:
    """Channel-agnostic conversation engine over the database and the knowledge catalog."""

    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        texts: Texts | None = None,
        timezone: str = "Asia/Ho_Chi_Minh",
        clock: Callable[[], datetime] = utcnow,
        staff_telegram_ids: frozenset[str] | set[str] = frozenset(),
        reminder_settings: ReminderSettings | None = None,
        channels: tuple[str, ...] = CHANNELS,
        retention_months: int = 24,
        services: ServiceSet | None = None,
    ):
        self.db = db
        self.catalog = catalog
        self.texts = texts or Texts()
        self.tz = ZoneInfo(timezone)
        self.clock = clock
        self.services = services or build_service_set(
            notify.ChatMessages(self.texts),
            staff_telegram_ids,
            reminder_settings or ReminderSettings(timezone=timezone),
            channels,
            retention_months,
        )
        # Called after each committed update (the outbox uses it to look for new messages at once).
        self.after_commit: Callable[[], None] | None = None
        words = self.texts.labels["words"]
        self._words = {name: {fold(w) for w in values} for name, values in words.items()}
        self._commands: dict[str, Action] = {
            "start": menu.start,
            "menu": menu.show_menu,
            "help": menu.help_text,
            "huy": menu.cancel,
            "cancel": menu.cancel,
            "tracuu": browse.categories,
            "kiemtra": lambda ctx: eligibility.start(ctx) or [],
            "hoicanbo": ask_staff.start,
            "dangky": lambda ctx: apply.start(ctx) or [],
            "hoso": apply.my_applications,
            "nhachan": reminders.show,
            "tatnhac": reminders.stop,
            "dulieu": privacy.show,
            "xoadulieu": privacy.ask_erase,
            "leads": lambda ctx: staff.list_leads(ctx) or [ctx.main_menu("unknown_command", command="leads")],
            "broadcast": lambda ctx: (
                staff.broadcast_command(ctx) or [ctx.main_menu("unknown_command", command="broadcast")]
            ),
        }

    @property
    def commands(self) -> set[str]:
        return set(self._commands)

    # --- the unit of work ---

    def handle(self, incoming: Incoming, receipt: Receipt | None = None) -> list[Reply]:
        """Answer one event. With an inbox ``receipt`` the update is marked done and the replies are
        queued in the outbox in the same transaction as everything else (the outbox sends them)."""
        with self.db.session() as session:
            repos = Repos(session)
            user = repos.users.get_or_create(
                incoming.channel, incoming.chat_id, incoming.user_name, incoming.username
            )
            user_id = saved_id(user)
            conversation = repos.conversations.get(user_id)
            state = State.load(
                conversation.flow, conversation.step, dict(conversation.data), conversation.menu_version
            )
            _adopt_delivered_menu(repos, user, state, conversation)
            now = self.clock()
            ctx = Ctx(
                repos,
                user,
                repos.profiles.get_or_create(user_id),
                state,
                self.catalog,
                self.texts,
                now,
                now.astimezone(self.tz).date(),
                self.services,
            )
            repos.messages.add(
                user_id, incoming.channel, "in", _describe(incoming, state), str(incoming.kind)
            )
            replies = self._route(ctx, incoming)
            if receipt is not None:
                _finish(repos, receipt, now)
            if ctx.erase_requested:
                self._erase(repos, ctx, replies, receipt)
            else:
                _remember_buttons(state, replies)
                repos.conversations.save(user_id, state.flow, state.step, state.stored(), state.menu_version)
                for reply in replies:
                    repos.messages.add(user_id, incoming.channel, "out", reply.text)
                if receipt is not None:
                    notify.queue_replies(repos, user, replies, receipt.inbox_id)
        if ctx.erase_requested:
            self.db.flush_deleted()
        if self.after_commit is not None:
            self.after_commit()
        return replies

    def _erase(self, repos: Repos, ctx: Ctx, replies: list[Reply], receipt: Receipt | None) -> None:
        """The producer asked to have their data deleted: gone from every table, this exchange
        included; the last answer is queued once and forgotten once delivered."""
        chat = (ctx.user.channel, ctx.user.external_id)
        ctx.services.personal_data.erase(repos, ctx.user_id, ctx.now)
        if receipt is not None:
            for reply in replies:
                repos.outbox.add_ephemeral(ctx.user, chat[1], reply.text, receipt.inbox_id, PRIORITY_REPLY)

    def give_up(self, channel: str, chat_id: str, receipt: Receipt, error: str) -> None:
        """An update kept failing: mark it failed and tell the producer politely, in one transaction."""
        with self.db.session() as session:
            repos = Repos(session)
            _finish(repos, receipt, self.clock(), status="failed", error=error)
            user = repos.users.get_or_create(channel, chat_id)
            reply = Reply(self.texts.render("error"))
            notify.queue_replies(repos, user, [reply], receipt.inbox_id, suffix="error")
            repos.messages.add(saved_id(user), channel, "out", reply.text)
        if self.after_commit is not None:
            self.after_commit()

    def set_blocked(self, channel: str, chat_id: str, blocked: bool, receipt: Receipt | None = None) -> None:
        """The platform told us the user blocked (or unblocked) the bot: broadcasts skip them."""
        with self.db.session() as session:
            repos = Repos(session)
            if receipt is not None:
                _finish(repos, receipt, self.clock())
            user = repos.users.find(channel, chat_id)
            if user is None:
                return
            if blocked:
                repos.users.mark_blocked(saved_id(user))
            elif user.is_blocked:
                user.is_blocked = False
                session.add(user)

    # --- routing ---

    def _route(self, ctx: Ctx, incoming: Incoming) -> list[Reply]:
        if incoming.kind == Kind.COMMAND:
            return self._command(ctx, incoming.command or "", incoming.text)
        if incoming.kind == Kind.UNSUPPORTED:
            return menu.unsupported(ctx, incoming.media) + self._resume(ctx)
        if incoming.kind == Kind.CHOICE:
            return self._choice(ctx, incoming.choice)
        if incoming.kind == Kind.CONTACT:
            replies = _flow(ctx).on_contact(ctx, incoming.contact_phone)
            return replies if replies is not None else self._resume(ctx)
        return self._text(ctx, incoming.text)

    def _command(self, ctx: Ctx, command: str, text: str = "") -> list[Reply]:
        ctx.command_text = text
        flow = self._commands.get(command)
        if flow is None:
            return [ctx.main_menu("unknown_command", command=command)]
        return flow(ctx)

    def _resume(self, ctx: Ctx) -> list[Reply]:
        """After an interruption: re-ask the pending question, or show the menu."""
        replies = _flow(ctx).resume(ctx)
        return replies if replies is not None else [ctx.main_menu()]

    def _choice(self, ctx: Ctx, data: str | None) -> list[Reply]:
        callback = cb.parse(data)
        replies = None if callback is None else self._dispatch(ctx, callback)
        if replies is None:
            return menu.stale(ctx) + self._resume(ctx)
        return replies

    def _answer(self, ctx: Ctx, c: cb.Callback) -> list[Reply] | None:
        """A button answering the current question of a flow; None when stale or forged."""
        if c.version != ctx.state.menu_version:
            return None
        flow = _flow(ctx)
        return flow.on_choice(ctx, c.arg or "") if c.action == cb.ANSWER else flow.back(ctx)

    def _dispatch(self, ctx: Ctx, c: cb.Callback) -> list[Reply] | None:
        if c.action in (cb.ANSWER, cb.BACK):
            return self._answer(ctx, c)
        without_arg: dict[str, Action] = {
            cb.MAIN_MENU: menu.show_menu,
            cb.BROWSE: browse.categories,
            cb.ASK_STAFF: ask_staff.start,
            cb.SEND_LAST_QUESTION: ask_staff.send_last_question,
            cb.CANCEL: menu.cancel,
            cb.RESTART_CHECK: eligibility.restart,
            cb.MY_APPLICATIONS: apply.my_applications,
            cb.APPLY: lambda ctx: apply.start(ctx) or [],
            cb.REMINDERS: reminders.show,
            cb.REMINDERS_OFF: reminders.stop,
            cb.REMINDERS_CHANGE: reminders.change,
            cb.MY_DATA: privacy.show,
            cb.ERASE: privacy.ask_erase,
            cb.WITHDRAW_CONSENT: privacy.ask_withdraw,
            cb.SAVE_FACTS: answers.save_read_facts,
            cb.EDIT_ANSWERS: eligibility.edit_answers,
        }
        if c.arg is None and c.action in without_arg:
            return without_arg[c.action](ctx)
        with_arg: dict[str, Callable[[Ctx, str | None], list[Reply] | None]] = {
            cb.CATEGORY: browse.category,
            cb.PROGRAMME: browse.entry,
            cb.PROGRAMME_DOCS: browse.details,
            cb.CHECK: eligibility.start,
            cb.APPLY: apply.start,
            cb.APPLY_SUBMIT: apply.submit,
            cb.LEAD_STATUS: staff.set_status,
            cb.LEAD_DETAIL: staff.lead_detail,
            cb.ANSWER_QUESTION: staff.start_answer,
            cb.REMIND_PROGRAMME: reminders.start,
            cb.BROADCAST: staff.broadcast_decision,
            cb.FEEDBACK: feedback.on_feedback,
        }
        if c.action in with_arg:
            return with_arg[c.action](ctx, c.arg)
        return None

    def _text(self, ctx: Ctx, text: str) -> list[Reply]:
        stripped = text.strip()
        if not stripped:
            return self._resume(ctx)
        picked = _numbered_choice(ctx.state, stripped)
        if picked is not None:
            return self._choice(ctx, picked)
        folded = fold(stripped)
        if folded in self._words["menu"]:
            return menu.show_menu(ctx)
        if folded in self._words["cancel"]:
            return menu.cancel(ctx)
        if folded in self._words["back"]:
            replies = _flow(ctx).back(ctx)
            return replies if replies is not None else menu.show_menu(ctx)
        return self._flow_text(ctx, stripped, folded)

    def _flow_text(self, ctx: Ctx, text: str, folded: str) -> list[Reply]:
        """Typed text: the answer to the pending question of a flow, else a free question."""
        replies = _flow(ctx).on_text(ctx, text)
        if replies is not None:
            return replies
        if folded in self._words["greeting"]:
            return menu.greeting(ctx)
        if folded in self._words["thanks"]:
            return menu.thanks(ctx)
        return ask.answer(ctx, text)


def _describe(incoming: Incoming, state: State) -> str:
    """The incoming event as staff will read it in the conversation history."""
    if incoming.kind == Kind.COMMAND:
        return f"/{incoming.command} {incoming.text}".strip()
    if incoming.kind == Kind.CHOICE:
        labels = {b.data: b.label for b in _menu(state)}
        return f"[{labels.get(incoming.choice or '', incoming.choice)}]"
    if incoming.kind == Kind.CONTACT:
        return f"[contact] {incoming.contact_phone or ''}"
    if incoming.kind == Kind.UNSUPPORTED:
        return f"[{incoming.media or 'unsupported'}]"
    return incoming.text[:4000]


def _finish(
    repos: Repos, receipt: Receipt, now: datetime, status: str = "done", error: str | None = None
) -> None:
    if not repos.inbox.finish(receipt.inbox_id, receipt.worker_id, now, status, error):
        raise LeaseLost(f"inbox row {receipt.inbox_id}")


def _flow(ctx: Ctx) -> Flow:
    return FLOWS.get(ctx.state.flow, _NO_FLOW)


def _adopt_delivered_menu(repos: Repos, user: User, state: State, conversation: Conversation) -> None:
    """A menu the outbox delivered after this conversation last moved (a broadcast's buttons on
    Zalo, say) is the one the producer sees last: its numbers answer it."""
    if user.channel in NATIVE_BUTTON_CHANNELS:
        return
    delivered = repos.outbox.last_menu(saved_id(user), conversation.updated_at, PROACTIVE_FROM)
    if delivered:
        state.memory.buttons = delivered


def _remember_buttons(state: State, replies: list[Reply]) -> None:
    """Keep the last menu's choices so "1", "2"... or an option's words pick them (Zalo, console)."""
    for reply in reversed(replies):
        if reply.buttons:
            state.memory.buttons = notify.buttons_to_rows(reply.buttons)
            return


def _menu(state: State) -> list[Button]:
    """The last menu shown, flat, in its order on screen."""
    return [b for row in notify.rows_to_buttons(state.memory.buttons) for b in row]


def _numbered_choice(state: State, text: str) -> str | None:
    buttons = [(b.label, b.data) for b in _menu(state)]
    if text.isdigit():
        number = int(text)
        return buttons[number - 1][1] if 1 <= number <= len(buttons) else None
    folded = fold(text)
    if not folded:
        return None
    exact = [data for label, data in buttons if fold(label) == folded]
    if exact:
        return exact[0]
    # The first words of one option ("tra cuu" for "Tra cứu chính sách"), when only one fits.
    if len(folded.split()) >= 2:
        starts = [data for label, data in buttons if fold(label).startswith(folded + " ")]
        if len(starts) == 1:
            return starts[0]
    return None
