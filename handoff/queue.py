"""The persistent queue of cases waiting for, or handled by, a person.

Claims are one conditional UPDATE (`... WHERE status = 'waiting'`), so when two agents claim
the same case at the same instant exactly one row changes and exactly one agent wins, on
SQLite and PostgreSQL alike, across any number of processes. Auto-assignment also respects
the agent's capacity: it first writes the agent's status row (a row lock on PostgreSQL, the
write lock on SQLite), so assignments to one agent are serialised and the in-statement count
of their open chats is never stale.

The waiting order is priority plus aging: a case gains `aging_per_minute` points for every
minute it waits, i.e. it sorts by `priority - created_at * aging_per_minute / 60`.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.schema import accounts, agent_status, case_routing, cases

OPEN = ("waiting", "assigned")


@dataclass
class Case:
    id: int
    conversation_id: str
    channel: str
    status: str
    reason: str
    detail: str
    signals: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    agent_id: int | None = None
    agent_name: str | None = None
    created_at: float = 0.0
    claimed_at: float | None = None
    closed_at: float | None = None
    resolution: str | None = None
    team: str | None = None
    tier: str | None = None
    severity: int = 0
    assigned_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["waiting_seconds"] = round((self.claimed_at or time.time()) - self.created_at, 1)
        return data


class CaseError(Exception):
    """Base of the queue's refusals; `status` is the HTTP status an API should answer with."""

    status = 400


class UnknownCase(CaseError):
    status = 404


class CaseConflict(CaseError):
    status = 409


class AgentFull(CaseConflict):
    """The agent already has as many chats as their capacity allows."""


def _case(row: Any) -> Case:
    return Case(
        id=row["id"],
        conversation_id=row["conversation_id"],
        channel=row["channel"],
        status=row["status"],
        reason=row["reason"],
        detail=row["detail"],
        signals=json.loads(row["signals"] or "{}"),
        priority=row["priority"],
        agent_id=row["agent_id"],
        agent_name=row.get("agent_name"),
        created_at=row["created_at"],
        claimed_at=row["claimed_at"],
        closed_at=row["closed_at"],
        resolution=row["resolution"],
        team=row.get("team"),
        tier=row.get("tier"),
        severity=row.get("severity") or 0,
        assigned_by=row.get("assigned_by"),
    )


def _select() -> sa.sql.Select:
    return sa.select(
        cases, accounts.c.display_name.label("agent_name"), case_routing.c.team, case_routing.c.tier,
        case_routing.c.severity, case_routing.c.assigned_by,
    ).select_from(
        cases.outerjoin(accounts, accounts.c.id == cases.c.agent_id).outerjoin(case_routing, case_routing.c.case_id == cases.c.id)
    )


