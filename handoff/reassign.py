"""Reassignment when an assigned agent goes quiet or offline.

`decide` is pure: given how long the customer has waited for the agent's reply, whether the
agent is still present and who else is free, it says keep / to_agent / to_queue. `Reassigner`
applies decisions with conditional UPDATEs in the queue's style (`... WHERE status='assigned'
AND agent_id=<the quiet agent>`), so a reply or a transfer that happens meanwhile wins and no
case is moved twice, across processes. The clock is injected.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.store import messages
from conversations.events import conversation_events
from core.settings import ReassignSettings
from handoff.presence import AgentState, Presence
from handoff.schema import agent_status, case_routing, cases

Clock = Callable[[], float]


@dataclass(frozen=True)
class Decision:
    action: str  # keep | to_agent | to_queue
    reason: str = ""  # agent_quiet | agent_offline
    to_agent_id: int | None = None
    waited_s: float = 0.0


def wait_limit(settings: ReassignSettings, team: str | None) -> float:
    return settings.team_wait_s.get(team or "", settings.wait_s)


def decide(
    settings: ReassignSettings, team: str | None, agent_id: int, agent_present: bool, waiting_since: float | None,
    now: float, free_agents: Sequence[AgentState],
) -> Decision:
    """Move the case when its agent went offline or left the customer waiting too long."""
    waited = 0.0 if waiting_since is None else max(0.0, now - waiting_since)
    if not agent_present:
        reason = "agent_offline"
    elif waiting_since is not None and waited >= wait_limit(settings, team):
        reason = "agent_quiet"
    else:
        return Decision("keep", waited_s=waited)
    if settings.target == "agent":
        pool = [a for a in free_agents if a.account_id != agent_id and a.free_seats > 0 and (team is None or team in a.teams)]
        if pool:
            best = min(pool, key=lambda a: (a.last_assigned_at, a.account_id))
            return Decision("to_agent", reason, best.account_id, waited)
    return Decision("to_queue", reason, None, waited)


@dataclass(frozen=True)
class Reassignment:
    case_id: int
    conversation_id: str
    from_agent_id: int
    decision: Decision


class Reassigner:
    def __init__(self, engine: AsyncEngine, presence: Presence, settings: ReassignSettings, clock: Clock = time.time) -> None:
        self._engine = engine
        self._presence = presence
        self.settings = settings
        self._clock = clock

    async def waiting_since(self, conn: Any, case: Any) -> float | None:
        """When the customer's oldest unanswered message was written, counted from the claim at the earliest."""
        last_agent = (await conn.execute(
            sa.select(sa.func.max(messages.c.created_at))
            .where(messages.c.conversation_id == case["conversation_id"], messages.c.sender == "agent")
        )).scalar()
        after = max(case["claimed_at"] or 0.0, last_agent or 0.0)
        unanswered = sa.select(sa.func.min(messages.c.created_at)).where(
            messages.c.conversation_id == case["conversation_id"], messages.c.sender == "customer",
            messages.c.created_at > (last_agent or 0.0),
        )
        first = (await conn.execute(unanswered)).scalar()
        return None if first is None else max(first, after)

    async def sweep(self) -> list[Reassignment]:
        now = self._clock()
        query = sa.select(cases, case_routing.c.team).select_from(
            cases.outerjoin(case_routing, case_routing.c.case_id == cases.c.id)
        ).where(cases.c.status == "assigned").order_by(cases.c.id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
            waits = {row["id"]: await self.waiting_since(conn, row) for row in rows}
        states = {s.account_id: s for s in await self._presence.all()}
        free = [s for s in states.values() if s.present and s.status == "online"]
        done: list[Reassignment] = []
        for row in rows:
            agent = states.get(row["agent_id"])
            # Gone = said they were working (online/away) and their console stopped checking in. An agent
            # whose status is offline (an API client never sets one) keeps their chats: only "quiet" applies.
            last_sign = max(row["claimed_at"] or 0.0, agent.seen_at if agent else 0.0)
            present = agent is None or agent.present or agent.status == "offline" or now - last_sign < self.settings.offline_grace_s
            decision = decide(self.settings, row["team"], row["agent_id"], present, waits[row["id"]], now, free)
            if decision.action == "keep":
                continue
            moved = await self.apply(row["id"], row["agent_id"], decision, {s.account_id: s.capacity for s in free})
            if moved.action == "keep":
                continue
            done.append(Reassignment(row["id"], row["conversation_id"], row["agent_id"], moved))
            for state in free:
                if state.account_id == moved.to_agent_id:
                    state.active += 1
                    state.last_assigned_at = now
        return done

    async def apply(self, case_id: int, from_agent_id: int, decision: Decision, capacities: dict[int, int]) -> Decision:
        """Move the case if it is still assigned to `from_agent_id`; falls back to the queue when the
        chosen agent filled up meanwhile. Returns what was done (keep: someone else moved it first)."""
        now = self._clock()
        still_theirs = [cases.c.id == case_id, cases.c.status == "assigned", cases.c.agent_id == from_agent_id]
        async with self._engine.begin() as conn:
            if decision.action == "to_agent" and decision.to_agent_id is not None:
                to = decision.to_agent_id
                theirs = cases.alias("theirs")
                active = sa.select(sa.func.count()).select_from(theirs).where(
                    theirs.c.agent_id == to, theirs.c.status == "assigned").scalar_subquery()
                await conn.execute(agent_status.update().where(agent_status.c.account_id == to).values(updated_at=now))
                result = await conn.execute(
                    cases.update().where(*still_theirs, active < capacities.get(to, 0)).values(agent_id=to, claimed_at=now)
                )
                if result.rowcount == 1:
                    await conn.execute(case_routing.update().where(case_routing.c.case_id == case_id).values(
                        assigned_by="reassign", announced=False))
                    await conn.execute(agent_status.update().where(agent_status.c.account_id == to).values(last_assigned_at=now))
                    await self._event(conn, case_id, from_agent_id, decision, now)
                    return decision
                decision = Decision("to_queue", decision.reason, None, decision.waited_s)
            result = await conn.execute(cases.update().where(*still_theirs).values(status="waiting", agent_id=None, claimed_at=None))
            if result.rowcount != 1:
                return Decision("keep", decision.reason, None, decision.waited_s)
            await conn.execute(case_routing.update().where(case_routing.c.case_id == case_id).values(
                assigned_by=None, announced=True, notified_position=None, notified_at=None))
            await self._event(conn, case_id, from_agent_id, decision, now)
        return decision

    async def _event(self, conn: Any, case_id: int, from_agent_id: int, decision: Decision, now: float) -> None:
        row = (await conn.execute(sa.select(cases.c.conversation_id, cases.c.channel).where(cases.c.id == case_id))).first()
        await conn.execute(conversation_events.insert().values(
            conversation_id=row[0], kind="reassigned", channel=row[1], at=now,
            data=json.dumps({"case_id": case_id, "from_agent_id": from_agent_id, "to_agent_id": decision.to_agent_id,
                             "action": decision.action, "reason": decision.reason, "waited_s": round(decision.waited_s, 1)}),
        ))
