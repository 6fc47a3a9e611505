"""Automatic call distribution for chats, and the waiting customers' position updates.

One sweep (`tick`) runs whenever something changes (a case opens or closes, an agent changes
presence: events on the bus's `agents` topic) and every `dispatch_interval_s` anyway:

1. waiting cases, highest effective priority first (priority + aging), go to the online agent
   with a free seat in the case's team who has been idle longest; after `team_fallback_s` any
   team's agent may take it. Each assignment is atomic and capacity-checked in the database
   (CaseQueue.assign), so several web processes may sweep at once;
2. assigned cases whose customer was never told who joined (a crash between the assignment and
   the announcement) are announced;
3. waiting customers whose place in the queue changed are told their new position and an
   estimated wait (through the router, so every channel gets it), at most every
   `queue_update_interval_s` per customer.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from core.settings import Settings
from handoff.accounts import Account
from handoff.assignment import CaseAssignment
from handoff.presence import AgentState, Presence
from handoff.queue import AgentFull, Case, CaseConflict, CaseQueue

log = logging.getLogger(__name__)

DEFAULT_HANDLE_S = 300.0  # assumed chat length until there is history
ANNOUNCE_GRACE_S = 15.0  # a claim announces itself; only older silent assignments are repaired
WAKE_EVENTS = {"case_opened", "case_closed", "case_cancelled", "case_transferred", "presence"}


def estimate_wait(position: int, agents: list[AgentState], average_handle_s: float | None) -> float | None:
    """Seconds until a person picks up the case at `position`; None when no one is online."""
    if position <= 0 or not agents:
        return None
    free = sum(a.free_seats for a in agents)
    if position <= free:
        return 30.0
    seats = max(1, sum(a.capacity for a in agents))
    return round((position - free) * (average_handle_s or DEFAULT_HANDLE_S) / seats, 0)


def account_of(state: AgentState) -> Account:
    return Account(state.account_id, state.username, state.display_name, state.role)


class Dispatcher:
    def __init__(self, settings: Settings, queue: CaseQueue, presence: Presence, assignment: CaseAssignment) -> None:
        self.settings = settings
        self.queue = queue
        self.presence = presence
        self.assignment = assignment
        self.control = assignment.control
        self.bus = assignment.bus
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    # -- one sweep ---------------------------------------------------------------------------
    async def tick(self) -> list[Case]:
        async with self._lock:
            assigned = await self.assign_waiting()
            await self.announce_pending()
            await self.notify_positions()
            return assigned

    async def assign_waiting(self) -> list[Case]:
        waiting = await self.queue.list("waiting")
        if not waiting:
            return []
        agents = await self.presence.available()
        assigned: list[Case] = []
        now = time.time()
        for case in waiting:
            free = [a for a in agents if a.free_seats > 0]
            if not free:
                break
            pool = [a for a in free if case.team is None or case.team in a.teams]
            if not pool and now - case.created_at >= self.settings.team_fallback_s:
                pool = free
            for agent in sorted(pool, key=lambda a: (a.last_assigned_at, a.account_id)):
                try:
                    taken = await self.assignment.assign(case.id, account_of(agent), agent.capacity)
                except AgentFull:
                    agent.active = agent.capacity  # someone else filled their seats meanwhile
                    continue
                except CaseConflict:
                    break  # claimed or cancelled meanwhile
                agent.active += 1
                agent.last_assigned_at = now
                assigned.append(taken)
                break
        return assigned

    async def announce_pending(self, grace_s: float = ANNOUNCE_GRACE_S) -> None:
        for case in await self.queue.unannounced():
            if case.claimed_at and time.time() - case.claimed_at < grace_s or case.agent_id is None:
                continue
            state = await self.presence.get(case.agent_id)
            log.info("case %s: announcing %s after a restart", case.id, state.username)
            await self.assignment.announce(case, account_of(state), {"type": "case_assigned", "agent_id": state.account_id, "by": case.assigned_by})

    async def notify_positions(self) -> None:
        positions = await self.queue.positions()
        if not positions:
            return
        notices = await self.queue.notices()
        agents = await self.presence.available()
        handle = await self.queue.average_handle_seconds()
        now = time.time()
        for case_id, position in positions.items():
            told, told_at = notices.get(case_id, (None, None))
            if told == position:
                continue
            if told is not None and told_at and now - told_at < self.settings.queue_update_interval_s and position != 1:
                continue
            if not await self.queue.claim_notice(case_id, position, told):
                continue  # another web process told this customer already
            try:
                case = await self.queue.get(case_id)
                await self.control.queue_position(case, position, estimate_wait(position, agents, handle))
            except Exception:  # noqa: BLE001 - one broken conversation must not stop the sweep
                log.exception("could not tell case %s its position", case_id)

    # -- running in the web process ----------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        await self.announce_pending(grace_s=0.0)  # after a crash, before anything else
        self._tasks = [asyncio.create_task(self._loop()), asyncio.create_task(self._listen())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.dispatch_interval_s)
            self._wake.clear()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep dispatching through a database hiccup
                log.exception("dispatch sweep failed; retrying")
                await asyncio.sleep(1.0)

    async def _listen(self) -> None:
        events = self.bus.subscribe("agents")
        try:
            while True:
                event: dict[str, Any] = await events.get()
                if event.get("type") in WAKE_EVENTS:
                    self.wake()
        finally:
            self.bus.unsubscribe("agents", events)