class CaseQueue:
    def __init__(self, engine: AsyncEngine, aging_per_minute: float = 1.0) -> None:
        self._engine = engine
        self.aging_per_minute = aging_per_minute

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def order_key(self) -> sa.sql.ColumnElement:
        """Effective priority minus a constant (now): higher goes first; aging is built in."""
        return cases.c.priority - cases.c.created_at * sa.literal(self.aging_per_minute / 60.0, sa.Float)

    async def open_case(
        self, conversation_id: str, channel: str, reason: str, detail: str = "", signals: dict[str, Any] | None = None,
        priority: int = 0, team: str | None = None, tier: str | None = None, severity: int = 0,
    ) -> Case:
        """Queue a conversation for a person; returns the existing open case if it already has one."""
        existing = await self.open_case_for(conversation_id)
        if existing:
            return existing
        async with self._engine.begin() as conn:
            result = await conn.execute(
                cases.insert().values(
                    conversation_id=conversation_id, channel=channel, status="waiting", reason=reason, detail=detail,
                    signals=json.dumps(signals or {}, default=str), priority=priority, created_at=time.time(),
                )
            )
            case_id = int(result.inserted_primary_key[0])
            await conn.execute(case_routing.insert().values(case_id=case_id, team=team, tier=tier, severity=severity, announced=True))
        return await self.get(case_id)

    async def get(self, case_id: int) -> Case:
        async with self._engine.connect() as conn:
            row = (await conn.execute(_select().where(cases.c.id == case_id))).mappings().first()
        if row is None:
            raise UnknownCase(f"no case {case_id}")
        return _case(row)

    async def open_case_for(self, conversation_id: str) -> Case | None:
        query = _select().where(cases.c.conversation_id == conversation_id, cases.c.status.in_(OPEN)).order_by(cases.c.id.desc())
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _case(row)

    async def list(self, status: str | None = None, agent_id: int | None = None, limit: int = 200) -> list[Case]:
        query = _select().order_by(self.order_key().desc(), cases.c.id).limit(limit)
        if status == "open":
            query = query.where(cases.c.status.in_(OPEN))
        elif status:
            query = query.where(cases.c.status == status)
        if agent_id is not None:
            query = query.where(cases.c.agent_id == agent_id)
        async with self._engine.connect() as conn:
            return [_case(r) for r in (await conn.execute(query)).mappings()]

    async def position(self, case_id: int) -> int:
        """1-based place among waiting cases (effective priority with aging, then arrival); 0 if not waiting."""
        case = await self.get(case_id)
        if case.status != "waiting":
            return 0
        mine = sa.select(self.order_key()).where(cases.c.id == case_id).scalar_subquery()
        ahead = sa.select(sa.func.count()).select_from(cases).where(
            cases.c.status == "waiting",
            sa.or_(self.order_key() > mine, sa.and_(self.order_key() == mine, cases.c.id < case_id)),
        )
        async with self._engine.connect() as conn:
            return int((await conn.execute(ahead)).scalar_one()) + 1

    async def positions(self) -> dict[int, int]:
        """Every waiting case's 1-based place, in one query (for the customers' position updates)."""
        query = sa.select(cases.c.id).where(cases.c.status == "waiting").order_by(self.order_key().desc(), cases.c.id)
        async with self._engine.connect() as conn:
            return {row[0]: place for place, row in enumerate((await conn.execute(query)).all(), start=1)}

    async def claim(self, case_id: int, agent_id: int) -> Case:
        """Atomically take a waiting case. Raises CaseConflict if someone else was first."""
        now = time.time()
        query = (
            cases.update()
            .where(cases.c.id == case_id, cases.c.status == "waiting")
            .values(status="assigned", agent_id=agent_id, claimed_at=now)
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(query)
            if result.rowcount == 1:
                await self._after_assignment(conn, case_id, agent_id, "claim", now)
        if result.rowcount != 1:
            case = await self.get(case_id)  # raises UnknownCase for a bad id
            who = f" by {case.agent_name}" if case.agent_name else ""
            raise CaseConflict(f"case {case_id} is already {case.status}{who}")
        return await self.get(case_id)

    async def require_owner(self, case_id: int, agent_id: int) -> Case:
        case = await self.get(case_id)
        if case.status != "assigned":
            raise CaseConflict(f"case {case_id} is {case.status}, not assigned")
        if case.agent_id != agent_id:
            raise CaseConflict(f"case {case_id} belongs to {case.agent_name or 'another agent'}")
        return case

    async def close(self, case_id: int, agent_id: int | None, resolution: str, status: str = "closed") -> Case:
        """Close (or cancel) an open case; agent_id None skips the owner check (customer left)."""
        condition = [cases.c.id == case_id, cases.c.status.in_(OPEN)]
        if agent_id is not None:
            condition.append(cases.c.agent_id == agent_id)
        query = cases.update().where(*condition).values(status=status, closed_at=time.time(), resolution=resolution)
        async with self._engine.begin() as conn:
            result = await conn.execute(query)
        if result.rowcount != 1:
            case = await self.get(case_id)
            raise CaseConflict(f"case {case_id} is {case.status}" + ("" if case.agent_id == agent_id else f", owned by {case.agent_name}"))
        return await self.get(case_id)

    # -- routing: auto-assignment, transfers, announcements --------------------------------
    async def _after_assignment(self, conn: Any, case_id: int, agent_id: int, via: str, now: float) -> None:
        """Same transaction as the assignment: who assigned it, not yet announced, agent busy since now."""
        values = {"assigned_by": via, "announced": False}
        result = await conn.execute(case_routing.update().where(case_routing.c.case_id == case_id).values(**values))
        if result.rowcount == 0:  # a case opened before routing existed
            await conn.execute(case_routing.insert().values(case_id=case_id, severity=0, **values))
        await conn.execute(agent_status.update().where(agent_status.c.account_id == agent_id).values(last_assigned_at=now))

    async def assign(self, case_id: int, agent_id: int, capacity: int, via: str = "auto") -> Case:
        """Give a waiting case to an agent only if they have a free seat (fewer than `capacity` chats).

        Raises CaseConflict if the case is no longer waiting, AgentFull if the agent has no seat.
        """
        now = time.time()
        theirs = cases.alias("theirs")
        active = (
            sa.select(sa.func.count()).select_from(theirs)
            .where(theirs.c.agent_id == agent_id, theirs.c.status == "assigned").scalar_subquery()
        )
        async with self._engine.begin() as conn:
            # Lock first (row lock / SQLite write lock): concurrent assignments to this agent queue up here.
            locked = await conn.execute(agent_status.update().where(agent_status.c.account_id == agent_id).values(updated_at=now))
            if locked.rowcount != 1:
                raise CaseConflict(f"agent {agent_id} has no presence; they must open the console first")
            result = await conn.execute(
                cases.update()
                .where(cases.c.id == case_id, cases.c.status == "waiting", active < capacity)
                .values(status="assigned", agent_id=agent_id, claimed_at=now)
            )
            if result.rowcount == 1:
                await self._after_assignment(conn, case_id, agent_id, via, now)
        if result.rowcount != 1:
            case = await self.get(case_id)
            if case.status != "waiting":
                raise CaseConflict(f"case {case_id} is already {case.status}")
            raise AgentFull(f"agent {agent_id} already has {capacity} chats")
        return await self.get(case_id)

    async def transfer_to_agent(self, case_id: int, from_agent_id: int | None, to_agent_id: int, via: str = "transfer") -> Case:
        """Hand an assigned case to another agent (from_agent_id None: a supervisor taking over)."""
        now = time.time()
        condition = [cases.c.id == case_id, cases.c.status == "assigned"]
        if from_agent_id is not None:
            condition.append(cases.c.agent_id == from_agent_id)
        async with self._engine.begin() as conn:
            result = await conn.execute(cases.update().where(*condition).values(agent_id=to_agent_id, claimed_at=now))
            if result.rowcount == 1:
                await self._after_assignment(conn, case_id, to_agent_id, via, now)
        if result.rowcount != 1:
            case = await self.get(case_id)
            raise CaseConflict(f"case {case_id} is {case.status}" + (f", owned by {case.agent_name}" if case.agent_name else ""))
        return await self.get(case_id)

    async def transfer_to_team(self, case_id: int, from_agent_id: int | None, team: str) -> Case:
        """Put an assigned case back in the queue for another team; it keeps its age and priority."""
        condition = [cases.c.id == case_id, cases.c.status == "assigned"]
        if from_agent_id is not None:
            condition.append(cases.c.agent_id == from_agent_id)
        async with self._engine.begin() as conn:
            result = await conn.execute(cases.update().where(*condition).values(status="waiting", agent_id=None, claimed_at=None))
            if result.rowcount == 1:
                values = {"team": team, "assigned_by": None, "announced": True, "notified_position": None, "notified_at": None}
                updated = await conn.execute(case_routing.update().where(case_routing.c.case_id == case_id).values(**values))
                if updated.rowcount == 0:
                    await conn.execute(case_routing.insert().values(case_id=case_id, severity=0, **values))
        if result.rowcount != 1:
            case = await self.get(case_id)
            raise CaseConflict(f"case {case_id} is {case.status}" + (f", owned by {case.agent_name}" if case.agent_name else ""))
        return await self.get(case_id)

    async def mark_announced(self, case_id: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(case_routing.update().where(case_routing.c.case_id == case_id).values(announced=True))

    async def unannounced(self) -> list[Case]:
        """Assigned cases whose customer was never told who joined (the process died in between)."""
        query = _select().where(cases.c.status == "assigned", case_routing.c.announced == sa.false())
        async with self._engine.connect() as conn:
            return [_case(r) for r in (await conn.execute(query)).mappings()]

    async def notices(self) -> dict[int, tuple[int | None, float | None]]:
        """Last position told to each waiting customer, and when."""
        query = sa.select(case_routing.c.case_id, case_routing.c.notified_position, case_routing.c.notified_at).select_from(
            case_routing.join(cases, cases.c.id == case_routing.c.case_id)
        ).where(cases.c.status == "waiting")
        async with self._engine.connect() as conn:
            return {r[0]: (r[1], r[2]) for r in (await conn.execute(query)).all()}

    async def claim_notice(self, case_id: int, position: int, previous: int | None) -> bool:
        """Compare-and-set the position last told to a customer. With several web processes
        sweeping the queue, only the one whose update wins tells the customer (no duplicates)."""
        told = case_routing.c.notified_position
        condition = told.is_(None) if previous is None else told == previous
        query = case_routing.update().where(case_routing.c.case_id == case_id, condition).values(
            notified_position=position, notified_at=time.time()
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(query)).rowcount == 1

    async def mark_notified(self, case_id: int, position: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                case_routing.update().where(case_routing.c.case_id == case_id).values(notified_position=position, notified_at=time.time())
            )

    async def active_counts(self) -> dict[int, int]:
        """Open chats per agent."""
        query = sa.select(cases.c.agent_id, sa.func.count()).where(cases.c.status == "assigned").group_by(cases.c.agent_id)
        async with self._engine.connect() as conn:
            return {agent: n for agent, n in (await conn.execute(query)).all() if agent is not None}

    async def average_handle_seconds(self, last: int = 50) -> float | None:
        """Mean time from pickup to close over the last `last` closed cases (None without history)."""
        recent = (
            sa.select((cases.c.closed_at - cases.c.claimed_at).label("handled"))
            .where(cases.c.status == "closed", cases.c.claimed_at.isnot(None))
            .order_by(cases.c.closed_at.desc()).limit(last).subquery()
        )
        async with self._engine.connect() as conn:
            value = (await conn.execute(sa.select(sa.func.avg(recent.c.handled)))).scalar()
        return None if value is None else float(value)
