"""What a flow step works with: the conversation state, the user's stored profile, the knowledge
catalog, the texts, and helpers to build replies and menus."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from handlers import callbacks as cb
from handlers.texts import Texts
from handlers.types import Button, Reply
from knowledge.catalog import Catalog
from knowledge.eligibility import Profile as EligibilityProfile
from services.bundle import ServiceSet
from storage.models import Profile, User
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


@dataclass
class State:
    """Where the user is: a flow, its step, the flow's data, and the version of the last menu shown."""

    flow: str = "menu"
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    menu_version: int = 0

    def reset(self) -> None:
        self.flow, self.step = "menu", None
        keep = {k: v for k, v in self.data.items() if k.startswith("_")}
        self.data = keep

    def go(self, flow: str, step: str | None = None, **data: Any) -> None:
        self.reset()
        self.flow, self.step = flow, step
        self.data.update(data)


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
        self.profile = self.repos.profiles.update(self.user.id, **values)

    def note_interest(self, category: str) -> None:
        """Remember a category the producer looked at or applied for (broadcasts can target it)."""
        if category != "general" and category not in (self.profile.interests or []):
            self.update_profile(interests=sorted({*(self.profile.interests or []), category}))
