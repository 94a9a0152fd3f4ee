"""Who the centre's staff are in the chats: the Telegram ids configured in ``STAFF_TELEGRAM_IDS``
plus every active dashboard account that linked one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from storage.models import User
from storage.repositories import Repos

# Staff work in Telegram; Zalo and the console are producers' channels only.
STAFF_CHANNEL = "telegram"


@dataclass(frozen=True)
class StaffDirectory:
    configured: frozenset[str] = frozenset()

    @classmethod
    def of(cls, telegram_ids: Iterable[int | str]) -> StaffDirectory:
        return cls(frozenset(str(i) for i in telegram_ids))

    def telegram_ids(self, repos: Repos) -> set[str]:
        return set(self.configured) | repos.staff.linked_telegram_ids()

    def is_staff(self, repos: Repos, user: User) -> bool:
        return user.channel == STAFF_CHANNEL and user.external_id in self.telegram_ids(repos)

    def chats(self, repos: Repos) -> list[User]:
        """The staff's chat users (created on first use), in a stable order."""
        return [repos.users.get_or_create(STAFF_CHANNEL, i) for i in sorted(self.telegram_ids(repos))]
