"""Vietnamese text folding and tokenising for search and matching.

``fold`` maps any Vietnamese text to lower-case ASCII words: NFC, lower case, tone and vowel marks
removed (including đ→d), punctuation turned into spaces. ``decode_typing`` turns raw Telex or VNI
typing ("hoox trowj", "ho64 tro75") back into folded syllables.
"""

from __future__ import annotations

import re
import unicodedata

_BASE = {
    "a": "àáảãạăằắẳẵặâầấẩẫậ",
    "e": "èéẻẽẹêềếểễệ",
    "i": "ìíỉĩị",
    "o": "òóỏõọôồốổỗộơờớởỡợ",
    "u": "ùúủũụưừứửữự",
    "y": "ỳýỷỹỵ",
    "d": "đ",
}
_FOLD_TABLE = {ord(ch): base for base, chars in _BASE.items() for ch in chars}
_NON_WORD = re.compile(r"[^a-z0-9]+")


def fold_letters(text: str) -> str:
    """NFC, lower case and Vietnamese letters without marks; punctuation and spacing kept."""
    return unicodedata.normalize("NFC", text).lower().translate(_FOLD_TABLE)


def fold(text: str) -> str:
    """Fold Vietnamese text to space-separated lower-case ASCII words."""
    text = fold_letters(text)
    if not text.isascii():
        # Rare letters outside the table (e.g. combining marks left over): strip them.
        text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", text).strip()


# --- raw Telex / VNI typing ---

_TELEX_TONES = set("sfrxj")
_VNI_DIGITS = set("123456789")
_VOWELS = set("aeiouy")


def _strip_telex(word: str) -> str:
    out = word
    if len(out) > 2 and out[-1] in _TELEX_TONES and any(c in _VOWELS for c in out[:-1]):
        out = out[:-1]
    out = out.replace("dd", "d")
    for pair in ("aa", "ee", "oo", "aw", "ow", "uw"):
        out = out.replace(pair, pair[0])
    # Telex allows the tone key right after the vowel: "tuyeenr" -> "tuyen", "mays" -> "may".
    out = re.sub(r"([aeiouy])[sfrxj](?=[a-z])", r"\1", out)
    return out


def _strip_vni(word: str) -> str:
    return "".join(c for c in word if c not in _VNI_DIGITS)


def decode_typing(word: str, vocabulary: frozenset[str] | set[str]) -> str | None:
    """Decode one raw Telex/VNI word into a known folded syllable, or None when nothing fits."""
    if word in vocabulary:
        return word
    if any(c.isdigit() for c in word) and any(c.isalpha() for c in word):
        candidate = _strip_vni(word)
        if candidate in vocabulary:
            return candidate
    candidate = _strip_telex(word)
    if candidate != word and candidate in vocabulary:
        return candidate
    return None
