"""Vietnamese phone numbers as producers type them: "0912 345 678", "0912.345.678", "+84 912345678",
"84912345678". Mobile numbers only (03x, 05x, 07x, 08x, 09x); returned as ten digits "09xxxxxxxx"."""

from __future__ import annotations

import re

_MOBILE = re.compile(r"0[35789]\d{8}")
_SEPARATORS = re.compile(r"[\s.\-()]")


def normalise_phone(text: str) -> str | None:
    """The number as ``0xxxxxxxxx``, or None when ``text`` is not a Vietnamese mobile number."""
    digits = _SEPARATORS.sub("", text.strip())
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    elif len(digits) == 9 and digits[0] in "35789":
        digits = "0" + digits
    return digits if _MOBILE.fullmatch(digits) else None


def format_phone(phone: str) -> str:
    """0912345678 -> 0912 345 678, for reading back."""
    return f"{phone[:4]} {phone[4:7]} {phone[7:]}" if len(phone) == 10 else phone
