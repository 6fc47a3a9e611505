"""One sweep over the time-driven parts of hand-off: SLA breaches, reassignment, follow-ups.

The dispatcher's loop (or the composition root's) calls `tick()` every `dispatch_interval_s`;
it changes the database and returns what happened, and the caller tells people (the customer's
channel through the router, the console through the bus). Each part is safe to run in several
processes at once (see sla.py, reassign.py, followup.py), so no leader election is needed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import Settings
from handoff.followup import Followup, Followups
from handoff.presence import Presence
from handoff.queue import CaseQueue
from handoff.reassign import Reassigner, Reassignment
from handoff.sla import Breach, SlaMonitor

Clock = Callable[[], float]


@dataclass
class TickResult:
    breaches: list[Breach] = field(default_factory=list)
    reassigned: list[Reassignment] = field(default_factory=list)
    followups_to_ask: list[Followup] = field(default_factory=list)  # claimed by this process: ask these customers now
    followups_expired: list[Followup] = field(default_factory=list)


class CaseTimers:
    def __init__(self, engine: AsyncEngine, settings: Settings, queue: CaseQueue, presence: Presence, clock: Clock = time.time) -> None:
        self._clock = clock
        self.sla = SlaMonitor(engine, settings.sla, clock)
        self.reassigner = Reassigner(engine, presence, settings.reassign, clock)
        self.followups = Followups(engine, queue, settings.followup, clock)
        self._last = clock()

    async def tick(self) -> TickResult:
        started = self._clock()
        result = TickResult(
            breaches=await self.sla.sweep(closed_since=self._last - 60.0),
            reassigned=await self.reassigner.sweep(),
        )
        for followup in await self.followups.due():
            if await self.followups.claim_ask(followup.id):
                result.followups_to_ask.append(await self.followups.get(followup.id))
        result.followups_expired = await self.followups.expire()
        self._last = started
        return result
