"""The statistics of a period and a province: questions per day, the topics of what was asked, the
open "Hỏi cán bộ" questions grouped, leads by province, programme and status, the funnel from a
question to an approved project, and the delivery of broadcasts and reminders.

Every figure is an SQL aggregate (``storage.repositories.StatsRepo``); this module picks the period
(local days of the configured time zone), keeps a province account to its province, fills the days
without messages and merges open questions that fold alike.

What is counted, and why (the message log does not record which knowledge entry answered a
message, so a message's topic is not known):
- questions per day: typed text messages from producers (commands and button presses excluded;
  answers typed into a form included, as the log does not tell them apart),
  beside the "Hỏi cán bộ" questions asked that day;
- topics: the categories of the leads submitted in the period (what producers applied for);
- the funnel, distinct producers: asked (typed a question) -> checked eligibility (their profile
  holds answers to the eligibility questions, legal form or activity, and they wrote in the period;
  or they submitted) -> started an application (an application draft in their conversation, which
  moved in the period; or they submitted) -> submitted (a lead created in the period) -> approved
  (such a lead now has the status "approved").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.staff_scope import Scope
from storage.repositories import PROACTIVE_KINDS, Repos, StatsPeriod

DEFAULT_DAYS = 30
MAX_DAYS = 366
UNANSWERED_SHOWN = 10
FUNNEL_STEPS = ("asked", "checked", "started", "submitted", "approved")
DELIVERY_STATUSES = ("sent", "blocked", "failed", "waiting")


@dataclass(frozen=True)
class StatsFilter:
    """A period of local dates (both included) and a province (None: all those in scope)."""

    start: date
    end: date
    province: str | None = None

    @classmethod
    def default(cls, today: date) -> StatsFilter:
        return cls(today - timedelta(days=DEFAULT_DAYS - 1), today)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def period(self, tz: ZoneInfo) -> StatsPeriod:
        """The UTC instants of the period's local days. Rows are put into days by the zone's offset
        at the period's start: exact for zones without summer time, such as Asia/Ho_Chi_Minh."""
        start = datetime.combine(self.start, time(), tz)
        end = datetime.combine(self.end + timedelta(days=1), time(), tz)
        offset = start.utcoffset() or timedelta()
        return StatsPeriod(start.astimezone(UTC), end.astimezone(UTC), int(offset.total_seconds()))


def checked_filter(start: date | None, end: date | None, province: str | None, today: date) -> StatsFilter:
    """The filter asked for, made sound: missing dates default to the last 30 days, reversed dates
    are swapped, a period is at most a year (counted back from its end)."""
    default = StatsFilter.default(today)
    end = end or (start + timedelta(days=DEFAULT_DAYS - 1) if start else default.end)
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        start, end = end, start
    if (end - start).days >= MAX_DAYS:
        start = end - timedelta(days=MAX_DAYS - 1)
    return StatsFilter(start, end, province or None)


@dataclass
class Statistics:
    filter: StatsFilter
    province: str | None  # the province counted (a province account's always its own)
    days: list[str]
    questions: list[int]  # per day, in ``days`` order
    staff_questions: list[int]
    topics: list[tuple[str, int]]  # lead categories
    unanswered: list[tuple[str, int]]  # an example text per group, how many
    leads_by_province: list[tuple[str, int]]
    leads_by_programme: list[tuple[str, int]]
    leads_by_status: list[tuple[str, int]]
    funnel: list[tuple[str, int]]
    deliveries: dict[str, dict[str, int]] = field(default_factory=dict)

    def rows(self) -> list[tuple[str, str, int]]:
        """Every figure as (section, key, value), for the CSV file."""
        out: list[tuple[str, str, int]] = []
        out += [("questions_per_day", d, n) for d, n in zip(self.days, self.questions, strict=True)]
        out += [
            ("staff_questions_per_day", d, n) for d, n in zip(self.days, self.staff_questions, strict=True)
        ]
        out += [("topics", k, n) for k, n in self.topics]
        out += [("unanswered", k, n) for k, n in self.unanswered]
        out += [("leads_by_province", k, n) for k, n in self.leads_by_province]
        out += [("leads_by_programme", k, n) for k, n in self.leads_by_programme]
        out += [("leads_by_status", k, n) for k, n in self.leads_by_status]
        out += [("funnel", k, n) for k, n in self.funnel]
        for kind, counts in self.deliveries.items():
            out += [(f"delivery_{kind}", s, counts.get(s, 0)) for s in DELIVERY_STATUSES]
        return out


def statistics(repos: Repos, scope: Scope, wanted: StatsFilter, tz: ZoneInfo) -> Statistics:
    """The figures of ``wanted`` as ``scope`` may see them: a province account's are always its
    province's, whatever province was asked for."""
    province = wanted.province if scope.is_admin else scope.province
    within = StatsFilter(wanted.start, wanted.end, province)
    period = within.period(tz)
    stats = repos.stats
    days = [d.isoformat() for d in within.days()]
    asked = stats.questions_per_day(period, province)
    handed = stats.staff_questions_per_day(period, province)
    funnel = stats.funnel(period, province)
    deliveries = stats.deliveries(period, province)
    return Statistics(
        filter=within,
        province=province,
        days=days,
        questions=[asked.get(d, 0) for d in days],
        staff_questions=[handed.get(d, 0) for d in days],
        topics=stats.leads_by("category", period, province),
        unanswered=stats.unanswered_groups(period, province, UNANSWERED_SHOWN),
        leads_by_province=stats.leads_by("province", period, province),
        leads_by_programme=stats.leads_by("programme_id", period, province),
        leads_by_status=stats.leads_by("status", period, province),
        funnel=[(step, funnel[step]) for step in FUNNEL_STEPS],
        deliveries={
            kind: {s: deliveries[kind].get(s, 0) for s in DELIVERY_STATUSES} for kind in PROACTIVE_KINDS
        },
    )
