"""What a producer's message says about them, beyond its topic: the place (a province by any name,
an old district or town, an everyday name), the kind of place (xã, phường, đặc khu), the legal form,
"only buying and selling", an amount of money and whether it is one machine or a whole line, and a
number of trainees. The dialogue uses these to answer for this producer (an estimate with its
arithmetic, the right centre, the ward rule) and offers to keep them in the profile.

Words come from staff-editable data (the answer options of ``handlers/templates/questions.yaml``
and the ``words`` of ``labels.yaml``), gathered in ``Wording``; this module only finds them, folded,
as whole words.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from knowledge.money import parse_money, spell_numbers
from knowledge.provinces import Provinces, Resolution, place_type_of
from knowledge.text import decode_typing, fold

_MONEY = re.compile(
    r"(?:\b(?:nua|mot) (?:ty|ti)\b)"
    r"|(?:\b\d+(?:[.,]\d+)*\s*(?:ty|ti|trieu|tr|cu|k|nghin|ngan|dong|d|vnd)\b(?:\s*(?:ruoi|\d{1,3}\b))?)"
)
_TRAINEES = re.compile(r"\b(\d{1,4})\s*(?:hoc vien|hv|nguoi|lao dong|tho|cong nhan|hoc sinh|chi em)\b")
# What may stand between two amounts that add up: "và", "+", a comma, "với", and the next item's name.
_LISTED = re.compile(r"(?:\s*(?:,|\+|va|voi|them|cong)\s*)(?:\s*[a-z0-9]+){0,5}\s*")
_MONEY_UNITS = frozenset({"ty", "ti", "trieu", "tr", "cu", "nghin", "ngan", "dong", "k"})
_GLUED = re.compile(r"^(\d+(?:[.,]\d+)*)([a-z]+)$")


def _fix_units(folded: str) -> str:
    """Money units typed in raw Telex or glued to the number ("2 tyr", "1tyr", "800trieeuj")."""
    words = []
    for word in folded.split():
        glued = _GLUED.match(word)
        number, letters = (glued.group(1), glued.group(2)) if glued else ("", word)
        unit = decode_typing(letters, _MONEY_UNITS) if letters not in _MONEY_UNITS else letters
        if unit is not None and letters.isalpha():
            words.append(f"{number} {unit}".strip())
        else:
            words.append(word)
    return " ".join(words)


@dataclass(frozen=True)
class Wording:
    """The words that say each fact (folded or not: they are folded here)."""

    legal_forms: dict[str, list[str]]  # legal form value -> words for it
    trading: list[str]  # "only buying and selling"
    machines: list[str]  # one machine or piece of equipment ("máy", "lò sấy")
    lines: list[str]  # a whole production line ("dây chuyền")
    facets: dict[str, list[str]]  # what is asked about the topic: documents, where, when, payment...
    quantity: list[str]  # "how many, how much, how long"
    eligible: list[str]  # "can I get support": whether the producer qualifies at all


@dataclass(frozen=True)
class MessageFacts:
    """What was read; every part may be missing."""

    place: Resolution | None = None
    place_type: str | None = None
    legal_form: str | None = None
    trading_only: bool = False
    amount_vnd: int | None = None
    technology_line: bool | None = None
    trainees: int | None = None
    asks: tuple[str, ...] = ()  # the facets asked about, in the order of ``Wording.facets``
    asks_number: bool = False  # "mấy lần", "bao nhiêu", "bao lâu"
    asks_eligible: bool = False  # "có được hỗ trợ không"
    said: dict[str, str] = field(default_factory=dict)  # the words that gave each fact

    @property
    def province(self) -> str | None:
        return self.place.province.name if self.place is not None and not self.place.ambiguous else None

    def profile_values(self) -> dict[str, object]:
        """The facts worth keeping in the producer's profile (the eligibility profile's fields)."""
        values: dict[str, object] = {}
        if self.province:
            values["province"] = self.province
        if self.place_type:
            values["place_type"] = self.place_type
        if self.legal_form:
            values["legal_form"] = self.legal_form
        if self.trading_only:
            values["activity"] = "trading_only"
        if self.amount_vnd:
            values["investment_cost_vnd"] = self.amount_vnd
        if self.technology_line is not None:
            values["technology_line"] = self.technology_line
        return values


def _whole_word(folded: str, phrase: str) -> bool:
    return f" {phrase} " in f" {folded} "


def _best_option(folded: str, options: dict[str, list[str]]) -> tuple[str, str] | None:
    """The option whose words appear in the text; the longest phrase wins ("hộ gia đình có đăng ký")."""
    best: tuple[int, str, str] | None = None
    for value, words in options.items():
        for word in words:
            phrase = fold(word)
            if phrase and _whole_word(folded, phrase) and (best is None or len(phrase) > best[0]):
                best = (len(phrase), value, phrase)
    return (best[1], best[2]) if best else None


def find_money(text: str) -> tuple[int, str] | None:
    """The amount of money written with its unit ("200 triệu", "800tr", "1,2 tỷ", "1 tỷ 2", "hai trăm
    triệu"); amounts listed together ("máy cắt 300tr và máy mài 200tr") are added up."""
    folded = fold(text.replace(",", "COMMA").replace(".", "DOT"))
    folded = spell_numbers(_fix_units(folded.replace("comma", ",").replace("dot", ".")))
    found: list[tuple[int, str, int, int]] = []
    for match in _MONEY.finditer(folded):
        amount = parse_money(match.group(0))
        if amount and amount >= 1_000_000:
            found.append((amount, match.group(0), match.start(), match.end()))
    if not found:
        return None
    total, said = found[0][0], [found[0][1]]
    for (_, _, _, end), (amount, words, start, _) in itertools.pairwise(found):
        if not _LISTED.fullmatch(folded[end:start].replace(",", " , ")):
            break
        total += amount
        said.append(words)
    return total, " + ".join(said)


def read_message(text: str, provinces: Provinces, wording: Wording, normalised: str = "") -> MessageFacts:
    """Everything ``text`` says about the producer (see the module's docstring). ``normalised`` is
    the text as the search reads it (abbreviations expanded, Telex and typos repaired): words are
    looked for in both, a place in it when the text itself names none."""
    folded = f"{fold(text)} | {normalised}" if normalised else fold(text)
    said: dict[str, str] = {}
    place = provinces.resolve(text) or (provinces.resolve(normalised) if normalised else None)
    place_type = place_type_of(text)
    if place is not None and place.place is not None and place.place.special_zone:
        place_type = "special_zone"
    elif place_type is None and place is not None and place.place is not None and place.place.urban:
        place_type = "ward"  # a "quận" of a city: its communes were wards
    form = _best_option(folded, wording.legal_forms)
    if form:
        said["legal_form"] = form[1]
    trading = _best_option(folded, {"trading_only": wording.trading}) is not None
    money = find_money(text)
    if money:
        said["amount"] = money[1]
    line: bool | None = None
    if _best_option(folded, {"line": wording.lines}):
        line = True
    elif money and _best_option(folded, {"machine": wording.machines}):
        line = False  # "máy" alone may be sewing (may mặc): only with a price is it a machine
    trainees_match = _TRAINEES.search(folded)
    asks = tuple(name for name, words in wording.facets.items() if _best_option(folded, {name: words}))
    return MessageFacts(
        place=place,
        place_type=place_type,
        legal_form=form[0] if form else None,
        trading_only=trading,
        amount_vnd=money[0] if money else None,
        technology_line=line,
        trainees=int(trainees_match.group(1)) if trainees_match else None,
        asks=asks,
        asks_number=_best_option(folded, {"quantity": wording.quantity}) is not None,
        asks_eligible=_best_option(folded, {"eligible": wording.eligible}) is not None,
        said=said,
    )
