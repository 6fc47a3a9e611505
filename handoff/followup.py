"""Follow-ups (回访): after closing a case, ask the customer later whether the problem is solved.

A follow-up is scheduled when a case closes (complaints by default, any case by the agent's
choice). At its due time one process claims it (`scheduled -> asked`, a conditional UPDATE) and
the lead's channel hook asks the customer; their answer resolves it: "yes" closes the loop
(`solved`), "no" opens a new case for the same team (`reopened`), silence past
`answer_timeout_s` ends it as `no_answer`. The clock is injected.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import metadata
from conversations.events import conversation_events
from core.settings import FollowupSettings
from handoff.queue import Case, CaseQueue
from handoff.schema import case_routing, cases

Clock = Callable[[], float]
STATUSES = ("scheduled", "asked", "solved", "reopened", "no_answer", "cancelled")

followups = sa.Table(
    "followups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
    sa.Column("conversation_id", sa.String(64), nullable=False, index=True),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("team", sa.String(40), nullable=True),
    sa.Column("status", sa.String(12), nullable=False, index=True),
    sa.Column("due_at", sa.Float, nullable=False, index=True),
    sa.Column("created_by", sa.Integer, nullable=True),  # the agent who asked for it; None: automatic
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("asked_at", sa.Float, nullable=True),
    sa.Column("resolved_at", sa.Float, nullable=True),
    sa.Column("reopened_case_id", sa.Integer, nullable=True),
)


class FollowupError(Exception):
    status = 409


@dataclass(frozen=True)
class Followup:
    id: int
    case_id: int
    conversation_id: str
    channel: str
    team: str | None
    status: str
    due_at: float
    created_by: int | None
    created_at: float
    asked_at: float | None
    resolved_at: float | None
    reopened_case_id: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _followup(row: Any) -> Followup:
    return Followup(**{k: row[k] for k in Followup.__dataclass_fields__})


class Followups:
    def __init__(self, engine: AsyncEngine, queue: CaseQueue, settings: FollowupSettings, clock: Clock = time.time) -> None:
        self._engine = engine
        self._queue = queue
        self.settings = settings
        self._clock = clock

    async def schedule(self, case_id: int, delay_s: float | None = None, created_by: int | None = None) -> Followup:
        """Plan a follow-up for a closed case (one open follow-up per case)."""
        delay = self.settings.delay_s if delay_s is None else delay_s
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay <= 365 * 86400:
            raise FollowupError("delay_s must be a number of seconds from 0 to one year")
        now = self._clock()
        async with self._engine.begin() as conn:
            row = (await conn.execute(
                sa.select(cases.c.conversation_id, cases.c.channel, cases.c.status, case_routing.c.team)
                .select_from(cases.outerjoin(case_routing, case_routing.c.case_id == cases.c.id)).where(cases.c.id == case_id)
            )).mappings().first()
            if row is None:
                raise FollowupError(f"no case {case_id}")
            if row["status"] != "closed":
                raise FollowupError(f"case {case_id} is {row['status']}; follow-ups are for closed cases")
            existing = (await conn.execute(sa.select(followups.c.id).where(
                followups.c.case_id == case_id, followups.c.status.in_(("scheduled", "asked"))))).first()
            if existing:
                followup_id = int(existing[0])
            else:
                result = await conn.execute(followups.insert().values(
                    case_id=case_id, conversation_id=row["conversation_id"], channel=row["channel"], team=row["team"],
                    status="scheduled", due_at=now + delay, created_by=created_by, created_at=now,
                ))
                followup_id = int(result.inserted_primary_key[0])
        return await self.get(followup_id)

    async def get(self, followup_id: int) -> Followup:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(followups).where(followups.c.id == followup_id))).mappings().first()
        if row is None:
            raise FollowupError(f"no follow-up {followup_id}")
        return _followup(row)

    async def list(self, status: str | None = None, limit: int = 200) -> list[Followup]:
        query = sa.select(followups).order_by(followups.c.due_at, followups.c.id).limit(limit)
        if status:
            query = query.where(followups.c.status == status)
        async with self._engine.connect() as conn:
            return [_followup(r) for r in (await conn.execute(query)).mappings()]

    async def due(self) -> list[Followup]:
        """Scheduled follow-ups whose time has come (what agents see as 'due' and the tick asks)."""
        query = sa.select(followups).where(followups.c.status == "scheduled", followups.c.due_at <= self._clock()).order_by(followups.c.due_at)
        async with self._engine.connect() as conn:
            return [_followup(r) for r in (await conn.execute(query)).mappings()]

    async def claim_ask(self, followup_id: int) -> bool:
        """Become the one process that asks this customer; False if another was first."""
        now = self._clock()
        async with self._engine.begin() as conn:
            result = await conn.execute(followups.update().where(
                followups.c.id == followup_id, followups.c.status == "scheduled", followups.c.due_at <= now,
            ).values(status="asked", asked_at=now))
            if result.rowcount == 1:
                await self._event(conn, followup_id, "followup_asked", {})
        return result.rowcount == 1

    async def pending_for(self, conversation_id: str) -> Followup | None:
        """The asked follow-up waiting for this conversation's answer (the router checks it first)."""
        query = sa.select(followups).where(followups.c.conversation_id == conversation_id, followups.c.status == "asked").order_by(followups.c.id.desc())
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _followup(row)

    async def resolve(self, followup_id: int, solved: bool) -> tuple[Followup, Case | None]:
        """The customer's answer: yes closes the loop; no opens a case for the same team.

        One transaction: the answer, the new case (with its routing row, as CaseQueue.open_case
        writes them) and the event commit together, so a crash cannot lose the reopening.
        """
        now = self._clock()
        status = "solved" if solved else "reopened"
        reopened_id: int | None = None
        async with self._engine.begin() as conn:
            result = await conn.execute(followups.update().where(followups.c.id == followup_id, followups.c.status == "asked")
                                        .values(status=status, resolved_at=now))
            if result.rowcount == 1 and not solved:
                reopened_id = await self._reopen(conn, followup_id, now)
            if result.rowcount == 1:
                await self._event(conn, followup_id, "followup_answered", {"solved": solved, "reopened_case_id": reopened_id})
        if result.rowcount != 1:
            current = await self.get(followup_id)
            raise FollowupError(f"follow-up {followup_id} is {current.status}, not waiting for an answer")
        return await self.get(followup_id), (await self._queue.get(reopened_id) if reopened_id is not None else None)

    async def _reopen(self, conn: Any, followup_id: int, now: float) -> int:
        follow = (await conn.execute(sa.select(followups).where(followups.c.id == followup_id))).mappings().one()
        already = (await conn.execute(sa.select(cases.c.id).where(
            cases.c.conversation_id == follow["conversation_id"], cases.c.status.in_(("waiting", "assigned"))))).first()
        if already is not None:  # the customer is being helped already: that case carries on
            case_id = int(already[0])
        else:
            previous = (await conn.execute(
                sa.select(cases.c.priority, case_routing.c.tier, case_routing.c.severity)
                .select_from(cases.outerjoin(case_routing, case_routing.c.case_id == cases.c.id)).where(cases.c.id == follow["case_id"])
            )).mappings().one()
            inserted = await conn.execute(cases.insert().values(
                conversation_id=follow["conversation_id"], channel=follow["channel"], status="waiting", reason="follow_up_unsolved",
                detail=f"follow-up of case {follow['case_id']}: the customer says it is not solved",
                signals=json.dumps({"followup_id": followup_id, "previous_case_id": follow["case_id"]}),
                priority=previous["priority"], created_at=now,
            ))
            case_id = int(inserted.inserted_primary_key[0])
            await conn.execute(case_routing.insert().values(case_id=case_id, team=follow["team"], tier=previous["tier"],
                                                            severity=previous["severity"] or 0, announced=True))
        await conn.execute(followups.update().where(followups.c.id == followup_id).values(reopened_case_id=case_id))
        return case_id

    async def expire(self) -> list[Followup]:
        """Asked follow-ups nobody answered within answer_timeout_s end as no_answer."""
        now = self._clock()
        async with self._engine.connect() as conn:
            ids = [r[0] for r in (await conn.execute(sa.select(followups.c.id).where(
                followups.c.status == "asked", followups.c.asked_at <= now - self.settings.answer_timeout_s))).all()]
        ended = []
        for followup_id in ids:
            async with self._engine.begin() as conn:
                result = await conn.execute(followups.update().where(followups.c.id == followup_id, followups.c.status == "asked")
                                            .values(status="no_answer", resolved_at=now))
                if result.rowcount == 1:
                    await self._event(conn, followup_id, "followup_unanswered", {})
            if result.rowcount == 1:
                ended.append(await self.get(followup_id))
        return ended

    async def cancel(self, followup_id: int) -> Followup:
        async with self._engine.begin() as conn:
            result = await conn.execute(followups.update().where(followups.c.id == followup_id, followups.c.status == "scheduled")
                                        .values(status="cancelled", resolved_at=self._clock()))
        if result.rowcount != 1:
            raise FollowupError(f"follow-up {followup_id} is {(await self.get(followup_id)).status}")
        return await self.get(followup_id)

    async def _event(self, conn: Any, followup_id: int, kind: str, data: dict[str, Any]) -> None:
        row = (await conn.execute(sa.select(followups.c.conversation_id, followups.c.channel, followups.c.case_id)
                                  .where(followups.c.id == followup_id))).first()
        await conn.execute(conversation_events.insert().values(
            conversation_id=row[0], kind=kind, channel=row[1], at=self._clock(),
            data=json.dumps({"followup_id": followup_id, "case_id": row[2], **data}),
        ))
