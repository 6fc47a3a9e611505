"""The delivery ledger: which stored message went out on which push channel, exactly once.

Why: with several web instances on Redis, every instance hears every bus publish, and a
message may also be sent as the direct reply to the update that produced it. Whoever wants
to send a message first *claims* it with an INSERT on (message_id, channel); the primary key
lets exactly one claimer win, across processes and databases (SQLite or PostgreSQL).

Messages of one conversation go out in order: a worker only ever claims the *earliest*
undelivered message of a conversation, and stops when that one is being sent by someone
else (who carries on with the rest when done). A claim left "sending" by a crashed process
goes stale after `STALE_AFTER_S` and may be taken over (at-least-once after a crash).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.store import Message, conversations, messages
from core.db import metadata

#: Longer than the longest send with retries, so a live sender is never overtaken.
STALE_AFTER_S = 120.0

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("message_id", sa.Integer, nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("conversation_id", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(10), nullable=False),  # sending | sent | failed
    sa.Column("claimed_by", sa.String(64), nullable=False, default=""),
    sa.Column("claimed_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.PrimaryKeyConstraint("message_id", "channel", name="pk_deliveries"),
)


@dataclass(frozen=True)
class Pending:
    """The earliest message of a conversation not yet delivered, and its claim if any."""

    message: Message
    status: str | None  # None: unclaimed; "sending": someone is on it (or crashed)
    claimed_at: float | None

    def is_stale(self, now: float) -> bool:
        return self.status == "sending" and self.claimed_at is not None and now - self.claimed_at > STALE_AFTER_S


class DeliveryLedger:
    """Claims and outcomes of outgoing messages for one push channel."""

    def __init__(self, engine: AsyncEngine, channel: str, worker: str) -> None:
        self._engine = engine
        self.channel = channel
        self.worker = worker  # who claimed: helps when reading the table after an incident

    async def next_pending(self, conversation_id: str) -> Pending | None:
        """The earliest non-customer message of the conversation that is not sent or failed."""
        m, d = messages, deliveries
        joined = m.outerjoin(d, sa.and_(d.c.message_id == m.c.id, d.c.channel == self.channel))
        query = (
            sa.select(m, d.c.status.label("delivery_status"), d.c.claimed_at.label("delivery_claimed_at"))
            .select_from(joined)
            .where(
                m.c.conversation_id == conversation_id,
                m.c.sender != "customer",
                sa.or_(d.c.status.is_(None), d.c.status == "sending"),
            )
            .order_by(m.c.id)
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        message = Message(row["id"], row["conversation_id"], row["sender"], row["text"], json.loads(row["data"]), row["created_at"])
        return Pending(message, row["delivery_status"], row["delivery_claimed_at"])

    async def claim(self, pending: Pending) -> bool:
        """Try to become the one sender of this message; False if another worker has it."""
        now = time.time()
        message = pending.message
        if pending.status is None:
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(
                        deliveries.insert().values(
                            message_id=message.id, channel=self.channel, conversation_id=message.conversation_id,
                            status="sending", claimed_by=self.worker, claimed_at=now,
                        )
                    )
            except sa.exc.IntegrityError:
                return False
            return True
        if not pending.is_stale(now):
            return False
        # Take over a crashed sender's claim: compare-and-set on the old claim time.
        query = (
            deliveries.update()
            .where(
                deliveries.c.message_id == message.id,
                deliveries.c.channel == self.channel,
                deliveries.c.status == "sending",
                deliveries.c.claimed_at == pending.claimed_at,
            )
            .values(claimed_by=self.worker, claimed_at=now)
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(query)
        return result.rowcount == 1

    async def finish(self, message_id: int, status: str, error: str | None = None) -> None:
        """Record the outcome: "sent", or "failed" (given up; the event log says why)."""
        query = (
            deliveries.update()
            .where(deliveries.c.message_id == message_id, deliveries.c.channel == self.channel)
            .values(status=status, finished_at=time.time(), error=error)
        )
        async with self._engine.begin() as conn:
            await conn.execute(query)

    async def outcomes(self, conversation_id: str) -> list[dict[str, Any]]:
        """Every delivery row of a conversation (tests and incident reading)."""
        query = sa.select(deliveries).where(deliveries.c.conversation_id == conversation_id).order_by(deliveries.c.message_id)
        async with self._engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def undelivered_conversations(self, since: float) -> list[str]:
        """This channel's conversations with a message newer than `since` that nobody claimed to send."""
        m, d = messages, deliveries
        query = (
            sa.select(sa.distinct(m.c.conversation_id))
            .select_from(m.join(conversations, conversations.c.id == m.c.conversation_id))
            .outerjoin(d, sa.and_(d.c.message_id == m.c.id, d.c.channel == self.channel))
            .where(conversations.c.channel == self.channel, m.c.sender != "customer", m.c.created_at > since, d.c.message_id.is_(None))
        )
        async with self._engine.connect() as conn:
            return [row[0] for row in await conn.execute(query)]
