"""The inbox worker's limits under load (bot/inbox.py), without the network: how many updates it
hands to threads as the event loop lags, when it stops admitting new ones, and which channels it
leaves waiting because their replies already fill the send budget's next seconds."""

from __future__ import annotations

from bot.inbox import LAG_HIGH, LAG_LOW, Backlog, InboxWorker, next_limit
from storage.db import Database


def test_fewer_updates_in_hand_while_the_event_loop_lags_and_back_up_one_at_a_time() -> None:
    assert next_limit(8, LAG_HIGH * 2, 8) == 4
    assert next_limit(4, LAG_HIGH * 2, 8) == 2
    assert next_limit(1, 5.0, 8) == 1  # never none
    assert next_limit(2, (LAG_LOW + LAG_HIGH) / 2, 8) == 2
    assert next_limit(2, 0.0, 8) == 3
    assert next_limit(8, 0.0, 8) == 8


def test_admitting_stops_at_the_bound_and_saturated_channels_wait(database: Database) -> None:
    worker = InboxWorker(
        database, {}, give_up=lambda *_: None, max_backlog=10, reply_headroom={"telegram": 5, "zalo": 2}
    )
    assert worker.admitting and worker.saturated() == frozenset()
    worker.backlog = Backlog(waiting=9, replies={"telegram": 5, "zalo": 1})
    assert worker.admitting
    assert worker.saturated() == {"telegram"}
    worker._stored_since = 1  # stored since the last reading: counted until the next one
    assert not worker.admitting
    assert InboxWorker(database, {}, give_up=lambda *_: None).admitting  # 0: no bound
    worker.close()
