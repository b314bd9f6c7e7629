"""The hub's clock: China Standard Time, ISO-8601 with offset, to the second.

A simulating deployment (``HUB_SIMULATE=1``: the demo) may run the hub's clock shifted by
``HUB_CLOCK_OFFSET_SECONDS``, so that a batch dated two weeks back is also registered then
and the simulated case processing that follows is never dated before it. Anywhere else the
setting is refused.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")
OFFSET_SETTING = "HUB_CLOCK_OFFSET_SECONDS"


def _offset() -> timedelta:
    text = os.environ.get(OFFSET_SETTING)
    if not text:
        return timedelta(0)
    from schemas.exceptions import TerminalError

    if os.environ.get("HUB_SIMULATE", "0").lower() not in ("1", "true", "yes"):
        raise TerminalError(f"{OFFSET_SETTING} shifts the hub's clock and is only for simulation (HUB_SIMULATE=1)")
    try:
        return timedelta(seconds=int(text))
    except ValueError:
        raise TerminalError(f"{OFFSET_SETTING}={text!r}; expected whole seconds") from None


def now() -> datetime:
    return (datetime.now(CST) + _offset()).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.astimezone(CST).isoformat()
