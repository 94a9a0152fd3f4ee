"""Vietnamese folding and raw-typing decoding."""

import unicodedata

import pytest

from knowledge.text import decode_typing, fold

ALL_LETTERS = "aàáảãạăằắẳẵặâầấẩẫậeèéẻẽẹêềếểễệiìíỉĩịoòóỏõọôồốổỗộơờớởỡợuùúủũụưừứửữựyỳýỷỹỵđ"


def test_every_vietnamese_letter_folds_to_ascii() -> None:
    for letter in ALL_LETTERS + ALL_LETTERS.upper():
        folded = fold(letter)
        assert folded.isascii() and len(folded) == 1, letter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hỗ trợ máy móc", "ho tro may moc"),
        ("ĐĂNG KÝ", "dang ky"),
        ("thuỷ / thủy", "thuy thuy"),
        ("Nghị định 98/2018/NĐ-CP", "nghi dinh 98 2018 nd cp"),
        ("  dạ,   cho em hỏi!!! ", "da cho em hoi"),
        (unicodedata.normalize("NFD", "tiết kiệm điện"), "tiet kiem dien"),
    ],
)
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("hoox", "ho"),
        ("trowj", "tro"),
        ("mays", "may"),
        ("mocs", "moc"),
        ("ddaof", "dao"),
        ("taoj", "tao"),
        ("ho64", "ho"),
        ("tro75", "tro"),
        ("tieest", "tiet"),
    ],
)
def test_decode_telex_and_vni(typed: str, expected: str) -> None:
    vocabulary = {"ho", "tro", "may", "moc", "dao", "tao", "tiet"}
    assert decode_typing(typed, vocabulary) == expected


def test_decode_leaves_unknown_words_alone() -> None:
    assert decode_typing("xyzzy", {"ho"}) is None
