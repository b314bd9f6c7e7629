"""The hub's clock: China Standard Time, ISO-8601 with offset, to the second."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")


def now() -> datetime:
    return datetime.now(CST).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.astimezone(CST).isoformat()
