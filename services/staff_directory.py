"""Who the centre's staff are in the chats: the Telegram ids configured in ``STAFF_TELEGRAM_IDS``
(national administrators) plus every active dashboard account that linked one (with its account's
role and province)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.staff_scope import Scope
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

    def scopes(self, repos: Repos) -> dict[str, Scope]:
        """Every staff Telegram id with what it may see; a configured id is an administrator."""
        found = {i: Scope.of(account) for i, account in repos.staff.linked_accounts().items()}
        found.update({i: Scope() for i in self.configured})
        return found

    def scope_of(self, repos: Repos, user: User) -> Scope | None:
        """What this chat user may see as staff; None when they are not staff."""
        if user.channel != STAFF_CHANNEL:
            return None
        return self.scopes(repos).get(user.external_id)

    def is_staff(self, repos: Repos, user: User) -> bool:
        return self.scope_of(repos, user) is not None

    def chats(self, repos: Repos, province: str | None) -> list[User]:
        """The chat users (created on first use), in a stable order, of the staff who see what
        concerns ``province``: the administrators and that province's staff (no province: the
        administrators only)."""
        ids = [
            i
            for i, scope in sorted(self.scopes(repos).items())
            if scope.is_admin or (province is not None and scope.province == province)
        ]
        return [repos.users.get_or_create(STAFF_CHANNEL, i) for i in ids]
