"""Eligibility pre-check: a producer's profile against every programme's criteria.

Each criterion type maps to one small function (``_CHECKS``) that returns an ``Outcome``: pass, fail
or unknown, one plain-Vietnamese reason (from ``data/texts/eligibility.yaml``) and the profile fields
it still needs. Criteria in a list are ANDed; ``any_of`` options are ORed. The verdict is always a
pre-check: the khuyến công centre confirms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from knowledge.loader import DEFAULT_DATA_DIR, KnowledgeBase
from knowledge.models import (
    Activity,
    ActivityCriterion,
    AnyOfCriterion,
    Criterion,
    FlagCriterion,
    LegalForm,
    LegalFormCriterion,
    PlaceType,
    Programme,
    RuralLocationCriterion,
    SupportLevel,
)
from knowledge.provinces import Provinces
from knowledge.yamlio import read_yaml


class Status(StrEnum):
    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not_eligible"
    UNKNOWN = "unknown"


class Profile(BaseModel):
    """What the chat knows about an establishment; every field may be missing."""

    model_config = ConfigDict(extra="ignore")

    legal_form: LegalForm | None = None
    activity: Activity | None = None
    sector: str | None = None
    province: str | None = None
    place_type: PlaceType | None = None
    craft_village: bool | None = None
    difficult_area: bool | None = None
    technology_line: bool | None = None
    new_to_area: bool | None = None
    cluster_investor: bool | None = None
    investment_cost_vnd: int | None = Field(default=None, ge=0)

    @field_validator("province", "sector", mode="before")
    @classmethod
    def _blank_is_missing(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value


@dataclass(frozen=True)
class Outcome:
    status: Status
    reason: str
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    programme: Programme
    status: Status
    reasons: tuple[str, ...]
    outcomes: tuple[Outcome, ...]
    max_support_vnd: int | None
    level: SupportLevel | None
    needs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.programme.id,
            "category": str(self.programme.category),
            "title": self.programme.title,
            "scope": self.programme.scope,
            "status": str(self.status),
            "reasons": list(self.reasons),
            "max_support_vnd": self.max_support_vnd,
            "needs": list(self.needs),
        }


@lru_cache(maxsize=4)
def _load_texts(path: Path) -> dict[str, Any]:
    return read_yaml(path)


@dataclass
class Context:
    """What a check may look at besides the profile."""

    profile: Profile
    provinces: Provinces
    today: date
    texts: dict[str, Any]
    province_text: str | None = None
    resolved: Any = field(default=None)

    def say(self, *path: str, **values: Any) -> str:
        node: Any = self.texts
        for key in path:
            node = node[key]
        return str(node).format(**values)

    def label(self, kind: str, value: StrEnum | None) -> str:
        return self.texts["labels"][kind].get(str(value), str(value)) if value else ""


def _legal_form(c: LegalFormCriterion, ctx: Context) -> Outcome:
    form = ctx.profile.legal_form
    if form is None:
        return Outcome(Status.UNKNOWN, ctx.say("legal_form", "unknown"), ("legal_form",))
    if form in c.allowed:
        return Outcome(Status.ELIGIBLE, ctx.say("legal_form", "pass", form=ctx.label("legal_form", form)))
    if form == LegalForm.LARGE_ENTERPRISE:
        return Outcome(Status.NOT_ELIGIBLE, ctx.say("legal_form", "fail_large_enterprise"))
    if form == LegalForm.UNREGISTERED:
        return Outcome(Status.NOT_ELIGIBLE, ctx.say("legal_form", "fail_unregistered"))
    return Outcome(
        Status.NOT_ELIGIBLE, ctx.say("legal_form", "fail_other", form=ctx.label("legal_form", form))
    )


def _activity(c: ActivityCriterion, ctx: Context) -> Outcome:
    act = ctx.profile.activity
    if act is None:
        return Outcome(Status.UNKNOWN, ctx.say("activity", "unknown"), ("activity",))
    if act == Activity.MINING and act in c.allowed:
        difficult = ctx.profile.difficult_area
        if difficult is None:
            return Outcome(Status.UNKNOWN, ctx.say("activity", "unknown_mining_area"), ("difficult_area",))
        if difficult:
            return Outcome(Status.ELIGIBLE, ctx.say("activity", "pass_mining_difficult"))
        return Outcome(Status.NOT_ELIGIBLE, ctx.say("activity", "fail_mining_not_difficult"))
    if act in c.allowed:
        return Outcome(Status.ELIGIBLE, ctx.say("activity", "pass", activity=ctx.label("activity", act)))
    key = f"fail_{act}" if f"fail_{act}" in ctx.texts["activity"] else "fail_other"
    return Outcome(Status.NOT_ELIGIBLE, ctx.say("activity", key, activity=ctx.label("activity", act)))


def _city_status(ctx: Context) -> tuple[bool, bool]:
    """(is a centrally-run city, city status only reported and unconfirmed)."""
    unit = ctx.resolved.province
    if unit.is_city:
        return True, False
    reported = unit.unconfirmed_city_from is not None and unit.unconfirmed_city_from <= ctx.today
    return False, reported


def _rural_location(c: RuralLocationCriterion, ctx: Context) -> Outcome:
    p = ctx.profile
    if p.craft_village:
        return Outcome(Status.ELIGIBLE, ctx.say("rural_location", "pass_craft_village"))
    if p.province is None:
        return Outcome(Status.UNKNOWN, ctx.say("rural_location", "unknown_province"), ("province",))
    if ctx.resolved is None:
        return Outcome(
            Status.UNKNOWN,
            ctx.say("rural_location", "unknown_unrecognised_province", text=p.province),
            ("province",),
        )
    name = ctx.resolved.province.name
    is_city, reported_city = _city_status(ctx)
    place = ctx.label("place_type", p.place_type) or ctx.say("labels", "place_type", "unknown")
    if not is_city and not reported_city:
        return Outcome(
            Status.ELIGIBLE, ctx.say("rural_location", "pass_province", place=place, province=name)
        )
    if p.place_type is None:
        return Outcome(
            Status.UNKNOWN, ctx.say("rural_location", "unknown_place_type", province=name), ("place_type",)
        )
    if p.place_type != PlaceType.WARD:
        key = "pass_city_commune" if is_city else "pass_province"
        return Outcome(Status.ELIGIBLE, ctx.say("rural_location", key, place=place, province=name))
    if reported_city:
        return Outcome(Status.UNKNOWN, ctx.say("rural_location", "unknown_unconfirmed_city", province=name))
    if p.craft_village is None:
        return Outcome(
            Status.UNKNOWN,
            ctx.say("rural_location", "unknown_craft_village", province=name),
            ("craft_village",),
        )
    return Outcome(Status.NOT_ELIGIBLE, ctx.say("rural_location", "fail_city_ward", province=name))


def _flag(c: FlagCriterion, ctx: Context) -> Outcome:
    value = getattr(ctx.profile, c.field)
    if value is None:
        return Outcome(Status.UNKNOWN, ctx.say("flag", c.field, "unknown"), (c.field,))
    if bool(value) == c.required:
        return Outcome(Status.ELIGIBLE, ctx.say("flag", c.field, "pass"))
    return Outcome(Status.NOT_ELIGIBLE, ctx.say("flag", c.field, "fail"))


def _any_of(c: AnyOfCriterion, ctx: Context) -> Outcome:
    options = [evaluate_all(option, ctx) for option in c.options]
    for wanted in (Status.ELIGIBLE, Status.UNKNOWN, Status.NOT_ELIGIBLE):
        for outcomes in options:
            if combine(outcomes) == wanted:
                decisive = [o for o in outcomes if o.status == wanted] or outcomes
                needs = tuple(dict.fromkeys(n for o in outcomes for n in o.needs))
                return Outcome(wanted, " ".join(o.reason for o in decisive), needs)
    return Outcome(Status.NOT_ELIGIBLE, ctx.say("any_of", "none"))


_CHECKS: dict[type, Callable[[Any, Context], Outcome]] = {
    LegalFormCriterion: _legal_form,
    ActivityCriterion: _activity,
    RuralLocationCriterion: _rural_location,
    FlagCriterion: _flag,
    AnyOfCriterion: _any_of,
}


def evaluate_all(criteria: list[Criterion], ctx: Context) -> list[Outcome]:
    return [_CHECKS[type(c)](c, ctx) for c in criteria]


def combine(outcomes: list[Outcome]) -> Status:
    if any(o.status == Status.NOT_ELIGIBLE for o in outcomes):
        return Status.NOT_ELIGIBLE
    if any(o.status == Status.UNKNOWN for o in outcomes):
        return Status.UNKNOWN
    return Status.ELIGIBLE


def _scope(programme: Programme, ctx: Context) -> Outcome | None:
    if programme.scope == "national":
        return None
    if ctx.profile.province is None or ctx.resolved is None:
        return Outcome(Status.UNKNOWN, ctx.say("scope", "unknown", scope=programme.scope), ("province",))
    if ctx.resolved.province.name == programme.scope:
        return Outcome(Status.ELIGIBLE, ctx.say("scope", "pass", scope=programme.scope))
    return Outcome(Status.NOT_ELIGIBLE, ctx.say("scope", "fail", scope=programme.scope))


def applicable_level(programme: Programme, profile: Profile) -> SupportLevel | None:
    """The most specific confirmed level whose conditions the profile meets."""
    fitting = [lv for lv in programme.levels if all(getattr(profile, flag) for flag in lv.when)]
    if not fitting:
        return None
    return max(fitting, key=lambda lv: (len(lv.when), lv.cap_vnd or 0))


def max_support(level: SupportLevel | None, cost: int | None) -> int | None:
    """percent × cost, capped; a fixed ceiling without a percent is the ceiling (or the cost if lower)."""
    if level is None:
        return None
    if level.percent is None:
        return min(level.cap_vnd, cost) if cost is not None and level.cap_vnd else level.cap_vnd
    if cost is None:
        return None
    amount = int(cost * level.percent / 100)
    return min(amount, level.cap_vnd) if level.cap_vnd else amount


class Evaluator:
    """Evaluates profiles against one knowledge base."""

    def __init__(self, kb: KnowledgeBase, texts_path: Path | None = None):
        self.kb = kb
        self.texts = _load_texts(texts_path or DEFAULT_DATA_DIR / "texts" / "eligibility.yaml")

    def context(self, profile: Profile, today: date | None = None) -> Context:
        resolved = self.kb.provinces.resolve(profile.province) if profile.province else None
        return Context(
            profile, self.kb.provinces, today or date.today(), self.texts, profile.province, resolved
        )

    def evaluate(self, programme: Programme, profile: Profile, today: date | None = None) -> Verdict:
        ctx = self.context(profile, today)
        outcomes = evaluate_all(programme.criteria, ctx)
        scope = _scope(programme, ctx)
        if scope is not None:
            outcomes.insert(0, scope)
        status = combine(outcomes)
        level = applicable_level(programme, profile)
        amount = None if status == Status.NOT_ELIGIBLE else max_support(level, profile.investment_cost_vnd)
        needs = tuple(dict.fromkeys(n for o in outcomes for n in o.needs)) if status == Status.UNKNOWN else ()
        return Verdict(
            programme, status, tuple(o.reason for o in outcomes), tuple(outcomes), amount, level, needs
        )

    def evaluate_all(self, profile: Profile, today: date | None = None) -> list[Verdict]:
        return [self.evaluate(p, profile, today) for p in self.kb.programmes]
