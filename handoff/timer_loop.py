"""The periodic task of the web process that acts on time: reassignment, SLA breaches,
follow-ups, the mail outbox and retention.

Every `dispatch_interval_s` it runs `CaseTimers.tick` (handoff/timers.py) and tells people what
happened: a reassigned customer hears that someone else takes over (or that they are back in
the queue), the new agent joins the chat, both agents get an internal note and every console
(supervisors included) a `case_reassigned` event; breaches go to the consoles as `sla_breached`
(the events for the reports are written by the tick itself); due follow-ups are asked
(handoff/followup_flow.py). Then it drains the mail outbox and, every
`customers.retention_interval_s`, erases conversations older than `customers.retention_days`.

Safe with several web instances: each step claims its rows with a conditional UPDATE (or a
primary key) first, so only the instance that won a reassignment or a follow-up tells anyone,
and a mail is sent once. No leader election.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable


from core.bus import Bus
from handoff.accounts import Accounts
from handoff.care import CareServices
from handoff.control import ConversationControl
from handoff.followup_flow import Asked
from handoff.notes import NoteStore
from handoff.queue import CaseQueue
from handoff.reassign import Reassignment
from handoff.timers import TickResult
from mail.outbox import Delivery

log = logging.getLogger(__name__)
Clock = Callable[[], float]


@dataclass
class LoopResult:
    tick: TickResult
    asked: list[Asked] = field(default_factory=list)
    mails: list[Delivery] = field(default_factory=list)
    retained: int = 0


class TimerLoop:
    def __init__(self, care_services: CareServices, queue: CaseQueue, accounts: Accounts, notes: NoteStore,
                 control: ConversationControl, bus: Bus, persona: Any, interval_s: float, retention_interval_s: float,
                 clock: Clock = time.time) -> None:
        self.care = care_services
        self.queue = queue
        self.accounts = accounts
        self.notes = notes
        self.control = control
        self.bus = bus
        self.persona = persona
        self.interval_s = interval_s
        self.retention_interval_s = retention_interval_s
        self._clock = clock
        self._last_retention = 0.0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> LoopResult:
        async with self._lock:
            result = LoopResult(await self.care.timers.tick())
            for moved in result.tick.reassigned:
                await self._guarded(self.reassigned(moved), f"reassignment of case {moved.case_id}")
            for breach in result.tick.breaches:
                await self.bus.publish("agents", {"type": "sla_breached", "case_id": breach.case_id, "timer": breach.timer,
                                                  "target_s": breach.target_s, "elapsed_s": breach.elapsed_s})
            for followup in result.tick.followups_to_ask:
                asked = await self._guarded(self.care.flow.ask(followup), f"follow-up {followup.id}")
                if asked is not None:
                    result.asked.append(asked)
            for followup in result.tick.followups_expired:
                await self.bus.publish("agents", {"type": "followup_unanswered", "followup": followup.to_dict()})
            result.mails = await self.care.outbox.deliver_due()
            now = self._clock()
            if now - self._last_retention >= self.retention_interval_s:
                self._last_retention = now
                result.retained = await asyncio.to_thread(self.care.apply_retention)
            return result

    async def _guarded(self, work: Any, what: str) -> Any:
        """One customer's notice failing must not stop the others (the database change is done)."""
        try:
            return await work
        except Exception:  # noqa: BLE001
            log.exception("timer loop: telling people about %s failed", what)
            return None

    async def reassigned(self, moved: Reassignment) -> None:
        decision = moved.decision
        case = await self.queue.get(moved.case_id)
        business = await self.persona.current()
        old = await self.accounts.by_id(moved.from_agent_id)
        old_name = old.display_name if old else f"agent {moved.from_agent_id}"
        why = "went offline" if decision.reason == "agent_offline" else f"left the customer waiting {round(decision.waited_s)} s"
        if decision.action == "to_agent" and decision.to_agent_id is not None:
            new = await self.accounts.by_id(decision.to_agent_id)
            assert new is not None
            await self.control.notice(case.conversation_id, business.text("reassigned_agent"), "reassigned")
            await self.control.agent_joined(case, new)
            await self.queue.mark_announced(case.id)
            text = f"Reassigned from {old_name} to {new.display_name}: {old_name} {why}."
        else:
            await self.control.back_to_queue(case)
            await self.control.notice(case.conversation_id, business.text("reassigned_queue"), "reassigned")
            text = f"Back to the queue from {old_name}: {old_name} {why}."
        note = await self.notes.add(case.conversation_id, case.id, moved.from_agent_id, text, kind="reassigned")
        await self.bus.publish("agents", {
            "type": "case_reassigned", "case": (await self.queue.get(case.id)).to_dict(), "from_agent_id": moved.from_agent_id,
            "to_agent_id": decision.to_agent_id, "action": decision.action, "reason": decision.reason,
            "waited_s": round(decision.waited_s, 1), "note": note,
        })

    # -- running in the web process ----------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep the timers running through a database hiccup
                log.exception("timer loop tick failed; retrying")
                await asyncio.sleep(1.0)
