"""A customer's past cases with their outcomes, for the console's history panel.

It takes the customer's conversation ids (customers/ knows who the customer is) and reads the
cases of those conversations, so customers/ never needs to know what a case is.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.schema import case_routing, cases


@dataclass(frozen=True)
class PastCase:
    id: int
    conversation_id: str
    channel: str
    status: str
    reason: str
    resolution: str | None
    team: str | None
    created_at: float
    closed_at: float | None


class CaseHistory:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def of_conversations(self, conversation_ids: Sequence[str], limit: int = 50) -> list[PastCase]:
        """Every case of these conversations, newest first."""
        if not conversation_ids:
            return []
        query = (
            sa.select(cases, case_routing.c.team)
            .select_from(cases.outerjoin(case_routing, case_routing.c.case_id == cases.c.id))
            .where(cases.c.conversation_id.in_(list(conversation_ids)))
            .order_by(cases.c.created_at.desc(), cases.c.id.desc()).limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            PastCase(r["id"], r["conversation_id"], r["channel"], r["status"], r["reason"], r["resolution"], r["team"],
                     r["created_at"], r["closed_at"])
            for r in rows
        ]
