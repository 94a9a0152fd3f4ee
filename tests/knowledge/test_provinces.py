"""Province names: current, pre-merger, aliases, with and without diacritics."""

import pytest

from knowledge.loader import DEFAULT_DATA_DIR
from knowledge.provinces import Provinces


@pytest.fixture(scope="module")
def provinces() -> Provinces:
    return Provinces.load(DEFAULT_DATA_DIR / "provinces.yaml")


def test_there_are_34_units_6_cities(provinces: Provinces) -> None:
    assert len(provinces.units) == 34
    assert sorted(u.name for u in provinces.units if u.is_city) == sorted(
        ["Hà Nội", "Huế", "Hải Phòng", "Đà Nẵng", "TP Hồ Chí Minh", "Cần Thơ"]
    )


@pytest.mark.parametrize(
    ("typed", "current", "old"),
    [
        ("Đắk Lắk", "Đắk Lắk", None),
        ("dak lak", "Đắk Lắk", None),
        ("Phú Yên", "Đắk Lắk", "Phú Yên"),
        ("hoa binh", "Phú Thọ", "Hòa Bình"),
        ("Hoà Bình", "Phú Thọ", "Hòa Bình"),
        ("thai binh", "Hưng Yên", "Thái Bình"),
        ("binh duong", "TP Hồ Chí Minh", "Bình Dương"),
        ("tphcm", "TP Hồ Chí Minh", None),
        ("Sài Gòn", "TP Hồ Chí Minh", None),
        ("tỉnh Nghệ An", "Nghệ An", None),
        ("xa Tan Lap, huyen Dan Phuong, Ha Noi", "Hà Nội", None),
        ("o quang nam", "Đà Nẵng", "Quảng Nam"),
    ],
)
def test_resolve(provinces: Provinces, typed: str, current: str, old: str | None) -> None:
    found = provinces.resolve(typed)
    assert found is not None and found.province.name == current
    assert found.old_name == old


def test_unknown_place_is_none(provinces: Provinces) -> None:
    assert provinces.resolve("Paris") is None
