"""What one staff member may see and do: a national administrator (``admin``) everything; a
province account (``province``) only its province's leads, "Hỏi cán bộ" questions, deadlines
(national ones read-only) and broadcasts (its new ones always go to its province).

Every entry point (dashboard pages, the staff chat) asks one ``Scope``; nothing else decides.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from storage.models import Broadcast, Deadline, Lead, StaffAccount, StaffQuestion
from storage.repositories import LeadQuery

ADMIN = "admin"
PROVINCE = "province"


@dataclass(frozen=True)
class Scope:
    """``province`` None: the whole country (an administrator)."""

    province: str | None = None

    @classmethod
    def of(cls, account: StaffAccount) -> Scope:
        """An account's scope. A province account without a province (never created so) sees
        nothing rather than everything."""
        if account.role == ADMIN:
            return cls()
        return cls(province=account.province or "")

    @property
    def is_admin(self) -> bool:
        return self.province is None

    def _within(self, province: str | None) -> bool:
        return self.province is None or province == self.province

    def sees_lead(self, lead: Lead) -> bool:
        return self._within(lead.province)

    def sees_question(self, question: StaffQuestion) -> bool:
        return self._within(question.province)

    def sees_deadline(self, deadline: Deadline) -> bool:
        """Its province's deadlines and the national ones."""
        return deadline.province is None or self._within(deadline.province)

    def edits_deadline(self, deadline: Deadline) -> bool:
        """May withdraw it: a province account only its own province's, never a national one."""
        return self.is_admin or deadline.province == self.province

    def deadline_province(self, wanted: str | None) -> str | None:
        """The province a new deadline gets: a province account's is always its own."""
        return wanted if self.province is None else self.province

    def sees_broadcast(self, broadcast: Broadcast) -> bool:
        return self._within(broadcast.audience.get("province"))

    def audience_province(self, wanted: str | None) -> str | None:
        """The province a new broadcast goes to: a province account's is always its own."""
        return wanted if self.province is None else self.province

    def lead_query(self, query: LeadQuery) -> LeadQuery:
        """The lead filter within this scope (run in SQL): a province account's always names its
        province; asking for another one finds nothing."""
        if self.province is None:
            return query
        if not self.province or (query.province and query.province != self.province):
            # No province at all must not read as "no province filter": it finds nothing.
            return replace(query, province=self.province, nothing=True)
        return replace(query, province=self.province)
