"""The process's Prometheus metrics, served at ``/metrics`` by the web server (``bot.web``).

Two kinds of figures:

- **Counted in the process** (``Metrics``): updates handled by channel and outcome, the reply
  latency (from the update's arrival in the inbox to its first reply accepted by the platform),
  messages sent by channel and kind, delivery errors, 429 answers, messages sent again after a
  sender died; plus the process's own memory, CPU and garbage collector. Each process counts its
  own: sum them across processes (``sum by (channel) (rate(khuyencong_messages_sent_total[5m]))``).
- **Read from the database at scrape time** (``DatabaseCollector``): the inbox backlog (updates
  waiting, the oldest wait), the outbox's queue (``pending`` and ``sending``) by channel and
  priority class (delivered, blocked and failed ones are the counters above), and each channel's
  send budget (how far ahead its next free slot is, whether a 429 paused it). Every process of a
  deployment reports the same values: take one of them (``max``), not the sum. The reads are a few
  indexed aggregates, cut off after ``timeout`` seconds; then ``khuyencong_database_metrics_up`` is
  0 and the database figures are left out of that scrape.

No label or value identifies a person: channels, statuses, kinds and counts only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.notifications import PRIORITY_BROADCAST, PRIORITY_NOTIFY, PRIORITY_REMINDER, PRIORITY_REPLY
from storage.db import Database
from storage.metrics import time_limit
from storage.models import utcnow
from storage.repositories import Repos

log = logging.getLogger(__name__)
CONTENT_TYPE = CONTENT_TYPE_LATEST
# From 50 ms (a reply on an idle bot) to a minute (a backlog the operator must hear about).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)
DATABASE_TIMEOUT = 2.0  # seconds a scrape may spend reading the database
PRIORITY_CLASSES = {
    PRIORITY_REPLY: "reply",
    PRIORITY_NOTIFY: "notification",
    PRIORITY_REMINDER: "reminder",
    PRIORITY_BROADCAST: "broadcast",
}
UPDATE_OUTCOMES = ("done", "failed", "retried")


@dataclass(frozen=True)
class Budget:
    """One channel's send budget as the process uses it: its row's key and the configured rate."""

    key: str
    rate_per_sec: float


class Metrics:
    """The counters of one process, on a registry of its own (no global state: every ``Runner`` and
    every test has its own)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.updates = Counter(
            "khuyencong_updates_handled",
            "Platform updates taken from the inbox, by outcome (done, failed after the last attempt, "
            "retried later).",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.reply_latency = Histogram(
            "khuyencong_reply_latency_seconds",
            "From an update's arrival in the inbox to its first reply accepted by the platform.",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sent = Counter(
            "khuyencong_messages_sent",
            "Messages accepted by the platform, by kind (reply, broadcast, reminder...).",
            ["channel", "kind"],
            registry=self.registry,
        )
        self.delivery_errors = Counter(
            "khuyencong_delivery_errors",
            "Messages the platform did not accept: blocked, permanent (refused), temporary (tried again).",
            ["channel", "reason"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "khuyencong_rate_limited",
            "Answers 429 (flood limit) received from the platform; each pauses the send budget.",
            ["channel"],
            registry=self.registry,
        )
        self.resent = Counter(
            "khuyencong_outbox_resent",
            "Messages whose sender died mid-call, sent again (the producer may get them twice).",
            registry=self.registry,
        )

    # --- what the inbox and the outbox report ---

    def update_handled(self, channel: str, outcome: str) -> None:
        self.updates.labels(channel, outcome).inc()

    def message_sent(self, channel: str, kind: str) -> None:
        self.sent.labels(channel, kind).inc()

    def reply_delivered(self, channel: str, arrived_at: datetime | None, delivered_at: datetime) -> None:
        """The first reply to an update (``arrived_at``: when the update was stored) went out."""
        if arrived_at is None:
            return
        if arrived_at.tzinfo is None:  # SQLite returns naive UTC
            arrived_at = arrived_at.replace(tzinfo=UTC)
        self.reply_latency.labels(channel).observe(max((delivered_at - arrived_at).total_seconds(), 0.0))

    def delivery_failed(self, channel: str, reason: str) -> None:
        self.delivery_errors.labels(channel, reason).inc()

    def flood_limited(self, channel: str) -> None:
        self.rate_limited.labels(channel).inc()

    def messages_resent(self, count: int) -> None:
        self.resent.inc(count)

    # --- serving ---

    def watch_database(
        self, db: Database, budgets: Mapping[str, Budget], timeout: float = DATABASE_TIMEOUT
    ) -> None:
        """Read the database figures (and the given channels' budgets) at every scrape."""
        self.registry.register(DatabaseCollector(db, budgets, timeout))

    def render(self) -> bytes:
        """The Prometheus text exposition (blocking: the database is read; call it from a thread)."""
        return generate_latest(self.registry)


class DatabaseCollector(Collector):
    """The figures every process reads the same from the shared database, at scrape time."""

    def __init__(self, db: Database, budgets: Mapping[str, Budget], timeout: float):
        self.db = db
        self.budgets = dict(budgets)
        self.timeout = timeout

    def describe(self) -> Iterable[Metric]:
        return []  # nothing read at registration; names are unique by construction

    def collect(self) -> Iterable[Metric]:
        started = time.perf_counter()
        try:
            families = self._read()
        except Exception as exc:  # a slow or unreachable database: this scrape goes without
            log.warning("metrics: reading the database failed (%s)", type(exc).__name__)
            families, up = [], 0.0
        else:
            up = 1.0
        yield from families
        yield _gauge("khuyencong_database_metrics_up", "1 when this scrape could read the database.", up)
        yield _gauge(
            "khuyencong_database_metrics_seconds",
            "Time this scrape spent reading the database.",
            time.perf_counter() - started,
        )

    def _read(self) -> list[Metric]:
        with self.db.session() as session, time_limit(session, self.timeout):
            repos = Repos(session)
            waiting, oldest = repos.inbox.backlog()
            outbox = repos.metrics.outbox_counts()
            budgets = {name: repos.budget.state(b.key) for name, b in self.budgets.items()}
        now = utcnow()
        oldest_wait = 0.0
        if oldest is not None:
            oldest = oldest if oldest.tzinfo is not None else oldest.replace(tzinfo=UTC)
            oldest_wait = max((now - oldest).total_seconds(), 0.0)
        families: list[Metric] = [
            _gauge("khuyencong_inbox_waiting", "Platform updates stored and not yet handled.", waiting),
            _gauge(
                "khuyencong_inbox_oldest_wait_seconds",
                "How long the oldest update not yet handled has waited (0 when none waits).",
                oldest_wait,
            ),
        ]
        by_status = GaugeMetricFamily(
            "khuyencong_outbox_messages",
            "Outbox messages waiting (pending) or being sent (sending), by channel and priority class "
            "(reply, notification, reminder, broadcast).",
            labels=["channel", "status", "priority"],
        )
        for count in outbox:
            priority = PRIORITY_CLASSES.get(count.priority, str(count.priority))
            by_status.add_metric([count.channel, count.status, priority], count.count)
        families.append(by_status)
        families.extend(self._budget_families(budgets, time.time()))
        return families

    def _budget_families(self, states: dict[str, tuple[float, float]], now: float) -> list[Metric]:
        ahead = GaugeMetricFamily(
            "khuyencong_send_budget_ahead_seconds",
            "How far ahead of now the channel's next free send slot is (0: the budget has room).",
            labels=["channel"],
        )
        paused = GaugeMetricFamily(
            "khuyencong_send_budget_paused",
            "1 while a 429 answer has paused the channel's sending for every process.",
            labels=["channel"],
        )
        pause_left = GaugeMetricFamily(
            "khuyencong_send_budget_pause_seconds",
            "Seconds left of the channel's pause after a 429 (0 when not paused).",
            labels=["channel"],
        )
        rate = GaugeMetricFamily(
            "khuyencong_send_budget_rate",
            "The channel's configured send budget, messages per second (all processes together).",
            labels=["channel"],
        )
        for channel, (next_slot, paused_until) in sorted(states.items()):
            ahead.add_metric([channel], max(next_slot - now, 0.0))
            paused.add_metric([channel], 1.0 if paused_until > now else 0.0)
            pause_left.add_metric([channel], max(paused_until - now, 0.0))
            rate.add_metric([channel], self.budgets[channel].rate_per_sec)
        return [ahead, paused, pause_left, rate]


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
