"""The persistent queue of cases waiting for, or handled by, a person.

Claims are one conditional UPDATE (`... WHERE status = 'waiting'`), so when two agents claim
the same case at the same instant exactly one row changes and exactly one agent wins, on
SQLite and PostgreSQL alike, across any number of processes.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.schema import accounts, cases

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
    )


def _select() -> sa.sql.Select:
    return sa.select(cases, accounts.c.display_name.label("agent_name")).select_from(
        cases.outerjoin(accounts, accounts.c.id == cases.c.agent_id)
    )


class CaseQueue:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def open_case(self, conversation_id: str, channel: str, reason: str, detail: str = "", signals: dict[str, Any] | None = None, priority: int = 0) -> Case:
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
        return await self.get(int(result.inserted_primary_key[0]))

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
        query = _select().order_by(cases.c.priority.desc(), cases.c.created_at, cases.c.id).limit(limit)
        if status == "open":
            query = query.where(cases.c.status.in_(OPEN))
        elif status:
            query = query.where(cases.c.status == status)
        if agent_id is not None:
            query = query.where(cases.c.agent_id == agent_id)
        async with self._engine.connect() as conn:
            return [_case(r) for r in (await conn.execute(query)).mappings()]

    async def position(self, case_id: int) -> int:
        """1-based place among waiting cases (priority first, then arrival); 0 if not waiting."""
        case = await self.get(case_id)
        if case.status != "waiting":
            return 0
        ahead = sa.select(sa.func.count()).select_from(cases).where(
            cases.c.status == "waiting",
            sa.or_(
                cases.c.priority > case.priority,
                sa.and_(cases.c.priority == case.priority, cases.c.created_at < case.created_at),
                sa.and_(cases.c.priority == case.priority, cases.c.created_at == case.created_at, cases.c.id < case.id),
            ),
        )
        async with self._engine.connect() as conn:
            return int((await conn.execute(ahead)).scalar_one()) + 1

    async def claim(self, case_id: int, agent_id: int) -> Case:
        """Atomically take a waiting case. Raises CaseConflict if someone else was first."""
        query = (
            cases.update()
            .where(cases.c.id == case_id, cases.c.status == "waiting")
            .values(status="assigned", agent_id=agent_id, claimed_at=time.time())
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(query)
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
