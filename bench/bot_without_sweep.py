"""``python -m bot run`` without its reminder sweep, for `bench.scale`: at national size that sweep
reads every subscriber (minutes and gigabytes before the set-based sweep lands) and would be measured
instead of the dashboard. Everything else is the real process, started the same way.

    .venv/bin/python -m bench.bot_without_sweep run
"""

from __future__ import annotations

import logging
import sys

from bot.cli import main
from bot.scheduler import ReminderScheduler

log = logging.getLogger(__name__)


async def _no_sweep(self: ReminderScheduler) -> None:
    log.warning("bench: the reminder sweep is off in this process")


if __name__ == "__main__":
    ReminderScheduler.start = _no_sweep  # type: ignore[method-assign]
    sys.exit(main())
