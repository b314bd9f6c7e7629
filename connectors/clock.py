"""The hub's clock: China Standard Time, ISO-8601 with offset, to the second.

A simulating deployment (``HUB_SIMULATE=1``: the demo) may run the hub's clock shifted by
``HUB_CLOCK_OFFSET_SECONDS``, so that a batch dated two weeks back is also registered then
and the simulated case processing that follows is never dated before it. Anywhere else the
setting is refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

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


@contextmanager
def shifted(delta: timedelta) -> Iterator[None]:
    """Run the hub's clock ``delta`` off inside the block (simulation only): the demo and
    the tests register a batch dated in the past at that time, then let the processing
    simulator catch up to now."""
    saved = {name: os.environ.get(name) for name in (OFFSET_SETTING, "HUB_SIMULATE")}
    os.environ[OFFSET_SETTING] = str(int(delta.total_seconds()))
    os.environ["HUB_SIMULATE"] = "1"
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def running_at(moment: datetime) -> Any:
    """Run the hub's clock as if it were ``moment`` now (simulation only; see ``shifted``)."""
    return shifted(moment - datetime.now(CST))


def registration_shift(submitted_on: date, *, at: time = time(18, 30)) -> timedelta:
    """The shift that puts the hub's clock at ``at`` on the day a batch was submitted."""
    target = datetime.combine(submitted_on, at, CST)
    return target - datetime.now(CST)
