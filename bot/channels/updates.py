"""Inbound updates seen: a push channel's update is handled once, however often it arrives.

Why: Telegram re-sends a webhook update it thinks was not received, and anyone holding the
webhook secret can replay one; each copy used to store the message again and answer again.
The first web process to INSERT (channel, source, update_id) handles it; the primary key
makes every other copy, on any instance and on SQLite or PostgreSQL, a no-op.

A claim still "handling" after `STALE_AFTER_S` belongs to a process that died mid-update; a
later copy may take it over, so a crash costs a retry, not the customer's message.
"""
from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import metadata

STALE_AFTER_S = 120.0
KEEP_S = 2 * 24 * 3600.0  # Telegram keeps an update at most 24 h; older ids never come back
PRUNE_EVERY_S = 3600.0

inbound_updates = sa.Table(
    "inbound_updates",
    metadata,
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("source", sa.String(40), nullable=False),  # e.g. the Telegram bot id
    sa.Column("update_id", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),  # handling | handled
    sa.Column("claimed_at", sa.Float, nullable=False, index=True),
    sa.PrimaryKeyConstraint("channel", "source", "update_id", name="pk_inbound_updates"),
)


class UpdateLedger:
    """Claims of inbound updates for one channel and source (bot)."""

    def __init__(self, engine: AsyncEngine, channel: str, source: str) -> None:
        self._engine = engine
        self.channel = channel
        self.source = source
        self._pruned = 0.0

    def _this(self, update_id: int) -> sa.ColumnElement[bool]:
        u = inbound_updates.c
        return sa.and_(u.channel == self.channel, u.source == self.source, u.update_id == update_id)

    async def claim(self, update_id: int) -> bool:
        """True for exactly one caller per update (or a taker-over of a dead claim)."""
        now = time.time()
        await self._prune(now)
        try:
            async with self._engine.begin() as conn:
                await conn.execute(inbound_updates.insert().values(
                    channel=self.channel, source=self.source, update_id=update_id, status="handling", claimed_at=now,
                ))
            return True
        except sa.exc.IntegrityError:
            pass
        takeover = (
            inbound_updates.update()
            .where(self._this(update_id), inbound_updates.c.status == "handling", inbound_updates.c.claimed_at < now - STALE_AFTER_S)
            .values(claimed_at=now)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(takeover)).rowcount == 1

    async def handled(self, update_id: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(inbound_updates.update().where(self._this(update_id)).values(status="handled"))

    async def _prune(self, now: float) -> None:
        if now - self._pruned < PRUNE_EVERY_S:
            return
        self._pruned = now
        async with self._engine.begin() as conn:
            await conn.execute(inbound_updates.delete().where(inbound_updates.c.claimed_at < now - KEEP_S))
