"""What a flow step works with: the conversation state, the user's stored profile, the knowledge
catalog, the texts, and helpers to build replies and menus."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from handlers import callbacks as cb
from handlers.texts import Texts
from handlers.types import Button, Reply
from knowledge.catalog import Catalog
from knowledge.eligibility import Profile as EligibilityProfile
from services.bundle import ServiceSet
from storage.models import Profile, User, saved_id
from storage.repositories import Repos

ELIGIBILITY_FIELDS = (
    "legal_form",
    "activity",
    "province",
    "place_type",
    "craft_village",
    "difficult_area",
    "new_to_area",
    "technology_line",
    "cluster_investor",
    "investment_cost_vnd",
)


M = TypeVar("M", bound="FlowState")


class FlowState(BaseModel):
    """Base of a flow's own typed values (see ``State.values``). ``flow`` names the flow they belong
    to; keys an older stored row has and the model no longer knows are ignored."""

    model_config = ConfigDict(extra="ignore")
    flow: ClassVar[str] = ""


class Draft(BaseModel):
    """The application form's draft (``handlers/apply.py``): kept across menus and other flows
    until it is submitted, started over or its consent withdrawn."""

    model_config = ConfigDict(extra="ignore")

    id: str
    values: dict[str, Any] = Field(default_factory=dict)
    asked: list[str] = Field(default_factory=list)
    retries: int = 0
    editing: bool = False
    submitted: str | None = None  # the lead's reference code once sent


class Memory(BaseModel):
    """What outlives a flow. Stored in the conversation row next to the flow's own values, under
    keys starting with "_" (the shape rows have always had); other such keys of older rows
    (``_command_text``, ``_last_entry``) are dropped on load."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    # The last menu shown (a reply's, or a proactive message's delivered by the outbox), in the
    # outbox's encoding (``notify.buttons_to_rows``): "1", "2"... or an option's words pick from it.
    buttons: list[dict[str, Any]] = Field(default_factory=list, alias="_buttons")
    # The last free question, for "send it to staff".
    last_question: str | None = Field(default=None, alias="_last_question")
    # The question each of the last answers answered (entry id -> question), for 👍 / 👎 under them.
    answered: dict[str, str] | None = Field(default=None, alias="_answered")
    # What the last question said (province, legal form, amount), for "Lưu vào hồ sơ".
    read_facts: dict[str, Any] | None = Field(default=None, alias="_read")
    draft: Draft | None = Field(default=None, alias="_draft")

    @field_validator("buttons", mode="before")
    @classmethod
    def _from_pairs(cls, value: Any) -> Any:
        """Older rows kept the menu as ``[label, data]`` pairs."""
        if not isinstance(value, list):
            return value
        return [
            {"row": i, "label": item[0], "data": item[1]} if isinstance(item, list | tuple) else item
            for i, item in enumerate(value)
        ]


@dataclass
class State:
    """Where the user is: a flow, its step, the flow's own values, what outlives flows (``memory``)
    and the version of the last menu shown.

    A flow with typed values reads them with ``values(Model)``; ``data`` holds the raw values of
    flows without a model (and is where typed values are read from after a load).
    """

    flow: str = "menu"
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    menu_version: int = 0
    memory: Memory = field(default_factory=Memory)
    _values: FlowState | None = field(default=None, repr=False, compare=False)

    @classmethod
    def load(cls, flow: str, step: str | None, stored: dict[str, Any], menu_version: int) -> State:
        """The state of a conversation row (any shape it was ever stored in)."""
        memory = Memory.model_validate({k: v for k, v in stored.items() if k.startswith("_")})
        own = {k: v for k, v in stored.items() if not k.startswith("_")}
        return cls(flow, step, own, menu_version, memory)

    def stored(self) -> dict[str, Any]:
        """What goes into the conversation row: the flow's own values and the memory."""
        own = dict(self.data)
        if self._values is not None:
            own.update(self._values.model_dump(mode="json"))
        return own | self.memory.model_dump(mode="json", by_alias=True, exclude_none=True)

    def values(self, model: type[M]) -> M:
        """The current flow's own values as ``model``, changed in place and stored as they are.
        Outside the model's flow: its defaults, attached to nothing."""
        if self.flow != model.flow:
            return model()
        if not isinstance(self._values, model):
            self._values = model.model_validate(self.data)
        return self._values

    def reset(self) -> None:
        self.flow, self.step = "menu", None
        self.data, self._values = {}, None

    def go(self, flow: str, step: str | None = None, values: FlowState | None = None, **data: Any) -> None:
        """Enter ``flow`` at ``step`` with its typed ``values`` (or raw ``data``); memory is kept."""
        self.reset()
        self.flow, self.step = flow, step
        self.data, self._values = dict(data), values


@dataclass
class Ctx:
    """One step's world. Flows read and change ``state`` and the profile, and return replies."""

    repos: Repos
    user: User
    profile: Profile
    state: State
    catalog: Catalog
    texts: Texts
    now: datetime
    today: date
    services: ServiceSet
    # Set by the privacy flow: the dialogue deletes everything about this producer after the step.
    erase_requested: bool = False
    # The text after a /command ("/broadcast TEXT"), for the command's step.
    command_text: str = ""

    @property
    def user_id(self) -> int:
        return saved_id(self.user)

    # --- replies ---

    def reply(self, template: str, buttons: list[list[Button]] | None = None, **values: Any) -> Reply:
        text = self.texts.explain(self.texts.render(template, user=self.user, profile=self.profile, **values))
        return Reply(text=text, buttons=tuple(tuple(row) for row in (buttons or [])))

    def button(self, label_key: str, data: str) -> Button:
        return Button(self.texts.label("buttons", label_key), data)

    def button_raw(self, label: str, data: str) -> Button:
        return Button(label, data)

    def new_menu_version(self) -> int:
        """Call when asking a new question: answers to older questions become stale."""
        self.state.menu_version += 1
        return self.state.menu_version

    def main_menu_buttons(self) -> list[list[Button]]:
        label = self.texts.labels["menu"]
        return [
            [Button(label["browse"], cb.BROWSE)],
            [Button(label["eligibility"], cb.CHECK)],
            [Button(label["apply"], cb.APPLY)],
            [Button(label["reminders"], cb.REMINDERS)],
            [Button(label["ask_staff"], cb.ASK_STAFF)],
        ]

    def main_menu(self, template: str = "main_menu", **values: Any) -> Reply:
        return self.reply(template, self.main_menu_buttons(), **values)

    # --- profile ---

    def eligibility_profile(self) -> EligibilityProfile:
        values = {name: getattr(self.profile, name) for name in ELIGIBILITY_FIELDS}
        return EligibilityProfile.model_validate(values)

    def update_profile(self, **values: Any) -> None:
        self.profile = self.repos.profiles.update(self.user_id, **values)

    def note_interest(self, category: str) -> None:
        """Remember a category the producer looked at or applied for (broadcasts can target it)."""
        if category != "general" and category not in (self.profile.interests or []):
            self.update_profile(interests=sorted({*(self.profile.interests or []), category}))
