"""Reading amounts of money as producers type them: "1,2 tỷ", "1 tỷ 2", "800tr", "800 củ",
"500k", "nửa tỷ", "tỷ rưỡi", "1.200.000.000", "1200000000".

In Vietnamese the dot groups thousands and the comma is the decimal mark, but people mix both, so
one separator followed by exactly three digits is read as grouping and otherwise as a decimal mark.
A bare number with no unit below 100.000 is ambiguous (triệu? đồng?) and gives None.
"""

from __future__ import annotations

import re

from knowledge.text import fold_letters

_UNITS = {
    "ty": 10**9,
    "ti": 10**9,
    "trieu": 10**6,
    "tr": 10**6,
    "cu": 10**6,
    "m": 10**6,
    "nghin": 10**3,
    "ngan": 10**3,
    "k": 10**3,
    "dong": 1,
    "d": 1,
    "vnd": 1,
}
_TOKEN = re.compile(r"(\d+(?:[.,]\d+)*)|(nua|ruoi|[a-z]+)")
_BARE_MINIMUM = 100_000


def _number(raw: str) -> tuple[float, int]:
    """The value of a typed number and how many digits its last group has (for "1 tỷ 2")."""
    groups = re.split(r"[.,]", raw)
    if len(groups) == 1:
        return float(raw), len(raw)
    if len(groups) == 2 and len(groups[1]) != 3:
        return float(f"{groups[0]}.{groups[1]}"), 0
    if all(len(g) == 3 for g in groups[1:]):
        return float("".join(groups)), 0
    # Mixed like "1.200,5": the last separator is the decimal mark.
    return float("".join(groups[:-1]) + "." + groups[-1]), 0


def parse_money(text: str) -> int | None:
    """The amount in đồng, or None when the text holds no clear amount."""
    tokens = _TOKEN.findall(fold_letters(text))
    total = 0.0
    found = False
    pending: tuple[float, int] | None = None  # a number waiting for its unit
    last_unit: int | None = None
    for number, word in tokens:
        if number:
            if pending is not None:
                break  # two numbers in a row: not one amount
            pending = _number(number)
            continue
        if word == "nua":
            pending = (0.5, 0)
            continue
        if word == "ruoi" and last_unit:
            total += 0.5 * last_unit
            continue
        unit = _UNITS.get(word)
        if unit is None:
            continue
        if pending is None:
            if word in {"ty", "trieu"} and not found:
                pending = (1.0, 1)  # "tỷ rưỡi", "triệu hai": one of the unit
            else:
                continue
        total += pending[0] * unit
        found = True
        last_unit = unit
        pending = None
    if pending is not None:
        value, digits = pending
        if found and last_unit and last_unit >= 10**6 and 0 < digits <= 3:
            total += value * last_unit / 10**digits  # "1 tỷ 2" = 1,2 tỷ; "1 tỷ 250" = 1,25 tỷ
        elif not found:
            if value < _BARE_MINIMUM:
                return None
            total = value
            found = True
    if not found or total <= 0:
        return None
    return round(total)


def format_vnd(amount: int) -> str:
    """Say an amount the Vietnamese way: 300 triệu đồng, 1,5 tỷ đồng, 10 triệu đồng."""
    if amount >= 10**9:
        value = amount / 10**9
        unit = "tỷ"
    elif amount >= 10**6:
        value = amount / 10**6
        unit = "triệu"
    else:
        return f"{amount:,}".replace(",", ".") + " đồng"
    text = f"{value:.3f}".rstrip("0").rstrip(".").replace(".", ",")
    return f"{text} {unit} đồng"


_DIGIT_WORDS = {
    "mot": 1, "hai": 2, "ba": 3, "bon": 4, "tu": 4, "nam": 5,
    "sau": 6, "bay": 7, "tam": 8, "chin": 9,
}  # fmt: skip
_NUMBER_WORDS = re.compile(
    r"\b((?:(?:mot|hai|ba|bon|tu|nam|sau|bay|tam|chin|muoi|tram|linh|le|lam|nham|mot)\s+)+)"
    r"(?=(?:ty|ti|trieu|tr|cu|nghin|ngan)\b)"
)


def _words_value(words: list[str]) -> int | None:
    """The value of a number said in words below 1000 ("hai tram", "nam muoi", "muoi lam"), or None."""
    value, i = 0, 0
    if len(words) >= 2 and words[0] in _DIGIT_WORDS and words[1] == "tram":
        value, i = 100 * _DIGIT_WORDS[words[0]], 2
        if words[i : i + 1] and words[i] in {"linh", "le"}:
            i += 1
            if words[i : i + 1] and words[i] in _DIGIT_WORDS and i == len(words) - 1:
                return value + _DIGIT_WORDS[words[i]]
            return None
    rest = words[i:]
    if not rest:
        return value or None
    if rest[0] == "muoi":  # mười: 10 to 19
        tens, rest = 10, rest[1:]
    elif len(rest) >= 2 and rest[0] in _DIGIT_WORDS and rest[1] == "muoi":
        tens, rest = 10 * _DIGIT_WORDS[rest[0]], rest[2:]
    else:
        tens = 0
    if len(rest) > 1:
        return None
    if rest:
        unit = {"lam": 5, "nham": 5, "mot": 1}.get(rest[0]) if tens else None
        unit = unit if unit is not None else _DIGIT_WORDS.get(rest[0])
        if unit is None:
            return None
        return value + tens + unit
    return (value + tens) or None


def spell_numbers(folded: str) -> str:
    """Numbers said in words before a money unit, in digits: "hai tram trieu" -> "200 trieu".
    Words before the number that are not part of it ("lam hai tram trieu") are left alone."""

    def replace(match: re.Match[str]) -> str:
        words = match.group(1).split()
        for start in range(len(words)):
            value = _words_value(words[start:])
            if value is not None:
                return " ".join([*words[:start], str(value)]) + " "
        return match.group(0)

    return _NUMBER_WORDS.sub(replace, folded)
