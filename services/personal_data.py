"""The producer's rights over their own data (Decree 13/2023/NĐ-CP): see what is stored, withdraw
consent to the processing of their applications, have everything erased; and the retention limit
after which the message log and stored updates of an inactive producer are deleted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.personal_data import DataSummary
from storage.repositories import Repos

DAYS_PER_MONTH = 30


@dataclass(frozen=True)
class PersonalDataService:
    retention_months: int = 24

    @staticmethod
    def summary(repos: Repos, user_id: int) -> DataSummary:
        return repos.personal_data.summary(user_id)

    @staticmethod
    def withdraw_consent(repos: Repos, user_id: int, now: datetime) -> int:
        """Anonymise the producer's applications; returns how many."""
        return repos.personal_data.withdraw_consent(user_id, now)

    @staticmethod
    def erase(repos: Repos, user_id: int, now: datetime) -> int:
        return repos.personal_data.erase(user_id, now)

    def purge_expired(self, repos: Repos, now: datetime) -> int:
        """Delete what is older than the retention limit; returns how many rows."""
        return repos.personal_data.purge_older_than(
            now - timedelta(days=DAYS_PER_MONTH * self.retention_months)
        )
