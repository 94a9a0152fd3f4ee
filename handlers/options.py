"""Reading a typed answer to a question's options (``handlers/templates/questions.yaml``).

One rule for every flow: an option matches when one of its words (its label included) appears in
the folded text as whole words, and the longest matching word wins, so "liên hiệp hợp tác xã" is a
union of co-operatives, not a co-operative, and "doanh nghiệp lớn" is not a small enterprise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from knowledge.text import fold


def option_words(question: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each option's value with the words that name it: its label, then its ``words``."""
    return {str(o["value"]): [o["label"], *o.get("words", [])] for o in question.get("options", [])}


def match_words(text: str, options: Mapping[str, Iterable[str]]) -> str | None:
    """The option whose words appear in ``text`` (folded, as whole words); the longest match wins,
    the first option listed on a tie. None when no option's words appear."""
    folded = f" {fold(text)} "
    best: tuple[int, str] | None = None
    for value, words in options.items():
        for word in words:
            w = fold(word)
            if w and f" {w} " in folded and (best is None or len(w) > best[0]):
                best = (len(w), value)
    return best[1] if best else None


def parse_option(question: Mapping[str, Any], text: str) -> str | None:
    """The value of the option of ``question`` that ``text`` names, or None."""
    return match_words(text, option_words(question))
