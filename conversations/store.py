"""Conversations and their messages: who said what, on which channel, and who has the floor.

A conversation's `mode` says who answers the customer: bot | waiting (queued for a person) |
human (an agent has it). Only the router changes it, with compare-and-set updates so two
processes can never both think they own the transition.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import metadata

MODES = ("bot", "waiting", "human")

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("external_id", sa.String(120), nullable=True, index=True),  # e.g. Telegram chat id
    sa.Column("mode", sa.String(10), nullable=False, default="bot"),
    sa.Column("case_id", sa.Integer, nullable=True),
    sa.Column("customer_name", sa.String(120), nullable=False, default=""),
    sa.Column("profile", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("channel", "external_id", name="uq_conversation_channel_external"),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(64), sa.ForeignKey("conversations.id"), nullable=False, index=True),
    sa.Column("sender", sa.String(10), nullable=False),  # customer | bot | agent | system
    sa.Column("text", sa.Text, nullable=False, default=""),
    sa.Column("data", sa.Text, nullable=False, default="{}"),  # buttons, agent name, FAQ id, ...
    sa.Column("created_at", sa.Float, nullable=False),
)

# One row per customer message sent with a client id (widget, REST Idempotency-Key): the
# primary key makes the database refuse a second copy, across web instances and races.
message_receipts = sa.Table(
    "message_receipts",
    metadata,
    sa.Column("conversation_id", sa.String(64), nullable=False),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("message_id", sa.Integer, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),  # answering | answered
    sa.Column("reply_ids", sa.Text, nullable=False, default="[]"),
    sa.Column("mode", sa.String(10), nullable=True),  # who had the floor after the turn
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("conversation_id", "client_id", name="pk_message_receipts"),
)


@dataclass(frozen=True)
class Receipt:
    """What became of a message with a client id: stored as `message_id`, answered or not yet."""

    conversation_id: str
    client_id: str
    message_id: int
    status: str
    reply_ids: list[int]
    mode: str | None
    updated_at: float


class DuplicateMessage(Exception):
    """A message whose client id this conversation already has; nothing new was stored."""

    def __init__(self, receipt: Receipt) -> None:
        super().__init__(f"message {receipt.client_id!r} is already stored as {receipt.message_id}")
        self.receipt = receipt


@dataclass
class Conversation:
    id: str
    channel: str
    mode: str = "bot"
    external_id: str | None = None
    case_id: int | None = None
    customer_name: str = ""
    profile: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass
class Message:
    """One line of the transcript. `id` doubles as the cursor for "messages since"."""

    id: int
    conversation_id: str
    sender: str
    text: str
    data: dict[str, Any]
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "sender": self.sender,
            "text": self.text,
            "created_at": self.created_at,
            **{k: v for k, v in self.data.items() if k in ("buttons", "agent_name", "faq_id", "kind", "decision", "client_id")},
        }


class UnknownConversation(Exception):
    pass


def _conversation(row: Any) -> Conversation:
    return Conversation(
        id=row["id"],
        channel=row["channel"],
        mode=row["mode"],
        external_id=row["external_id"],
        case_id=row["case_id"],
        customer_name=row["customer_name"],
        profile=json.loads(row["profile"] or "{}"),
        created_at=row["created_at"],
    )


def _message(row: Any) -> Message:
    return Message(row["id"], row["conversation_id"], row["sender"], row["text"], json.loads(row["data"]), row["created_at"])


class ConversationStore:
    """Async access to conversations and transcripts."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, channel: str, external_id: str | None = None, customer_name: str = "", profile: dict[str, Any] | None = None) -> Conversation:
        now = time.time()
        conversation = Conversation(
            id=uuid.uuid4().hex, channel=channel, external_id=external_id, customer_name=customer_name,
            profile=profile or {}, created_at=now,
        )
        async with self._engine.begin() as conn:
            await conn.execute(
                conversations.insert().values(
                    id=conversation.id, channel=channel, external_id=external_id, mode="bot",
                    customer_name=customer_name, profile=json.dumps(conversation.profile), created_at=now, updated_at=now,
                )
            )
        return conversation

    async def get(self, conversation_id: str) -> Conversation:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(conversations).where(conversations.c.id == conversation_id))).mappings().first()
        if row is None:
            raise UnknownConversation(conversation_id)
        return _conversation(row)

    async def find_external(self, channel: str, external_id: str) -> Conversation | None:
        query = sa.select(conversations).where(conversations.c.channel == channel, conversations.c.external_id == external_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _conversation(row)

    async def get_or_create_external(self, channel: str, external_id: str, customer_name: str = "") -> Conversation:
        """One conversation per (channel, external id), race-free across processes."""
        found = await self.find_external(channel, external_id)
        if found:
            return found
        try:
            return await self.create(channel, external_id, customer_name)
        except sa.exc.IntegrityError:
            found = await self.find_external(channel, external_id)
            assert found is not None
            return found

    async def set_external_id(self, conversation_id: str, external_id: str | None) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(conversations.update().where(conversations.c.id == conversation_id).values(external_id=external_id))

    async def switch_mode(self, conversation_id: str, from_modes: tuple[str, ...], to_mode: str, case_id: int | None = None) -> bool:
        """Compare-and-set the mode; False if someone else moved it first."""
        if to_mode not in MODES:
            raise ValueError(f"unknown mode {to_mode!r}")
        values: dict[str, Any] = {"mode": to_mode, "updated_at": time.time()}
        if to_mode == "bot":
            values["case_id"] = None
        elif case_id is not None:
            values["case_id"] = case_id
        query = (
            conversations.update()
            .where(conversations.c.id == conversation_id, conversations.c.mode.in_(from_modes))
            .values(**values)
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(query)
        return result.rowcount == 1

    async def update_profile(self, conversation_id: str, **changes: Any) -> None:
        conversation = await self.get(conversation_id)
        profile = {**conversation.profile, **changes}
        async with self._engine.begin() as conn:
            await conn.execute(conversations.update().where(conversations.c.id == conversation_id).values(profile=json.dumps(profile)))

    async def annotate(self, conversation_id: str, message_id: int, **values: Any) -> None:
        """Add to a stored message's data what was learnt about it later (e.g. the NLU's sentiment)."""
        where = (messages.c.id == message_id, messages.c.conversation_id == conversation_id)
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(messages.c.data).where(*where))).first()
            if row is None:
                return
            data = {**(json.loads(row[0]) if row[0] else {}), **values}
            await conn.execute(messages.update().where(*where).values(data=json.dumps(data)))

    async def add_message(self, conversation_id: str, sender: str, text: str, **data: Any) -> Message:
        """Store one message. With data["client_id"] the message and its receipt commit together,
        or DuplicateMessage says which stored message that client id already is."""
        now = time.time()
        client_id = data.get("client_id")
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    messages.insert().values(conversation_id=conversation_id, sender=sender, text=text, data=json.dumps(data), created_at=now)
                )
                message_id = int(result.inserted_primary_key[0])
                if client_id:
                    await conn.execute(message_receipts.insert().values(
                        conversation_id=conversation_id, client_id=client_id, message_id=message_id, status="answering",
                        reply_ids="[]", created_at=now, updated_at=now,
                    ))
                await conn.execute(conversations.update().where(conversations.c.id == conversation_id).values(updated_at=now))
        except sa.exc.IntegrityError:
            receipt = await self.receipt(conversation_id, client_id) if client_id else None
            if receipt is None:
                raise
            raise DuplicateMessage(receipt) from None
        return Message(message_id, conversation_id, sender, text, data, now)

    async def receipt(self, conversation_id: str, client_id: str) -> Receipt | None:
        query = sa.select(message_receipts).where(
            message_receipts.c.conversation_id == conversation_id, message_receipts.c.client_id == client_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        return Receipt(row["conversation_id"], row["client_id"], row["message_id"], row["status"],
                       json.loads(row["reply_ids"] or "[]"), row["mode"], row["updated_at"])

    async def finish_receipt(self, conversation_id: str, client_id: str, reply_ids: list[int], mode: str) -> None:
        """The turn of a message with a client id is over: remember its replies for retries."""
        query = (
            message_receipts.update()
            .where(message_receipts.c.conversation_id == conversation_id, message_receipts.c.client_id == client_id)
            .values(status="answered", reply_ids=json.dumps(reply_ids), mode=mode, updated_at=time.time())
        )
        async with self._engine.begin() as conn:
            await conn.execute(query)

    async def messages_by_id(self, conversation_id: str, ids: list[int]) -> list[Message]:
        if not ids:
            return []
        query = sa.select(messages).where(messages.c.conversation_id == conversation_id, messages.c.id.in_(ids)).order_by(messages.c.id)
        async with self._engine.connect() as conn:
            return [_message(r) for r in (await conn.execute(query)).mappings()]

    async def messages_since(self, conversation_id: str, after: int = 0, limit: int = 500) -> list[Message]:
        query = (
            sa.select(messages)
            .where(messages.c.conversation_id == conversation_id, messages.c.id > after)
            .order_by(messages.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_message(r) for r in (await conn.execute(query)).mappings()]

