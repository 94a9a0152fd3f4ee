"""Registration deadlines: the yearly calendar in ``data/deadlines.yaml`` (validated like the rest of
the knowledge base) and its expansion into dated deadlines for the database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from knowledge.models import Category
from knowledge.yamlio import read_yaml


class DeadlineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{2,63}$")
    month: int | None = Field(default=None, ge=1, le=12)
    day: int | None = Field(default=None, ge=1, le=31)
    once: dt.date | None = Field(default=None, alias="date")
    province: str | None = None
    category: Category | None = None
    programme: str | None = None
    action: str = Field(min_length=10)
    place: str = ""
    basis: str = Field(min_length=5)
    note: str = ""

    @model_validator(mode="after")
    def _one_kind_of_date(self) -> DeadlineSpec:
        yearly = self.month is not None and self.day is not None
        if yearly == (self.once is not None):
            raise ValueError("give either month and day (every year) or date (once)")
        if self.month is not None and self.day is not None:  # yearly
            dt.date(2024, self.month, self.day)  # a leap year: 29/2 is allowed
        return self

    def dates(self, today: dt.date, years_ahead: int = 1) -> list[dt.date]:
        """The dates of this deadline from ``today`` on (this year's and the next ``years_ahead``)."""
        if self.once is not None:
            return [self.once] if self.once >= today else []
        if self.month is None or self.day is None:
            raise ValueError("a deadline has either a date or a month and a day")  # the validator's rule
        found = []
        for year in range(today.year, today.year + years_ahead + 1):
            try:
                day = dt.date(year, self.month, self.day)
            except ValueError:  # 29/2 in a common year
                day = dt.date(year, self.month, 28)
            if day >= today:
                found.append(day)
        return found


class DeadlineFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deadlines: list[DeadlineSpec]


def load_deadlines(path: Path) -> list[DeadlineSpec]:
    """The calendar; raises ``ValueError`` naming the deadline and field of any mistake."""
    return parse_deadlines(read_yaml(path), path.name)


def parse_deadlines(raw: Any, name: str = "deadlines.yaml") -> list[DeadlineSpec]:
    """The calendar from the parsed YAML of file ``name`` (raises as ``load_deadlines``)."""
    raw = raw or {"deadlines": []}
    try:
        specs = DeadlineFile.model_validate(raw).deadlines
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{name}: {details}") from exc
    keys = [s.key for s in specs]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise ValueError(f"{name}: duplicate key(s) {', '.join(sorted(duplicates))}")
    return specs
