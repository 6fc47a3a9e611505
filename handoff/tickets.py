"""Tickets: what a customer leaves when no one can chat now (nobody online, or after hours).

A ticket starts as a `draft` while the customer is asked for a contact, becomes `open` with the
transcript snapshot, is `answered` once an agent replies (the reply is stored here and said in
the customer's conversation, so their channel shows it when they are back), and `closed`.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.schema import accounts, ticket_replies, tickets

# An address as mail servers take it (RFC 5321/5322 dot-atom, no quoted local parts): the local
# part is atext (letters, digits and !#$%&'*+/=?^_`{|}~-, non-ASCII letters too) in dot-separated
# runs; the domain is LDH labels (IDN allowed: checked after IDNA encoding) and a letter TLD.
# Anything with < > " ( ) , ; : [ ] \ or spaces is not an address (and is not stored as one).
LOCAL_PART = re.compile(r"^[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*$")
DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
PHONE = re.compile(r"^\+?[\d\s().-]{7,20}$")
STATUSES = ("draft", "open", "answered", "closed")


class TicketError(Exception):
    status = 400


class UnknownTicket(TicketError):
    status = 404


@dataclass
class Ticket:
    id: int
    conversation_id: str
    channel: str
    case_id: int | None
    status: str
    contact: str
    team: str | None
    reason: str
    detail: str
    created_at: float
    updated_at: float
    transcript: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, full: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not full:
            data.pop("transcript")
            data.pop("replies")
        return data


def is_email(value: str) -> bool:
    if value.count("@") != 1 or len(value) > 254:
        return False
    local, domain = value.split("@")
    if not 1 <= len(local) <= 64 or not LOCAL_PART.match(local):
        return False
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except (UnicodeError, ValueError):
        return False
    labels = ascii_domain.split(".")
    return len(labels) >= 2 and all(DOMAIN_LABEL.match(label) for label in labels) and bool(TLD.match(labels[-1]))


def clean_contact(text: str) -> str | None:
    """An email address or a phone number, normalised; None if it is neither."""
    value = text.strip()
    if is_email(value):
        return value.lower()
    if PHONE.match(value) and sum(c.isdigit() for c in value) >= 7:
        return re.sub(r"[\s().-]", "", value)
    return None


def _ticket(row: Any) -> Ticket:
    return Ticket(
        id=row["id"], conversation_id=row["conversation_id"], channel=row["channel"], case_id=row["case_id"],
        status=row["status"], contact=row["contact"], team=row["team"], reason=row["reason"], detail=row["detail"],
        created_at=row["created_at"], updated_at=row["updated_at"], transcript=json.loads(row["transcript"] or "[]"),
    )


class TicketStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def start_draft(self, conversation_id: str, channel: str, case_id: int | None, team: str | None, reason: str, detail: str) -> Ticket:
        """One draft per conversation: asking twice returns the same draft."""
        existing = await self.draft_for(conversation_id)
        if existing:
            return existing
        now = time.time()
        async with self._engine.begin() as conn:
            result = await conn.execute(tickets.insert().values(
                conversation_id=conversation_id, channel=channel, case_id=case_id, status="draft", contact="",
                team=team, reason=reason, detail=detail, transcript="[]", created_at=now, updated_at=now,
            ))
        return await self.get(int(result.inserted_primary_key[0]))

    async def draft_for(self, conversation_id: str) -> Ticket | None:
        query = sa.select(tickets).where(tickets.c.conversation_id == conversation_id, tickets.c.status == "draft").order_by(tickets.c.id.desc())
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _ticket(row)

    async def open(self, ticket_id: int, contact: str, transcript: list[dict[str, Any]]) -> Ticket:
        """The draft gets its contact and the transcript so far; agents see it from now on."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                tickets.update().where(tickets.c.id == ticket_id, tickets.c.status == "draft")
                .values(status="open", contact=contact, transcript=json.dumps(transcript, default=str), updated_at=time.time())
            )
        if result.rowcount != 1:
            raise TicketError(f"ticket {ticket_id} is not a draft")
        return await self.get(ticket_id)

    async def discard_draft(self, conversation_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(tickets.delete().where(tickets.c.conversation_id == conversation_id, tickets.c.status == "draft"))

    async def get(self, ticket_id: int) -> Ticket:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(tickets).where(tickets.c.id == ticket_id))).mappings().first()
            if row is None:
                raise UnknownTicket(f"no ticket {ticket_id}")
            ticket = _ticket(row)
            replies = await conn.execute(
                sa.select(ticket_replies, accounts.c.display_name.label("agent_name"))
                .select_from(ticket_replies.join(accounts, accounts.c.id == ticket_replies.c.author_id))
                .where(ticket_replies.c.ticket_id == ticket_id).order_by(ticket_replies.c.id)
            )
            ticket.replies = [dict(r) for r in replies.mappings()]
        return ticket

    async def list(self, status: str | None = None, limit: int = 200) -> list[Ticket]:
        query = sa.select(tickets).where(tickets.c.status != "draft").order_by(tickets.c.created_at).limit(limit)
        if status == "pending":
            query = query.where(tickets.c.status.in_(("open", "answered")))
        elif status:
            query = query.where(tickets.c.status == status)
        async with self._engine.connect() as conn:
            return [_ticket(r) for r in (await conn.execute(query)).mappings()]

    async def add_reply(self, ticket_id: int, author_id: int, text: str) -> dict[str, Any]:
        ticket = await self.get(ticket_id)
        if ticket.status in ("draft", "closed"):
            raise TicketError(f"ticket {ticket_id} is {ticket.status}")
        now = time.time()
        async with self._engine.begin() as conn:
            result = await conn.execute(ticket_replies.insert().values(ticket_id=ticket_id, author_id=author_id, text=text, created_at=now))
            await conn.execute(tickets.update().where(tickets.c.id == ticket_id).values(status="answered", updated_at=now))
        return {"id": int(result.inserted_primary_key[0]), "ticket_id": ticket_id, "author_id": author_id, "text": text, "created_at": now}

    async def set_reply_message(self, reply_id: int, message_id: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(ticket_replies.update().where(ticket_replies.c.id == reply_id).values(message_id=message_id))

    async def close(self, ticket_id: int) -> Ticket:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                tickets.update().where(tickets.c.id == ticket_id, tickets.c.status.in_(("open", "answered"))).values(status="closed", updated_at=time.time())
            )
        if result.rowcount != 1:
            ticket = await self.get(ticket_id)
            raise TicketError(f"ticket {ticket_id} is {ticket.status}")
        return await self.get(ticket_id)

    async def contacts_for(self, conversation_id: str) -> list[str]:
        """The contacts the customer left on this conversation's tickets, newest first (follow-up mail)."""
        query = sa.select(tickets.c.contact).where(tickets.c.conversation_id == conversation_id, tickets.c.contact != "").order_by(tickets.c.id.desc())
        async with self._engine.connect() as conn:
            return [r[0] for r in (await conn.execute(query)).all()]
