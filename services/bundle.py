"""Every service of one running process, built once from its collaborators (``bot.services`` builds
them from the settings; the dialogue builds a default set for tests and the console)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.broadcasts import CHANNELS, BroadcastService
from services.leads import LeadService
from services.messages import Messages
from services.personal_data import PersonalDataService
from services.questions import QuestionService
from services.reminders import ReminderService, ReminderSettings
from services.staff_directory import StaffDirectory


@dataclass(frozen=True)
class ServiceSet:
    staff: StaffDirectory
    leads: LeadService
    questions: QuestionService
    broadcasts: BroadcastService
    reminders: ReminderService
    personal_data: PersonalDataService

    @property
    def channels(self) -> tuple[str, ...]:
        """Where broadcasts and reminders go."""
        return self.broadcasts.channels


def build_service_set(
    messages: Messages,
    staff_telegram_ids: Iterable[int | str] = (),
    reminder_settings: ReminderSettings | None = None,
    channels: tuple[str, ...] = CHANNELS,
    retention_months: int = 24,
) -> ServiceSet:
    staff = StaffDirectory.of(staff_telegram_ids)
    return ServiceSet(
        staff=staff,
        leads=LeadService(messages, staff),
        questions=QuestionService(messages, staff),
        broadcasts=BroadcastService(staff, channels),
        reminders=ReminderService(messages, reminder_settings or ReminderSettings(), channels),
        personal_data=PersonalDataService(retention_months),
    )
