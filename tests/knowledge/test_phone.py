"""Vietnamese mobile numbers."""

import pytest

from knowledge.phone import format_phone, normalise_phone


@pytest.mark.parametrize(
    ("typed", "phone"),
    [
        ("0912345678", "0912345678"),
        ("0912 345 678", "0912345678"),
        ("0912.345.678", "0912345678"),
        ("091-234-5678", "0912345678"),
        ("+84 912 345 678", "0912345678"),
        ("+84912345678", "0912345678"),
        ("84912345678", "0912345678"),
        ("0382345678", "0382345678"),
        ("0701234567", "0701234567"),
        ("0851234567", "0851234567"),
        ("0561234567", "0561234567"),
        ("912345678", "0912345678"),
    ],
)
def test_valid(typed: str, phone: str) -> None:
    assert normalise_phone(typed) == phone


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "123",
        "0212345678",
        "09123456789",
        "091234567",
        "abc",
        "0112345678",
        "+1 912 345 678",
        "sdt cua em la 09",
    ],
)
def test_invalid(typed: str) -> None:
    assert normalise_phone(typed) is None


def test_format() -> None:
    assert format_phone("0912345678") == "0912 345 678"
