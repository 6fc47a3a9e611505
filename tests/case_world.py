"""A small real world for the case-timer tests: database (SQLite or PostgreSQL), accounts,
presence, queue and transcripts, plus a clock the test moves by hand."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conversations.store import ConversationStore
from core.db import async_engine
from server.schema import create_schema
from conversations.events import EventLog
from core.settings import Settings
from handoff.accounts import Account, Accounts
from handoff.presence import Presence
from handoff.queue import Case, CaseQueue
from tests.conftest import postgres_url, stack_settings


class Clock:
    """Real time plus an offset the test controls (stored rows keep their real timestamps)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class World:
    settings: Settings
    engine: Any
    queue: CaseQueue
    presence: Presence
    accounts: Accounts
    conversations: ConversationStore
    events: EventLog
    clock: Clock

    async def agent(self, name: str, teams: list[str], capacity: int = 3, online: bool = True) -> Account:
        account = await self.accounts.create(name, f"pw-{name}-123", "agent", name.title())
        await self.presence.configure(account.id, teams=teams, capacity=capacity)
        await self.presence.set_status(account.id, "online" if online else "offline")
        return account

    async def case(self, team: str | None = "billing", text: str = "my refund is late", tier: str | None = None) -> Case:
        conversation = await self.conversations.create("rest")
        await self.conversations.add_message(conversation.id, "customer", text)
        return await self.queue.open_case(conversation.id, "rest", "customer_request", team=team, tier=tier)

    async def kinds(self, conversation_id: str) -> list[str]:
        return [e["kind"] for e in await self.events.for_conversation(conversation_id)]


async def make_world(kind: str, tmp_path: Path, name: str, **more: Any) -> World:
    overrides = {"database_url": postgres_url(name)} if kind == "postgresql" else {}
    settings = stack_settings(tmp_path, **overrides, **more)
    await asyncio.to_thread(create_schema, settings)
    engine = async_engine(settings)
    queue = CaseQueue(engine)
    return World(settings, engine, queue, Presence(engine, settings), Accounts(engine, 8), ConversationStore(engine), EventLog(engine), Clock())
