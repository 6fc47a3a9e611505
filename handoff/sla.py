"""SLA timers: first response and resolution targets per team and tier.

Pure functions compute, for a case's times and a clock reading, how long is left and whether
the timer is ok / warn / breached / met; the console shows them and the reports count breaches.
`SlaMonitor.sweep` records each breach once (a primary key on (case, timer) decides, across
processes) as an `sla_breached` event in the same transaction. The clock is injected.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.store import messages
from core.db import metadata
from conversations.events import conversation_events
from core.settings import SlaSettings, SlaTarget
from handoff.schema import case_routing, cases

Clock = Callable[[], float]
TIMERS = ("first_response", "resolution")

sla_breaches = sa.Table(
    "sla_breaches",
    metadata,
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
    sa.Column("timer", sa.String(20), nullable=False),  # first_response | resolution
    sa.Column("conversation_id", sa.String(64), nullable=False, index=True),
    sa.Column("target_s", sa.Float, nullable=False),
    sa.Column("breached_at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("case_id", "timer", name="pk_sla_breaches"),
)


@dataclass(frozen=True)
class Timer:
    target_s: float
    elapsed_s: float
    left_s: float  # negative once breached
    state: str  # ok | warn | breached (running) | met | missed (stopped)

    @property
    def breached(self) -> bool:
        return self.state in ("breached", "missed")


@dataclass(frozen=True)
class CaseTimes:
    created_at: float
    first_response_at: float | None  # the first agent message after the case opened
    closed_at: float | None


@dataclass(frozen=True)
class CaseSla:
    target: SlaTarget
    first_response: Timer
    resolution: Timer

    def to_dict(self) -> dict[str, Any]:
        return {"target": asdict(self.target), "first_response": asdict(self.first_response), "resolution": asdict(self.resolution)}


def target_for(settings: SlaSettings, team: str | None, tier: str | None) -> SlaTarget:
    """The most specific target: team and tier, then team, then tier, then the default ("*", "*")."""
    team, tier = (team or "").lower(), (tier or "").lower()
    best: tuple[int, SlaTarget] | None = None
    for target in settings.targets:
        if target.team not in ("*", team) or target.tier not in ("*", tier):
            continue
        score = (2 if target.team != "*" else 0) + (1 if target.tier != "*" else 0)
        if best is None or score > best[0]:
            best = (score, target)
    return best[1] if best else SlaTarget()


def timer(started_at: float, stopped_at: float | None, target_s: float, warn_fraction: float, now: float) -> Timer:
    """One timer at `now`: running until stopped; met or missed once stopped."""
    end = stopped_at if stopped_at is not None else now
    elapsed = max(0.0, end - started_at)
    left = target_s - elapsed
    if stopped_at is not None:
        state = "met" if left >= 0 else "missed"
    elif left < 0:
        state = "breached"
    elif elapsed >= target_s * warn_fraction:
        state = "warn"
    else:
        state = "ok"
    return Timer(target_s=target_s, elapsed_s=round(elapsed, 3), left_s=round(left, 3), state=state)


def case_sla(times: CaseTimes, target: SlaTarget, warn_fraction: float, now: float) -> CaseSla:
    # A case closed without any agent message stops its first-response timer at closing.
    first_stop = times.first_response_at if times.first_response_at is not None else times.closed_at
    return CaseSla(
        target=target,
        first_response=timer(times.created_at, first_stop, target.first_response_s, warn_fraction, now),
        resolution=timer(times.created_at, times.closed_at, target.resolution_s, warn_fraction, now),
    )


@dataclass(frozen=True)
class Breach:
    case_id: int
    conversation_id: str
    timer: str
    target_s: float
    elapsed_s: float


class SlaMonitor:
    def __init__(self, engine: AsyncEngine, settings: SlaSettings, clock: Clock = time.time) -> None:
        self._engine = engine
        self.settings = settings
        self._clock = clock

    def _query(self) -> sa.sql.Select:
        first = (
            sa.select(sa.func.min(messages.c.created_at))
            .where(messages.c.conversation_id == cases.c.conversation_id, messages.c.sender == "agent",
                   messages.c.created_at >= cases.c.created_at)
            .scalar_subquery()
        )
        return sa.select(
            cases.c.id, cases.c.conversation_id, cases.c.channel, cases.c.status, cases.c.created_at, cases.c.closed_at,
            case_routing.c.team, case_routing.c.tier, first.label("first_response_at"),
        ).select_from(cases.outerjoin(case_routing, case_routing.c.case_id == cases.c.id))

    def _sla(self, row: Any, now: float) -> CaseSla:
        target = target_for(self.settings, row["team"], row["tier"])
        times = CaseTimes(row["created_at"], row["first_response_at"], row["closed_at"] if row["status"] in ("closed", "cancelled") else None)
        return case_sla(times, target, self.settings.warn_fraction, now)

    async def status(self, case_ids: list[int]) -> dict[int, CaseSla]:
        """Timers of these cases now (for the console's queue and chat views)."""
        if not case_ids:
            return {}
        now = self._clock()
        async with self._engine.connect() as conn:
            rows = (await conn.execute(self._query().where(cases.c.id.in_(case_ids)))).mappings().all()
        return {row["id"]: self._sla(row, now) for row in rows}

    async def sweep(self, closed_since: float | None = None) -> list[Breach]:
        """Record every newly breached timer of open cases (and of cases closed since `closed_since`)."""
        now = self._clock()
        condition = cases.c.status.in_(("waiting", "assigned"))
        if closed_since is not None:
            condition = sa.or_(condition, sa.and_(cases.c.status == "closed", cases.c.closed_at >= closed_since))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(self._query().where(condition))).mappings().all()
            known: set[tuple[int, str]] = set()
            ids = [row["id"] for row in rows]
            for start in range(0, len(ids), 500):
                query = sa.select(sla_breaches.c.case_id, sla_breaches.c.timer).where(sla_breaches.c.case_id.in_(ids[start:start + 500]))
                known |= {(r[0], r[1]) for r in (await conn.execute(query)).all()}
        found: list[Breach] = []
        for row in rows:
            sla = self._sla(row, now)
            for name in TIMERS:
                clock = getattr(sla, name)
                if not clock.breached or (row["id"], name) in known:
                    continue
                breach = Breach(row["id"], row["conversation_id"], name, clock.target_s, clock.elapsed_s)
                if await self._record(breach, row, now):
                    found.append(breach)
        return found

    async def _record(self, breach: Breach, row: Any, now: float) -> bool:
        """Insert the breach and its event together; False if another process recorded it first."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(sla_breaches.insert().values(
                    case_id=breach.case_id, timer=breach.timer, conversation_id=breach.conversation_id,
                    target_s=breach.target_s, breached_at=now,
                ))
                await conn.execute(conversation_events.insert().values(
                    conversation_id=breach.conversation_id, kind="sla_breached", channel=row["channel"], at=now,
                    data=json.dumps({"case_id": breach.case_id, "timer": breach.timer, "target_s": breach.target_s,
                                     "elapsed_s": breach.elapsed_s, "team": row["team"], "tier": row["tier"]}),
                ))
        except sa.exc.IntegrityError:
            return False
        return True
