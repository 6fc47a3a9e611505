"""Business hours in the business's own time zone: "mon-fri 09:00-17:00; sat 10:00-13:00".

Empty means always open. Outside these hours the customer is offered a ticket instead of a wait.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RULE = re.compile(r"^\s*([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class Window:
    day: int  # 0 = Monday
    start: dt.time
    end: dt.time


class BusinessHours:
    def __init__(self, spec: str, timezone: str = "UTC") -> None:
        try:
            self.zone = ZoneInfo(timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"business_timezone: unknown time zone {timezone!r}") from None
        self.windows = self._parse(spec)

    @staticmethod
    def _parse(spec: str) -> list[Window]:
        windows: list[Window] = []
        for part in (spec or "").lower().split(";"):
            if not part.strip():
                continue
            match = _RULE.match(part)
            if not match:
                raise ValueError(f"business_hours: cannot read {part.strip()!r}; expected e.g. 'mon-fri 09:00-17:00'")
            first, last, h1, m1, h2, m2 = match.groups()
            if first not in DAYS or (last and last not in DAYS):
                raise ValueError(f"business_hours: days are {', '.join(DAYS)}")
            start, end = dt.time(int(h1), int(m1)), dt.time(23, 59, 59) if (h2, m2) == ("24", "00") else dt.time(int(h2), int(m2))
            if end <= start:
                raise ValueError(f"business_hours: {part.strip()!r} ends before it starts")
            a, b = DAYS.index(first), DAYS.index(last or first)
            days = range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]
            windows.extend(Window(d, start, end) for d in days)
        return windows

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
