"""Typed shapes of the knowledge base: programme and FAQ entries, criteria, support levels, sources.

Everything here is data validated at load time (pydantic, ``extra="forbid"``), so a typo in a YAML
file fails when the knowledge base is loaded, never in the middle of a chat.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Category(StrEnum):
    """The category ids of ``design.md``; every entry has exactly one."""

    MACHINERY = "machinery"
    VOCATIONAL_TRAINING = "vocational_training"
    MANAGEMENT_TRAINING = "management_training"
    DEMO_MODEL = "demo_model"
    TYPICAL_PRODUCT = "typical_product"
    TRADE_FAIR = "trade_fair"
    SHOWROOM_ECOMMERCE = "showroom_ecommerce"
    BRANDING = "branding"
    CONSULTING = "consulting"
    CLEANER_PRODUCTION = "cleaner_production"
    ENERGY_SAVING = "energy_saving"
    INDUSTRIAL_CLUSTER = "industrial_cluster"
    GENERAL = "general"


class LegalForm(StrEnum):
    HOUSEHOLD_BUSINESS = "household_business"
    SME = "sme"
    LARGE_ENTERPRISE = "large_enterprise"
    COOP_GROUP = "coop_group"
    COOP = "coop"
    COOP_UNION = "coop_union"
    UNREGISTERED = "unregistered"


class Activity(StrEnum):
    PRODUCTION = "production"
    TRADING_ONLY = "trading_only"
    BRICK_KILN_MANUAL = "brick_kiln_manual"
    MINING = "mining"


class PlaceType(StrEnum):
    COMMUNE = "commune"
    WARD = "ward"
    SPECIAL_ZONE = "special_zone"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- criteria: a tagged union on ``type``; each is evaluated by a small function in eligibility.py ---


class LegalFormCriterion(Strict):
    """The establishment's legal form must be one of ``allowed``."""

    type: Literal["legal_form"]
    allowed: list[LegalForm] = Field(min_length=1)


class ActivityCriterion(Strict):
    """What the establishment does. ``mining`` passes only in a difficult area when allowed."""

    type: Literal["activity"]
    allowed: list[Activity] = Field(min_length=1)


class RuralLocationCriterion(Strict):
    """Decree 45 as amended by Decree 235: communes/wards/special zones of provinces, communes and
    special zones of centrally-run cities, or a recognised craft village anywhere."""

    type: Literal["rural_location"]


class FlagCriterion(Strict):
    """A yes/no fact about the establishment that must hold (e.g. ``difficult_area``)."""

    type: Literal["flag"]
    field: Literal["difficult_area", "new_to_area", "craft_village", "technology_line", "cluster_investor"]
    required: bool = True


class AnyOfCriterion(Strict):
    """Alternative profiles: passes when every criterion of at least one option passes."""

    type: Literal["any_of"]
    options: list[list[Criterion]] = Field(min_length=2)


Criterion = Annotated[
    LegalFormCriterion | ActivityCriterion | RuralLocationCriterion | FlagCriterion | AnyOfCriterion,
    Field(discriminator="type"),
]
AnyOfCriterion.model_rebuild()


# --- money and sources ---


class LegalBasis(Strict):
    """A legal text an entry rests on, with the address where staff can read it."""

    document: str = Field(min_length=5)
    article: str | None = None
    issued_on: date | None = None
    note: str | None = None
    source: str = Field(min_length=5)


class SupportLevel(Strict):
    """A confirmed support level in force. ``percent`` of the cost, at most ``cap_vnd``.

    ``when`` lists profile flags that must be true for this level to apply (e.g. a whole technology
    line); the evaluator picks the most specific matching level.
    """

    label: str
    percent: float | None = Field(default=None, gt=0, le=100)
    cap_vnd: int | None = Field(default=None, gt=0)
    per: str = Field(description="what the cap counts per, in Vietnamese: 'cơ sở', 'mô hình'...")
    funding: Literal["national", "local"]
    when: list[Literal["technology_line", "difficult_area", "new_to_area", "craft_village"]] = []
    basis: str = Field(min_length=5, description="the legal text that sets this level")

    @model_validator(mode="after")
    def _has_amount(self) -> SupportLevel:
        if self.percent is None and self.cap_vnd is None:
            raise ValueError("a support level needs percent, cap_vnd or both")
        return self


