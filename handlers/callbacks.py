"""Button data: short ASCII strings, one constant per action, built and parsed here only.

Global actions stay valid forever (a programme card's "Đăng ký" works days later); answers to a
question carry the conversation's menu version, so an old question's buttons are recognised as
stale. Anything that does not parse, or names an unknown programme, is treated as stale too.
"""

from __future__ import annotations

from dataclasses import dataclass

MAIN_MENU = "m"
BROWSE = "mb"
CATEGORY = "c"  # c:<category>
PROGRAMME = "p"  # p:<entry id>
PROGRAMME_DOCS = "pd"  # pd:<entry id>
CHECK = "e"  # e or e:<programme id>
APPLY = "a"  # a or a:<programme id>
REMINDERS = "r"
ASK_STAFF = "h"
SEND_LAST_QUESTION = "hq"
ANSWER = "s"  # s:<menu version>:<value>
BACK = "b"  # b:<menu version>
CANCEL = "x"
EDIT_ANSWERS = "ed"
RESTART_CHECK = "er"
APPLY_SUBMIT = "as"  # as:<draft id>
MY_APPLICATIONS = "ma"
LEAD_STATUS = "ls"  # ls:<lead id>:<status> (staff only)
LEAD_DETAIL = "ld"  # ld:<lead id> (staff only)
ANSWER_QUESTION = "qa"  # qa:<question id> (staff only)
REMINDERS_OFF = "ro"
REMINDERS_CHANGE = "rc"
REMIND_PROGRAMME = "rp"  # rp:<programme id>
BROADCAST = "bc"  # bc:<broadcast id>:ok|no (staff only)
MY_DATA = "dl"  # what is stored about me (/dulieu)
ERASE = "xd"  # delete my data (/xoadulieu): asks for a confirmation first
WITHDRAW_CONSENT = "wc"  # withdraw consent to processing: asks for a confirmation first
SAVE_FACTS = "sv"  # keep what the last question said (province, legal form, amount) in the profile
FEEDBACK = "fb"  # fb:<entry id>:1 (👍 helpful) or fb:<entry id>:0 (👎 not helpful)

_GLOBAL = {
    MAIN_MENU,
    BROWSE,
    CATEGORY,
    PROGRAMME,
    PROGRAMME_DOCS,
    CHECK,
    APPLY,
    REMINDERS,
    ASK_STAFF,
    SEND_LAST_QUESTION,
    CANCEL,
    EDIT_ANSWERS,
    RESTART_CHECK,
    APPLY_SUBMIT,
    MY_APPLICATIONS,
    LEAD_STATUS,
    LEAD_DETAIL,
    ANSWER_QUESTION,
    REMINDERS_OFF,
    REMINDERS_CHANGE,
    REMIND_PROGRAMME,
    BROADCAST,
    MY_DATA,
    ERASE,
    WITHDRAW_CONSENT,
    SAVE_FACTS,
    FEEDBACK,
}


@dataclass(frozen=True)
class Callback:
    action: str
    arg: str | None = None
    version: int | None = None


def build(action: str, arg: str | None = None) -> str:
    return action if arg is None else f"{action}:{arg}"


def answer(version: int, value: str) -> str:
    return f"{ANSWER}:{version}:{value}"


def back(version: int) -> str:
    return f"{BACK}:{version}"


def feedback(entry_id: str, helpful: bool) -> str:
    return f"{FEEDBACK}:{entry_id}:{int(helpful)}"


def parse(data: str | None) -> Callback | None:
    """The callback in ``data``, or None when it is not one of ours."""
    if not data or len(data) > 64 or not data.isascii():
        return None
    head, _, rest = data.partition(":")
    if head in (ANSWER, BACK):
        version, _, value = rest.partition(":")
        if not version.isdigit() or (head == ANSWER and not value):
            return None
        return Callback(head, value or None, int(version))
    if head in _GLOBAL:
        return Callback(head, rest or None)
    return None
