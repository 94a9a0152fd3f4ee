"""Money as producers type it."""

import pytest

from knowledge.money import format_vnd, parse_money


@pytest.mark.parametrize(
    ("typed", "amount"),
    [
        ("500 triệu", 500_000_000),
        ("500 trieu dong", 500_000_000),
        ("800tr", 800_000_000),
        ("800 củ", 800_000_000),
        ("1,2 tỷ", 1_200_000_000),
        ("1.2 ty", 1_200_000_000),
        ("1 tỷ 2", 1_200_000_000),
        ("1 ty 250", 1_250_000_000),
        ("1 tỷ 200 triệu", 1_200_000_000),
        ("tỷ rưỡi", 1_500_000_000),
        ("1 tỷ rưỡi", 1_500_000_000),
        ("nửa tỷ", 500_000_000),
        ("1.200.000.000", 1_200_000_000),
        ("1,200,000,000 đ", 1_200_000_000),
        ("1200000000", 1_200_000_000),
        ("500k", 500_000),
        ("500 nghìn", 500_000),
        ("300 ngàn đồng", 300_000),
        ("khoảng 350 triệu ạ", 350_000_000),
        ("1.200 triệu", 1_200_000_000),
        ("2,5 tỷ", 2_500_000_000),
        ("300 TRIỆU", 300_000_000),
    ],
)
def test_parse_money(typed: str, amount: int) -> None:
    assert parse_money(typed) == amount


@pytest.mark.parametrize("typed", ["500", "chưa biết", "", "abc", "0 đồng", "1 2 3"])
def test_unclear_amounts_are_none(typed: str) -> None:
    assert parse_money(typed) is None


@pytest.mark.parametrize(
    ("amount", "said"),
    [
        (300_000_000, "300 triệu đồng"),
        (1_500_000_000, "1,5 tỷ đồng"),
        (10_000_000, "10 triệu đồng"),
        (450_000_000, "450 triệu đồng"),
        (1_000_000_000, "1 tỷ đồng"),
        (500_000, "500.000 đồng"),
    ],
)
def test_format_vnd(amount: int, said: str) -> None:
    assert format_vnd(amount) == said


def test_numbers_said_in_words_before_a_unit() -> None:
    from knowledge.money import spell_numbers

    assert spell_numbers("may xat gao hai tram trieu") == "may xat gao 200 trieu"
    assert spell_numbers("mot tram hai muoi lam trieu") == "125 trieu"
    assert spell_numbers("ba tram linh nam trieu") == "305 trieu"
    assert spell_numbers("lam hai tram trieu") == "lam 200 trieu"  # "làm" is no number
    assert spell_numbers("nam nay lam gom") == "nam nay lam gom"  # no unit: left alone
