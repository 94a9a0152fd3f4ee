"""The 34 provincial units since 1/7/2025 and the old names that still reach the bot.

Loaded from ``data/provinces.yaml`` (staff-editable) and ``data/places.yaml`` (old districts, towns,
provincial cities and everyday names, each with the old province it belonged to). ``Provinces.resolve``
accepts any spelling, with or without diacritics: a current or pre-merger province name, an alias,
a place ("huyện Gia Lâm", "Hội An", "Sài Gòn"), or a free sentence that contains one ("xa Tan Lap,
huyen Dan Phuong, Ha Noi"). A district or town name of two words or more counts anywhere in a
sentence ("dong van lam ruou ngo") when it names one place only and is not also an everyday phrase
(``not_alone`` in ``places.yaml``: "văn bản", "là gì", "vẫn làm"...); otherwise it counts only after
its unit word ("huyện", "thị xã"...) or as the whole answer, so "chợ mới" in a sentence is no place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from knowledge.text import fold
from knowledge.yamlio import read_yaml

_PREFIXES = ("tinh ", "thanh pho ", "tp ", "tp. ")
# Words that introduce a district-level name ("huyện Gia Lâm", "tx Từ Sơn", "Q. Hoàng Mai"), and the
# kinds of place each one can name (a name shared by a "quận" and a "thị xã" is told apart by it).
_UNIT_WORDS = {
    "huyen": ("district",),
    "h": ("district",),
    "quan": ("urban_district",),
    "q": ("urban_district",),
    "thi xa": ("town",),
    "tx": ("town",),
    "thanh pho": ("city", "town"),
    "tp": ("city", "town"),
    "thi tran": ("district",),
    "tt": ("district",),
}
# Kinds of place that count when named alone in a sentence (distinctive city and everyday names).
_BARE_KINDS = ("city", "area")


class PlaceRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: str = Field(pattern="^(district|urban_district|town|city|area)$")
    old_province: str
    aliases: list[str] = []
    special_zone: bool = False


@dataclass(frozen=True)
class Place:
    """A district-level unit (before 1/7/2025) or an everyday place name, and its old province."""

    name: str
    kind: str
    old_province: str
    special_zone: bool = False  # an island unit that became a special zone (đặc khu) on 1/7/2025

    @property
    def urban(self) -> bool:
        """A "quận": its communes were wards, so a producer there is probably in a phường now."""
        return self.kind == "urban_district"


class ProvinceRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: str = Field(pattern="^(province|city)$")
    formed_from: list[str] = Field(min_length=1)
    aliases: list[str] = []
    unconfirmed_city_from: date | None = None


@dataclass(frozen=True)
class Province:
    """One current provincial unit."""

    name: str
    is_city: bool
    formed_from: tuple[str, ...]
    unconfirmed_city_from: date | None = None


@dataclass(frozen=True)
class Resolution:
    """What a typed place name resolved to: the current province, the old province name used (or the
    old province of the place, when it was merged), the place itself when a district, town or
    everyday name was what matched, and the other provinces it could be when the name is shared."""

    province: Province
    old_name: str | None = None
    place: Place | None = None
    alternatives: tuple[Province, ...] = ()
    said: str = ""  # the words that named it, folded ("thai binh", "gia lam")

    @property
    def ambiguous(self) -> bool:
        return bool(self.alternatives)


@dataclass
class Provinces:
    units: list[Province]
    _index: dict[str, tuple[Province, str | None]] = field(default_factory=dict)
    _places: dict[str, list[Place]] = field(default_factory=dict)
    _by_old: dict[str, Province] = field(default_factory=dict)
    _not_alone: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path, places_path: Path | None = None) -> Provinces:
        provinces = cls.parse(read_yaml(path))
        if places_path is not None and places_path.exists():
            raw_places = read_yaml(places_path)
            provinces.add_places(raw_places.get("places", []), raw_places.get("not_alone", []))
        return provinces

    @classmethod
    def parse(cls, raw: Any) -> Provinces:
        """The provinces of a parsed ``provinces.yaml``."""
        records = [ProvinceRecord.model_validate(u) for u in raw["units"]]
        provinces = cls(units=[])
        for rec in records:
            unit = Province(
                name=rec.name,
                is_city=rec.type == "city",
                formed_from=tuple(rec.formed_from),
                unconfirmed_city_from=rec.unconfirmed_city_from,
            )
            provinces.units.append(unit)
            provinces._add(rec.name, unit, None)
            for old in rec.formed_from:
                provinces._add(old, unit, None if fold(old) == fold(rec.name) else old)
            for alias in rec.aliases:
                provinces._add(alias, unit, None)
            for old in rec.formed_from:
                provinces._by_old[old] = unit
        return provinces

    def add_places(self, items: list[dict[str, Any]], not_alone: Sequence[str] = ()) -> list[str]:
        """Index places from ``places.yaml``; returns problems (an unknown old province...).
        ``not_alone``: names that are also everyday phrases (they need their unit word)."""
        self._not_alone.update(fold(name) for name in not_alone)
        problems = []
        for i, item in enumerate(items):
            record = PlaceRecord.model_validate(item)
            if record.old_province not in self._by_old:
                problems.append(f"#{i + 1} {record.name}: unknown old_province {record.old_province!r}")
                continue
            place = Place(record.name, record.kind, record.old_province, record.special_zone)
            for name in (record.name, *record.aliases):
                key = fold(name)
                if key and place not in self._places.setdefault(key, []):
                    self._places[key].append(place)
        return problems

    def province_of(self, place: Place) -> Province:
        return self._by_old[place.old_province]

    def _add(self, name: str, unit: Province, old_name: str | None) -> None:
        key = fold(name)
        self._index.setdefault(key, (unit, old_name))
        compact = key.replace(" ", "")
        self._index.setdefault(compact, (unit, old_name))

    def names(self) -> list[str]:
        return [u.name for u in self.units]

    def resolve(self, text: str) -> Resolution | None:
        """Find the province named in ``text``: a province name (exact first, then the longest one
        inside the text), else a place of ``places.yaml`` (see the module's docstring)."""
        key = fold(text)
        for prefix in _PREFIXES:
            if key.startswith(prefix) and key[len(prefix) :] in self._index:
                key = key[len(prefix) :]
                break
        hit = self._index.get(key) or self._index.get(key.replace(" ", ""))
        if hit:
            return Resolution(*hit, said=key)
        padded = f" {key} "
        best: tuple[str, tuple[Province, str | None]] | None = None
        for name, value in self._index.items():
            if " " not in name and len(name) < 4:
                continue
            if f" {name} " in padded and (best is None or len(name) > len(best[0])):
                best = (name, value)
        place = self._find_place(key)
        if place is None or (best is not None and len(best[0]) >= len(place[0])):
            return Resolution(*best[1], said=best[0]) if best else None  # a province's own name first
        return self._place_resolution(place[1], place[0])

    def _find_place(self, key: str) -> tuple[str, list[Place]] | None:
        """The longest place name in ``key`` allowed where it stands (see ``_UNIT_WORDS``)."""
        if key in self._places:
            return key, self._places[key]
        padded = f" {key} "
        found: tuple[str, list[Place]] | None = None
        for name, places in self._places.items():
            if found is not None and len(name) <= len(found[0]):
                continue
            at = padded.find(f" {name} ")
            if at < 0:
                continue
            before = padded[:at].split()
            unit = (
                " ".join(before[-2:]) if " ".join(before[-2:]) in _UNIT_WORDS else before[-1:] and before[-1]
            )
            kinds = _UNIT_WORDS.get(unit) if isinstance(unit, str) else None
            if kinds is not None:
                allowed = [p for p in places if p.kind in kinds] or places
            elif " " not in name or name in self._not_alone:
                allowed = []
            elif len({p.old_province for p in places}) == 1:
                allowed = places  # one province only: a district, town or everyday name, said bare
            else:
                allowed = [p for p in places if p.kind in _BARE_KINDS]
            if allowed:
                found = (name, allowed)
        return found

    def _place_resolution(self, places: list[Place], said: str) -> Resolution:
        provinces: list[Province] = []
        for place in places:
            province = self.province_of(place)
            if province not in provinces:
                provinces.append(province)
        place = places[0]
        province = provinces[0]
        old = place.old_province if fold(place.old_province) != fold(province.name) else None
        return Resolution(province, old, place if len(provinces) == 1 else None, tuple(provinces[1:]), said)


# Words that name the kind of commune-level unit (since 7/2025: xã, phường, đặc khu; "thị trấn" was
# merged into xã but people still say it).
_PLACE_WORDS = (("thi tran", "commune"), ("dac khu", "special_zone"), ("phuong", "ward"), ("xa", "commune"))


def place_type_of(text: str) -> str | None:
    """``commune``, ``ward`` or ``special_zone`` for an address like "xã Tân Lập" or "P. Đông Hà"; the
    unit named first wins ("phường Tân Xã" is a ward); None when the text names none."""
    folded = f" {fold(text).replace(' p ', ' phuong ')} "
    if folded.startswith(" p "):
        folded = " phuong " + folded[3:]
    found = [(folded.find(f" {word} "), kind) for word, kind in _PLACE_WORDS if f" {word} " in folded]
    return min(found)[1] if found else None
