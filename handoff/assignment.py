"""Giving a case to an agent: one service for every way it happens.

A claim (an agent takes it), an auto-assignment (the dispatcher), a transfer to a named agent
and a supervisor's takeover each move the case in the queue with their own compare-and-set,
and then end the same way: the customer is told who joined, the case is marked announced (so a
restart does not announce it twice, handoff/dispatch.announce_pending), and every console hears
of it on the bus. That ending is written once, here.
"""
from __future__ import annotations

from typing import Any

from core.bus import Bus
from handoff.accounts import Account
from handoff.control import ConversationControl
from handoff.queue import Case, CaseQueue


class CaseAssignment:
    def __init__(self, queue: CaseQueue, control: ConversationControl, bus: Bus) -> None:
        self.queue = queue
        self.control = control
        self.bus = bus

    async def announce(self, case: Case, agent: Account, event: dict[str, Any]) -> None:
        """Tell the customer, mark it announced, tell the consoles (in this order: a crash in
        between leaves the case unannounced, and the dispatcher announces it again)."""
        await self.control.agent_joined(case, agent)
        await self.queue.mark_announced(case.id)
        await self.bus.publish("agents", {**event, "case": case.to_dict()})

    async def claim(self, case_id: int, agent: Account) -> Case:
        """An agent takes a waiting case (exactly one of simultaneous claimers wins)."""
        case = await self.queue.claim(case_id, agent.id)
        await self.announce(case, agent, {"type": "case_claimed", "agent_id": agent.id})
        return case

    async def assign(self, case_id: int, agent: Account, capacity: int) -> Case:
        """Auto-assignment to an agent with a free seat (AgentFull / CaseConflict if not)."""
        case = await self.queue.assign(case_id, agent.id, capacity)
        await self.announce(case, agent, {"type": "case_assigned", "agent_id": agent.id, "by": case.assigned_by})
        return case

    async def take_over(self, case_id: int, supervisor: Account) -> Case:
        """A supervisor takes a chat from whichever agent has it."""
        case = await self.queue.transfer_to_agent(case_id, None, supervisor.id, via="takeover")
        await self.announce(case, supervisor, {"type": "case_transferred", "from_agent_id": supervisor.id, "takeover": True})
        return case
