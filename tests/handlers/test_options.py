"""One reading of a typed answer to a question's options, the same in the check and in the form:
the longest matching word wins (the form once took the first option that matched)."""

from __future__ import annotations

import pytest

from handlers.options import match_words, option_words, parse_option
from handlers.texts import Texts
from knowledge.text import fold
from tests.handlers.conftest import Chat

LEGAL_FORM = Texts().questions["legal_form"]


def _first_match(question: dict, text: str) -> str | None:
    """How the form used to read an answer: the first option with a word in the text."""
    folded = f" {fold(text)} "
    for value, words in option_words(question).items():
        if any(f" {fold(w)} " in folded for w in words):
            return value
    return None


@pytest.mark.parametrize(
    ("text", "expected", "first_match"),
    [
        ("Liên hiệp hợp tác xã", "coop_union", "coop"),
        ("bên em là doanh nghiệp lớn", "large_enterprise", "sme"),
        ("cty lon", "large_enterprise", "sme"),
    ],
)
def test_the_longest_match_wins_where_the_first_one_did_not(
    text: str, expected: str, first_match: str
) -> None:
    assert parse_option(LEGAL_FORM, text) == expected
    assert _first_match(LEGAL_FORM, text) == first_match  # the case really tells the two rules apart


@pytest.mark.parametrize(
    ("text", "expected"),
    [("hộ kinh doanh", "household_business"), ("HTX", "coop"), ("tổ hợp tác", "coop_group"), ("xyz", None)],
)
def test_plain_answers(text: str, expected: str | None) -> None:
    assert parse_option(LEGAL_FORM, text) == expected


def test_words_match_whole_words_only_and_ties_go_to_the_first_option() -> None:
    assert match_words("xay dung", {"a": ["xa"]}) is None  # "xa" is not in "xay"
    assert match_words("mot hai", {"a": ["mot"], "b": ["hai"]}) == "a"
    assert match_words("", {"a": [""]}) is None


def test_the_form_and_the_check_read_an_answer_alike(chat: Chat) -> None:
    chat.send("/kiemtra")
    chat.send("liên hiệp hợp tác xã")
    assert chat.state()[1].legal_form == "coop_union"

    form = Chat(chat.dialogue, chat_id="101")
    form.press("a:machinery-national")
    for answer in ("Nguyễn Văn An", "0912345678", "Cơ sở Mây tre An Phú"):
        form.send(answer)
    assert form.state()[0].step == "legal_form"
    form.send("liên hiệp hợp tác xã")
    assert form.state()[0].data["_draft"]["values"]["legal_form"] == "coop_union"
