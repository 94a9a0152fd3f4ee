"""Eligibility pre-check: a producer's profile against every programme's criteria.

Each criterion type maps to one small function (``_CHECKS``) that returns an ``Outcome``: pass, fail
or unknown, one plain-Vietnamese reason (from ``data/texts/eligibility.yaml``) and the profile fields
it still needs. Criteria in a list are ANDed; ``any_of`` options are ORed. The verdict is always a
pre-check: the khuyến công centre confirms.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
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


def combine(outcomes: Sequence[Outcome]) -> Status:
    if any(o.status == Status.NOT_ELIGIBLE for o in outcomes):
        return Status.NOT_ELIGIBLE
    if any(o.status == Status.UNKNOWN for o in outcomes):
        return Status.UNKNOWN
    return Status.ELIGIBLE


def _scope(scope: str, ctx: Context) -> Outcome | None:
    if scope == "national":
        return None
    if ctx.profile.province is None or ctx.resolved is None:
        return Outcome(Status.UNKNOWN, ctx.say("scope", "unknown", scope=scope), ("province",))
    if ctx.resolved.province.name == scope:
        return Outcome(Status.ELIGIBLE, ctx.say("scope", "pass", scope=scope))
    return Outcome(Status.NOT_ELIGIBLE, ctx.say("scope", "fail", scope=scope))


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


@dataclass(frozen=True)
class Progress:
    """What the next question of a check depends on: the fields undecided programmes still need,
    and whether a programme still in play has a level for a whole technology line, or in percent of
    the cost (so the cost is worth asking)."""

    needed: frozenset[str] = frozenset()
    wants_line: bool = False
    wants_cost: bool = False

    @classmethod
    def of(cls, verdicts: Iterable[Verdict]) -> Progress:
        live = [v for v in verdicts if v.status != Status.NOT_ELIGIBLE]
        return cls(
            frozenset(n for v in live if v.status == Status.UNKNOWN for n in v.needs),
            any(_wants_line(v.programme) for v in live),
            any(_wants_cost(v.programme) for v in live),
        )


def _wants_line(programme: Programme) -> bool:
    return any("technology_line" in lv.when for lv in programme.levels)


def _wants_cost(programme: Programme) -> bool:
    return any(lv.percent for lv in programme.levels)


def _allowed(
    criteria: Iterable[Criterion], kind: type[LegalFormCriterion | ActivityCriterion]
) -> frozenset[str] | None:
    """The values a profile field may take for ``criteria`` to pass (None: any): what the criteria of
    ``kind`` at the top level (ANDed) all allow."""
    allowed: frozenset[str] | None = None
    for criterion in criteria:
        if isinstance(criterion, kind):
            values = frozenset(str(v) for v in criterion.allowed)
            allowed = values if allowed is None else allowed & values
    return allowed


@dataclass(frozen=True, slots=True)
class _Group:
    """Programmes of one scope with the same criteria: one evaluation decides them all."""

    rule: int  # the criteria's number among the distinct lists of criteria
    scope: str
    legal_forms: frozenset[str] | None
    activities: frozenset[str] | None
    positions: tuple[int, ...]  # the programmes' places in ``KnowledgeBase.programmes``
    wants_line: bool
    wants_cost: bool

    def ruled_out(self, profile: Profile) -> bool:
        """Certainly not eligible, without evaluating: a legal form or activity its criteria exclude
        (such a criterion fails, and one failing criterion fails the programme)."""
        form, activity = profile.legal_form, profile.activity
        return (form is not None and self.legal_forms is not None and form not in self.legal_forms) or (
            activity is not None and self.activities is not None and activity not in self.activities
        )


class _ProgrammeIndex:
    """The programmes grouped by scope and criteria, and indexed by scope and legal form, so a step
    of a check evaluates each distinct list of criteria once, and only for programmes that the
    answers so far have not already ruled out (another province, a legal form or activity excluded)."""

    def __init__(self, programmes: list[Programme]):
        self.programmes = programmes
        rules: dict[str, int] = {}
        self.rules: list[list[Criterion]] = []
        grouped: dict[tuple[str, int], list[int]] = {}
        for position, programme in enumerate(programmes):
            key = json.dumps([c.model_dump(mode="json") for c in programme.criteria], sort_keys=True)
            if key not in rules:
                rules[key] = len(self.rules)
                self.rules.append(programme.criteria)
            grouped.setdefault((programme.scope, rules[key]), []).append(position)
        self.by_scope: dict[str, list[_Group]] = {}
        self.by_scope_form: dict[tuple[str, str], list[_Group]] = {}
        for (scope, rule), positions in grouped.items():
            members = [programmes[p] for p in positions]
            group = _Group(
                rule,
                scope,
                _allowed(self.rules[rule], LegalFormCriterion),
                _allowed(self.rules[rule], ActivityCriterion),
                tuple(positions),
                any(_wants_line(p) for p in members),
                any(_wants_cost(p) for p in members),
            )
            self.by_scope.setdefault(scope, []).append(group)
            for form in LegalForm:
                if group.legal_forms is None or form in group.legal_forms:
                    self.by_scope_form.setdefault((scope, form), []).append(group)

    def groups(self, ctx: Context, scopes: Collection[str] | None) -> Iterator[_Group]:
        """The groups of ``scopes`` (None: every scope) a step must still evaluate."""
        profile = ctx.profile
        if ctx.resolved is not None:  # another province's programmes fail on their scope
            place = {"national", ctx.resolved.province.name}
            scopes = place if scopes is None else place & set(scopes)
        for scope in self.by_scope if scopes is None else scopes:
            if profile.legal_form is None:
                candidates = self.by_scope.get(scope, [])
            else:
                candidates = self.by_scope_form.get((scope, profile.legal_form), [])
            yield from (g for g in candidates if not g.ruled_out(profile))


class Evaluator:
    """Evaluates profiles against one knowledge base."""

    def __init__(self, kb: KnowledgeBase, texts_path: Path | None = None):
        self.kb = kb
        self.texts = _load_texts(texts_path or DEFAULT_DATA_DIR / "texts" / "eligibility.yaml")
        self._index = _ProgrammeIndex(kb.programmes)

    def context(self, profile: Profile, today: date | None = None) -> Context:
        resolved = self.kb.provinces.resolve(profile.province) if profile.province else None
        return Context(
            profile, self.kb.provinces, today or date.today(), self.texts, profile.province, resolved
        )

    def evaluate(self, programme: Programme, profile: Profile, today: date | None = None) -> Verdict:
        ctx = self.context(profile, today)
        return _verdict(programme, _outcomes(programme.scope, programme.criteria, ctx), profile)

    def evaluate_all(self, profile: Profile, today: date | None = None) -> list[Verdict]:
        return self.verdicts(profile, today)

    def verdicts(
        self, profile: Profile, today: date | None = None, scopes: Collection[str] | None = None
    ) -> list[Verdict]:
        """The verdict on every programme of ``scopes`` (None: all), in the knowledge base's order;
        each distinct list of criteria is evaluated once."""
        ctx = self.context(profile, today)
        index = self._index
        groups = (
            g for s in (index.by_scope if scopes is None else scopes) for g in index.by_scope.get(s, [])
        )
        decided: list[tuple[int, tuple[Outcome, ...]]] = []
        for group in groups:
            outcomes = _outcomes(group.scope, index.rules[group.rule], ctx)
            decided.extend((p, outcomes) for p in group.positions)
        decided.sort(key=lambda item: item[0])
        return [_verdict(index.programmes[p], outcomes, profile) for p, outcomes in decided]

    def eligible(
        self, profile: Profile, today: date | None = None, scopes: Collection[str] | None = None
    ) -> list[Programme]:
        """The programmes of ``scopes`` (None: all) this profile is eligible for, in order; only
        those its answers have not already ruled out are evaluated."""
        ctx = self.context(profile, today)
        positions: list[int] = []
        for group in self._index.groups(ctx, scopes):
            if combine(_outcomes(group.scope, self._index.rules[group.rule], ctx)) == Status.ELIGIBLE:
                positions.extend(group.positions)
        return [self._index.programmes[p] for p in sorted(positions)]

    def progress(self, profile: Profile, today: date | None = None) -> Progress:
        """``Progress.of`` every programme's verdict, evaluating only the programmes the answers so
        far have not ruled out, each distinct list of criteria once."""
        ctx = self.context(profile, today)
        needed: set[str] = set()
        wants_line = wants_cost = False
        for group in self._index.groups(ctx, None):
            outcomes = _outcomes(group.scope, self._index.rules[group.rule], ctx)
            status = combine(outcomes)
            if status == Status.NOT_ELIGIBLE:
                continue
            if status == Status.UNKNOWN:
                needed.update(n for o in outcomes for n in o.needs)
            wants_line = wants_line or group.wants_line
            wants_cost = wants_cost or group.wants_cost
        return Progress(frozenset(needed), wants_line, wants_cost)


def _outcomes(scope: str, criteria: list[Criterion], ctx: Context) -> tuple[Outcome, ...]:
    """The outcome of a programme's scope (when it is not national), then of each criterion."""
    outcomes = evaluate_all(criteria, ctx)
    where = _scope(scope, ctx)
    return (where, *outcomes) if where is not None else tuple(outcomes)


def _verdict(programme: Programme, outcomes: tuple[Outcome, ...], profile: Profile) -> Verdict:
    status = combine(outcomes)
    level = applicable_level(programme, profile)
    amount = None if status == Status.NOT_ELIGIBLE else max_support(level, profile.investment_cost_vnd)
    needs = tuple(dict.fromkeys(n for o in outcomes for n in o.needs)) if status == Status.UNKNOWN else ()
    return Verdict(programme, status, tuple(o.reason for o in outcomes), outcomes, amount, level, needs)
