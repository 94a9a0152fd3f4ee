"""The folded text a lead is searched by, kept in ``leads.search_text`` so search runs in SQL.

"nguyen" finds "Nguyễn", "kc-2026-000012" finds the reference, and the phone's digits are there
without spaces or dots, so "0912 345" and "0912.345" find "0912345678" once folded the same way.
"""

from __future__ import annotations

from knowledge.text import fold


def lead_search_text(
    ref_code: str | None,
    full_name: str | None,
    establishment_name: str | None,
    commune: str | None,
    phone: str | None,
) -> str:
    words = fold(" ".join(part for part in (ref_code, full_name, establishment_name, commune) if part))
    digits = "".join(c for c in phone or "" if c.isdigit())
    return f" {words} {digits} "


def search_needle(query: str) -> tuple[str, str]:
    """What to look for: the folded words of ``query`` and, when it has 3 or more, its digits."""
    digits = "".join(c for c in query if c.isdigit())
    return fold(query), digits if len(digits) >= 3 else ""
