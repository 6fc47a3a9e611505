"""Agents' private words: internal notes on a conversation (never shown to the customer) and
canned responses (reusable replies an agent inserts and edits before sending)."""
from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.schema import accounts, canned_responses, case_notes

DEFAULT_CANNED = (
    ("Greeting", "Hi, thanks for waiting. I'm looking into this for you now."),
    ("Order number", "Could you tell me your order number, please? It's in your confirmation email."),
    ("One moment", "Thanks, one moment please while I check."),
    ("Anything else", "Is there anything else I can help you with today?"),
)


class NoteStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, conversation_id: str, case_id: int | None, author_id: int, text: str, kind: str = "note") -> dict[str, Any]:
        now = time.time()
        async with self._engine.begin() as conn:
            result = await conn.execute(case_notes.insert().values(
                conversation_id=conversation_id, case_id=case_id, author_id=author_id, kind=kind, text=text, created_at=now,
            ))
        return (await self.for_conversation(conversation_id, note_id=int(result.inserted_primary_key[0])))[0]

    async def for_conversation(self, conversation_id: str, note_id: int | None = None) -> list[dict[str, Any]]:
        """Notes across every case of the conversation: a returning customer's history stays."""
        query = (
            sa.select(case_notes, accounts.c.display_name.label("author_name"))
            .select_from(case_notes.join(accounts, accounts.c.id == case_notes.c.author_id))
            .where(case_notes.c.conversation_id == conversation_id)
            .order_by(case_notes.c.id)
        )
        if note_id is not None:
            query = query.where(case_notes.c.id == note_id)
        async with self._engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]


class CannedResponses:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def list(self) -> list[dict[str, Any]]:
        async with self._engine.connect() as conn:
            rows = [dict(r) for r in (await conn.execute(sa.select(canned_responses).order_by(canned_responses.c.title))).mappings()]
        if rows:
            return rows
        await self.seed()
        async with self._engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(sa.select(canned_responses).order_by(canned_responses.c.title))).mappings()]

    async def seed(self) -> None:
        """A few starters on first use, so a new team has something to click."""
        async with self._engine.begin() as conn:
            if (await conn.execute(sa.select(sa.func.count()).select_from(canned_responses))).scalar_one():
                return
            now = time.time()
            await conn.execute(canned_responses.insert(), [{"title": t, "text": x, "created_at": now} for t, x in DEFAULT_CANNED])

    async def add(self, title: str, text: str, author_id: int) -> dict[str, Any]:
        async with self._engine.begin() as conn:
            result = await conn.execute(canned_responses.insert().values(title=title, text=text, created_by=author_id, created_at=time.time()))
        return {"id": int(result.inserted_primary_key[0]), "title": title, "text": text, "created_by": author_id}

    async def delete(self, canned_id: int) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(canned_responses.delete().where(canned_responses.c.id == canned_id))
        return result.rowcount == 1