class HistoricalLevel(Strict):
    """A level that was in force once; shown only with its years and the words 'trước đây'."""

    text: str
    years: str
    basis: str


class Document(Strict):
    """A document to prepare; ``only_for`` limits it to some legal forms."""

    text: str
    only_for: list[LegalForm] = []


class Contact(Strict):
    """One provincial khuyến công centre, filled in by staff (nothing is confirmed centrally)."""

    province: str
    centre: str = ""
    phone: str = ""
    address: str = ""
    email: str = ""
    website: str = ""
    zalo: str = ""  # the centre's Zalo number or official account
    hours: str = ""  # office hours, as the centre states them


# --- entries ---


class EntryBase(Strict):
    # Also the file name; kept short because button data carries it.
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{2,47}$")
    category: Category
    title: str = Field(min_length=5)
    aliases: list[str] = []
    scope: str = Field(default="national", description="'national' or a province name from provinces.yaml")
    valid_from: date
    valid_to: date | None = None
    legal_basis: list[LegalBasis] = Field(min_length=1)
    questions: list[str] = Field(min_length=2)
    keywords: list[str] = Field(min_length=3)
    related: list[str] = []
    # The first reply to a question about this entry: 1-3 short sentences that answer it directly
    # (yes / no / it depends and why), in plain words; the full card stays one tap away.
    short_answer: str | None = Field(default=None, min_length=20, max_length=420)

    @model_validator(mode="after")
    def _dates_in_order(self) -> EntryBase:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self


class Programme(EntryBase):
    """One support programme (a support content at one funding level and scope)."""

    kind: Literal["programme"]
    summary: str = Field(min_length=20)
    what_is_supported: list[str] = Field(min_length=1)
    conditions: list[str] = Field(min_length=1, description="who qualifies, in plain words, for users")
    criteria: list[Criterion] = Field(min_length=1, description="the same conditions, machine-checkable")
    levels: list[SupportLevel] = []
    level_note: str | None = Field(default=None, description="said when no confirmed level is shown")
    historical_levels: list[HistoricalLevel] = []
    documents: list[Document] = Field(min_length=1)
    how_to_apply: list[str] = Field(min_length=1)
    where_to_apply: str
    timing: str

    @model_validator(mode="after")
    def _levels_or_note(self) -> Programme:
        if not self.levels and not self.level_note:
            raise ValueError("a programme without confirmed levels needs a level_note")
        if self.category == Category.GENERAL:
            raise ValueError("programmes cannot be in category 'general'; use a faq entry")
        return self


class Faq(EntryBase):
    """A general question with a plain answer."""

    kind: Literal["faq"]
    answer: str = Field(min_length=20)


Entry = Annotated[Programme | Faq, Field(discriminator="kind")]


class OutOfScopeTopic(Strict):
    """A neighbouring topic khuyến công does not cover (a bank loan, taxes, crops...), with a short
    truthful answer and who does handle it. Searched like an entry; it wins over a weak match."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{2,47}$")
    title: str = Field(min_length=5)
    answer: str = Field(min_length=20, max_length=600)
    handled_by: str = Field(min_length=3)
    see_also: list[str] = []
    questions: list[str] = Field(min_length=3)
    keywords: list[str] = Field(min_length=2)


class OutOfScopeFile(Strict):
    topics: list[OutOfScopeTopic]


class SynonymGroup(Strict):
    """Phrases that mean the same thing for search (any spelling; folded at load)."""

    terms: list[str] = Field(min_length=2)


class SynonymFile(Strict):
    groups: list[SynonymGroup]
    abbreviations: dict[str, str] = {}
    fillers: list[str] = []
