"""The 34 provincial units since 1/7/2025 and the old names that still reach the bot.

Loaded from ``data/provinces.yaml`` (staff-editable). ``Provinces.resolve`` accepts any spelling, with
or without diacritics, current or pre-merger names and aliases, and a free sentence that contains
one ("xa Tan Lap, huyen Dan Phuong, Ha Noi").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from knowledge.text import fold
from knowledge.yamlio import read_yaml

_PREFIXES = ("tinh ", "thanh pho ", "tp ", "tp. ")


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

    @property
    def slug(self) -> str:
        return fold(self.name).replace(" ", "-")


@dataclass(frozen=True)
class Resolution:
    """What a typed place name resolved to, and the old name it used if any."""

    province: Province
    old_name: str | None = None


@dataclass
class Provinces:
    units: list[Province]
    _index: dict[str, tuple[Province, str | None]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Provinces:
        raw = read_yaml(path)
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
        return provinces

    def _add(self, name: str, unit: Province, old_name: str | None) -> None:
        key = fold(name)
        self._index.setdefault(key, (unit, old_name))
        compact = key.replace(" ", "")
        self._index.setdefault(compact, (unit, old_name))

    def names(self) -> list[str]:
        return [u.name for u in self.units]

    def by_name(self, name: str) -> Province | None:
        found = self.resolve(name)
        return found.province if found else None

    def resolve(self, text: str) -> Resolution | None:
        """Find the province named in ``text`` (exact name first, then the longest name inside)."""
        key = fold(text)
        for prefix in _PREFIXES:
            if key.startswith(prefix) and key[len(prefix) :] in self._index:
                key = key[len(prefix) :]
                break
        hit = self._index.get(key) or self._index.get(key.replace(" ", ""))
        if hit:
            return Resolution(*hit)
        padded = f" {key} "
        best: tuple[int, tuple[Province, str | None]] | None = None
        for name, value in self._index.items():
            if " " not in name and len(name) < 4:
                continue
            if f" {name} " in padded and (best is None or len(name) > best[0]):
                best = (len(name), value)
        return Resolution(*best[1]) if best else None


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
