"""Export and erasure of everything held about one customer, and the retention sweep.

Every room's handlers are composed here (one `register` line per room, children first); the
registry's `uncovered()` check makes a new table without a handler fail the tests. Work runs on
the synchronous engine in one transaction; call it from the web process with asyncio.to_thread.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa

import bot.rights
import conversations.rights
import core.rights
import customers.rights
import handoff.rights
import knowledge.rights
import mail.rights
import reports.rights
from conversations.store import conversations as conversation_table
from core.rights import RightsContext, RightsRegistry, Subject, chunks
from core.settings import Settings
from customers.schema import customer_conversations, customer_identities, customers as customer_table
from handoff.schema import cases, tickets

Clock = Callable[[], float]
ROOMS = (mail.rights, reports.rights, handoff.rights, bot.rights, conversations.rights, customers.rights, knowledge.rights, core.rights)


def default_registry() -> RightsRegistry:
    registry = RightsRegistry()
    for room in ROOMS:
        room.register(registry)
    return registry


class OpenCaseError(Exception):
    """The customer is being helped right now; close the case first (or pass force=True)."""

    status = 409


@dataclass(frozen=True)
class Erasure:
    subject: Subject
    counts: dict[str, int]


class DataRights:
    def __init__(self, engine: sa.engine.Engine, settings: Settings, registry: RightsRegistry | None = None, clock: Clock = time.time) -> None:
        self._engine = engine
        self._settings = settings
        self.registry = registry or default_registry()
        self._clock = clock

    def dispose(self) -> None:
        """Close the engine's connections (the web process's shutdown)."""
        self._engine.dispose()

    def subject_for_customer(self, conn: sa.engine.Connection, customer_id: int) -> Subject:
        """The customer, every record merged into them, their conversations and addresses."""
        ids = {customer_id}
        frontier = {customer_id}
        while frontier:
            found = {r[0] for r in conn.execute(sa.select(customer_table.c.id).where(customer_table.c.merged_into.in_(frontier)))}
            frontier = found - ids
            ids |= found
        conv_ids = {r[0] for r in conn.execute(
            sa.select(customer_conversations.c.conversation_id).where(customer_conversations.c.customer_id.in_(ids)))}
        identities = conn.execute(sa.select(customer_identities.c.channel, customer_identities.c.external_id)
                                  .where(customer_identities.c.customer_id.in_(ids))).all()
        for channel, external_id in identities:
            conv_ids |= {r[0] for r in conn.execute(sa.select(conversation_table.c.id).where(
                conversation_table.c.channel == channel, conversation_table.c.external_id == external_id))}
        contacts: set[str] = set()
        for email, phone in conn.execute(sa.select(customer_table.c.email, customer_table.c.phone).where(customer_table.c.id.in_(ids))):
            contacts |= {v.strip().lower() for v in (email, phone) if v and v.strip()}
        for batch in chunks(sorted(conv_ids)):
            contacts |= {r[0].lower() for r in conn.execute(
                sa.select(tickets.c.contact).where(tickets.c.conversation_id.in_(batch), tickets.c.contact != "")) if r[0]}
        return Subject(conversation_ids=tuple(sorted(conv_ids)), customer_ids=tuple(sorted(ids)), contacts=tuple(sorted(contacts)))

    def _exists(self, conn: sa.engine.Connection, customer_id: int) -> None:
        if conn.execute(sa.select(customer_table.c.id).where(customer_table.c.id == customer_id)).first() is None:
            raise KeyError(f"no customer {customer_id}")

    def export_customer(self, customer_id: int) -> dict[str, Any]:
        """Everything held about the customer, by room and table, as JSON-ready data."""
        with self._engine.connect() as conn:
            self._exists(conn, customer_id)
            subject = self.subject_for_customer(conn, customer_id)
            data = self.registry.export(RightsContext(conn, self._settings), subject)
        return {"customer_id": customer_id, "exported_at": self._clock(), "conversation_ids": list(subject.conversation_ids), "data": data}

    def erase_customer(self, customer_id: int, force: bool = False) -> Erasure:
        """Delete every row about the customer in one transaction (Rasa's SQLite file commits apart).

        Refuses while one of their cases is waiting or assigned, so a live chat is not cut off.
        """
        with self._engine.begin() as conn:
            self._exists(conn, customer_id)
            subject = self.subject_for_customer(conn, customer_id)
            if not force and subject.conversation_ids:
                live = conn.execute(sa.select(cases.c.id).where(
                    cases.c.conversation_id.in_(subject.conversation_ids), cases.c.status.in_(("waiting", "assigned")))).first()
                if live is not None:
                    raise OpenCaseError(f"case {live[0]} of this customer is open; close it before erasing")
            counts = self.registry.erase(RightsContext(conn, self._settings), subject)
        return Erasure(subject, counts)

    def erase_conversations(self, conversation_ids: tuple[str, ...]) -> Erasure:
        subject = Subject(conversation_ids=tuple(sorted(set(conversation_ids))))
        with self._engine.begin() as conn:
            counts = self.registry.erase(RightsContext(conn, self._settings), subject)
        return Erasure(subject, counts)

    def expired_conversations(self, days: int) -> list[str]:
        """Conversations untouched for `days` days and without an open case."""
        cutoff = self._clock() - days * 86400.0
        open_case = sa.select(cases.c.id).where(cases.c.conversation_id == conversation_table.c.id, cases.c.status.in_(("waiting", "assigned")))
        query = sa.select(conversation_table.c.id).where(conversation_table.c.updated_at < cutoff, ~sa.exists(open_case)).order_by(conversation_table.c.id)
        with self._engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    def apply_retention(self, days: int | None = None, batch: int = 200) -> int:
        """Erase expired conversations in batches (settings.customers.retention_days; 0: keep forever)."""
        days = self._settings.customers.retention_days if days is None else days
        if days <= 0:
            return 0
        expired = self.expired_conversations(days)
        for part in chunks(expired, batch):
            self.erase_conversations(part)
        return len(expired)
