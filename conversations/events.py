"""The append-only log of what happened in every conversation.

Queue screens, the agent's context panel, knowledge gaps and the managers' numbers are all
queries over this one table, so history never has to be reconstructed later.
"""
from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import metadata

conversation_events = sa.Table(
    "conversation_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(40), nullable=False, index=True),
    sa.Column("channel", sa.String(20), nullable=False, default=""),
    sa.Column("data", sa.Text, nullable=False, default="{}"),
    sa.Column("at", sa.Float, nullable=False, index=True),
)


class EventLog:
    """Appends and reads conversation events; kinds are short verbs (escalated, answered, ...)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, conversation_id: str, kind: str, channel: str = "", /, **data: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                conversation_events.insert().values(
                    conversation_id=conversation_id,
                    kind=kind,
                    channel=channel,
                    data=json.dumps(data, default=str),
                    at=time.time(),
                )
            )

    async def for_conversation(self, conversation_id: str) -> list[dict[str, Any]]:
        query = (
            sa.select(conversation_events)
            .where(conversation_events.c.conversation_id == conversation_id)
            .order_by(conversation_events.c.id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [{**row, "data": json.loads(row["data"])} for row in rows]

