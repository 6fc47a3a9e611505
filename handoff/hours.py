"""Business hours in the business's own time zone (settings: a list of days/open/close lines).

Empty means always open. Outside these hours the customer is offered a ticket instead of a wait.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.settings import OpeningHours

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAYS = re.compile(r"^\s*([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s*$")
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class Window:
    day: int  # 0 = Monday
    start: dt.time
    end: dt.time


class BusinessHours:
    def __init__(self, lines: Sequence[OpeningHours], timezone: str = "UTC") -> None:
        try:
            self.zone = ZoneInfo(timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"business_timezone: unknown time zone {timezone!r}") from None
        self.windows = [w for line in lines for w in self._windows(line)]

    @staticmethod
    def _windows(line: OpeningHours) -> list[Window]:
        where = f"business_hours: {line.days} {line.open}-{line.close}"
        days, opens, closes = _DAYS.match(line.days.lower()), _TIME.match(line.open), _TIME.match(line.close)
        if not (days and opens and closes):
            raise ValueError(f"{where}: expected e.g. days: mon-fri, open: '09:00', close: '17:00'")
        first, last = days.groups()
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"{where}: days are {', '.join(DAYS)}")
        (h1, m1), (h2, m2) = opens.groups(), closes.groups()
        if int(h1) > 23 or int(m1) > 59 or int(m2) > 59 or int(h2) > 24:
            raise ValueError(f"{where}: not a time of day")
        start, end = dt.time(int(h1), int(m1)), dt.time(23, 59, 59) if (int(h2), int(m2)) == (24, 0) else dt.time(int(h2) % 24, int(m2))
        if end <= start:
            raise ValueError(f"{where}: ends before it starts")
        a, b = DAYS.index(first), DAYS.index(last or first)
        span = range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]
        return [Window(d, start, end) for d in span]

    @property
    def always_open(self) -> bool:
        return not self.windows

    def is_open(self, at: dt.datetime | float | None = None) -> bool:
        if self.always_open:
            return True
        local = self._local(at)
        return any(w.day == local.weekday() and w.start <= local.time() < w.end for w in self.windows)

    def next_opening(self, at: dt.datetime | float | None = None) -> dt.datetime | None:
        """The next moment the business opens (local time), or None if always open / open now."""
        if self.always_open or self.is_open(at):
            return None
        local = self._local(at)
        for offset in range(0, 8):
            day = (local + dt.timedelta(days=offset)).date()
            for window in sorted((w for w in self.windows if w.day == day.weekday()), key=lambda w: w.start):
                opening = dt.datetime.combine(day, window.start, tzinfo=self.zone)
                if opening > local:
                    return opening
        return None

    def _local(self, at: dt.datetime | float | None) -> dt.datetime:
        if at is None:
            return dt.datetime.now(self.zone)
        if isinstance(at, (int, float)):
            return dt.datetime.fromtimestamp(at, self.zone)
        return at.astimezone(self.zone) if at.tzinfo else at.replace(tzinfo=self.zone)
