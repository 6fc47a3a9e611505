"""Agents' presence (online, away, offline), teams and capacity, kept in the database.

A console checks in over its websocket; an agent whose console has not checked in for
`presence_timeout_s` counts as offline, so a crashed process or a closed laptop never keeps
receiving chats. Only `online` agents get auto-assigned chats; `away` agents can still claim.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import Settings
from handoff.routing import RoutingRules
from handoff.schema import accounts, agent_status, cases

STATUSES = ("online", "away", "offline")
STAFF_ROLES = ("agent", "supervisor")


@dataclass
class AgentState:
    account_id: int
    username: str
    display_name: str
    role: str
    status: str  # as the agent set it
    teams: tuple[str, ...]
    capacity: int
    seen_at: float
    last_assigned_at: float
    active: int  # open chats right now
    present: bool  # status is not offline and the console checked in recently

    @property
    def effective_status(self) -> str:
        return self.status if self.present else "offline"

    @property
    def free_seats(self) -> int:
        return max(0, self.capacity - self.active)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["teams"] = list(self.teams)
        data["effective_status"] = self.effective_status
        return data


class PresenceError(ValueError):
    """Bad status, team or capacity; the text says why."""


class Presence:
    def __init__(self, engine: AsyncEngine, settings: Settings, rules: RoutingRules | None = None) -> None:
        self._engine = engine
        self._settings = settings
        self._rules = rules or RoutingRules(settings)

    async def _ensure(self, conn: Any, account_id: int) -> None:
        exists = (await conn.execute(sa.select(agent_status.c.account_id).where(agent_status.c.account_id == account_id))).first()
        if not exists:
            await conn.execute(
                agent_status.insert().values(
                    account_id=account_id, status="offline", teams=",".join(self._rules.team_names()),
                    capacity=self._settings.agent_capacity, seen_at=0.0, last_assigned_at=0.0, updated_at=time.time(),
                )
            )

    async def ensure(self, account_id: int) -> None:
        """Every agent starts in every team with the default capacity, offline."""
        try:
            async with self._engine.begin() as conn:
                await self._ensure(conn, account_id)
        except sa.exc.IntegrityError:
            pass  # created by a concurrent request: fine

    async def set_status(self, account_id: int, status: str) -> AgentState:
        if status not in STATUSES:
            raise PresenceError(f"status must be one of {', '.join(STATUSES)}")
        await self.ensure(account_id)
        now = time.time()
        async with self._engine.begin() as conn:
            await conn.execute(
                agent_status.update().where(agent_status.c.account_id == account_id).values(status=status, seen_at=now, updated_at=now)
            )
        return await self.get(account_id)

    async def heartbeat(self, account_id: int) -> None:
        await self.ensure(account_id)
        async with self._engine.begin() as conn:
            await conn.execute(agent_status.update().where(agent_status.c.account_id == account_id).values(seen_at=time.time()))

    async def went_away(self, account_id: int) -> None:
        """The agent's last console closed: absent at once (their chosen status is kept for next time)."""
        async with self._engine.begin() as conn:
            await conn.execute(agent_status.update().where(agent_status.c.account_id == account_id).values(seen_at=0.0))

    async def configure(self, account_id: int, teams: list[str] | None = None, capacity: int | None = None) -> AgentState:
        """A supervisor sets an agent's teams (skills) and capacity."""
        values: dict[str, Any] = {"updated_at": time.time()}
        if teams is not None:
            unknown = [t for t in teams if t not in self._rules.teams]
            if unknown:
                raise PresenceError(f"unknown team(s) {', '.join(unknown)}; teams are {', '.join(self._rules.team_names())}")
            values["teams"] = ",".join(dict.fromkeys(teams))
        if capacity is not None:
            if not isinstance(capacity, int) or isinstance(capacity, bool) or not 0 <= capacity <= 50:
                raise PresenceError("capacity must be an integer from 0 to 50")
            values["capacity"] = capacity
        await self.ensure(account_id)
        async with self._engine.begin() as conn:
            await conn.execute(agent_status.update().where(agent_status.c.account_id == account_id).values(**values))
        return await self.get(account_id)

    async def all(self) -> list[AgentState]:
        """Every agent and supervisor with their presence and current load."""
        now = time.time()
        active = (
            sa.select(cases.c.agent_id, sa.func.count().label("n")).where(cases.c.status == "assigned").group_by(cases.c.agent_id).subquery()
        )
        query = (
            sa.select(accounts.c.id, accounts.c.username, accounts.c.display_name, accounts.c.role, agent_status, active.c.n)
            .select_from(
                accounts.outerjoin(agent_status, agent_status.c.account_id == accounts.c.id).outerjoin(active, active.c.agent_id == accounts.c.id)
            )
            .where(accounts.c.role.in_(STAFF_ROLES))
            .order_by(accounts.c.id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        states = []
        for row in rows:
            status = row["status"] or "offline"
            seen = row["seen_at"] or 0.0
            states.append(AgentState(
                account_id=row["id"], username=row["username"], display_name=row["display_name"], role=row["role"],
                status=status,
                teams=tuple(t for t in (row["teams"] if row["teams"] is not None else ",".join(self._rules.team_names())).split(",") if t),
                capacity=row["capacity"] if row["capacity"] is not None else self._settings.agent_capacity,
                seen_at=seen, last_assigned_at=row["last_assigned_at"] or 0.0, active=int(row["n"] or 0),
                present=status != "offline" and seen >= now - self._settings.presence_timeout_s,
            ))
        return states

    async def get(self, account_id: int) -> AgentState:
        for state in await self.all():
            if state.account_id == account_id:
                return state
        raise PresenceError(f"no agent {account_id}")

    async def available(self) -> list[AgentState]:
        """Agents who take auto-assigned chats now: online and checked in recently."""
        return [s for s in await self.all() if s.present and s.status == "online"]

