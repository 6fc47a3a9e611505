"""Customer records: create, find by channel identity, link conversations, update, merge.

Identities are unique per (channel, external id) by primary key, so two processes linking the
same Telegram user at the same moment end with one customer: the loser of the INSERT re-reads.
A merge moves identities and conversation links in one transaction and leaves the absorbed
record as a tombstone (`merged_into`) so old references still resolve.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from customers.identity import Identity
from customers.schema import customer_conversations, customer_identities, customers

Clock = Callable[[], float]
EDITABLE = ("name", "email", "phone", "tier", "notes")


class CustomerError(Exception):
    status = 400


class UnknownCustomer(CustomerError):
    status = 404


class CustomerConflict(CustomerError):
    status = 409


@dataclass
class Customer:
    id: int
    name: str = ""
    email: str = ""
    phone: str = ""
    tier: str = ""
    notes: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    identities: list[dict[str, Any]] = field(default_factory=list)  # {"channel", "external_id", "verified"}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CustomerStore:
    def __init__(self, engine: AsyncEngine, clock: Clock = time.time) -> None:
        self._engine = engine
        self._clock = clock

    async def create(self, name: str = "", email: str = "", phone: str = "", tier: str = "", notes: str = "") -> Customer:
        now = self._clock()
        async with self._engine.begin() as conn:
            result = await conn.execute(customers.insert().values(
                name=name, email=email.lower(), phone=phone, tier=tier.lower(), notes=notes, created_at=now, updated_at=now,
            ))
        return await self.get(int(result.inserted_primary_key[0]))

    async def _resolve(self, conn: Any, customer_id: int) -> int:
        """Follow merge tombstones to the live record."""
        seen: set[int] = set()
        while True:
            row = (await conn.execute(sa.select(customers.c.merged_into).where(customers.c.id == customer_id))).first()
            if row is None:
                raise UnknownCustomer(f"no customer {customer_id}")
            if row[0] is None or customer_id in seen:
                return customer_id
            seen.add(customer_id)
            customer_id = int(row[0])

    async def get(self, customer_id: int) -> Customer:
        async with self._engine.connect() as conn:
            customer_id = await self._resolve(conn, customer_id)
            row = (await conn.execute(sa.select(customers).where(customers.c.id == customer_id))).mappings().first()
            ids = await conn.execute(
                sa.select(customer_identities.c.channel, customer_identities.c.external_id, customer_identities.c.verified)
                .where(customer_identities.c.customer_id == customer_id)
                .order_by(customer_identities.c.channel, customer_identities.c.external_id)
            )
            identities = [dict(r) for r in ids.mappings()]
        assert row is not None
        return Customer(
            id=row["id"], name=row["name"], email=row["email"], phone=row["phone"], tier=row["tier"], notes=row["notes"],
            created_at=row["created_at"], updated_at=row["updated_at"], identities=identities,
        )

    async def find_by_identity(self, channel: str, external_id: str) -> Customer | None:
        query = sa.select(customer_identities.c.customer_id).where(
            customer_identities.c.channel == channel, customer_identities.c.external_id == external_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else await self.get(int(row[0]))

    async def find_by_email(self, email: str) -> list[Customer]:
        query = sa.select(customers.c.id).where(customers.c.email == email.strip().lower(), customers.c.merged_into.is_(None))
        async with self._engine.connect() as conn:
            ids = [int(r[0]) for r in (await conn.execute(query)).all()]
        return [await self.get(i) for i in ids]

    async def add_identity(self, customer_id: int, channel: str, external_id: str, verified: bool = False) -> None:
        """Attach an external id; CustomerError if it already belongs to someone else (merge them instead)."""
        try:
            async with self._engine.begin() as conn:
                customer_id = await self._resolve(conn, customer_id)
                await conn.execute(customer_identities.insert().values(
                    channel=channel, external_id=external_id, customer_id=customer_id, verified=verified, created_at=self._clock(),
                ))
        except sa.exc.IntegrityError:
            owner = await self.find_by_identity(channel, external_id)
            if owner is None or owner.id != (await self.get(customer_id)).id:
                raise CustomerError(f"{channel} id {external_id} belongs to another customer; merge the two records") from None

    async def get_or_create_by_identity(self, channel: str, external_id: str, name: str = "", verified: bool = False) -> Customer:
        """The customer behind a channel id (a Telegram user id), created on first sight; race-free."""
        found = await self.find_by_identity(channel, external_id)
        if found:
            return found
        now = self._clock()
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(customers.insert().values(
                    name=name, email="", phone="", tier="", notes="", created_at=now, updated_at=now,
                ))
                customer_id = int(result.inserted_primary_key[0])
                await conn.execute(customer_identities.insert().values(
                    channel=channel, external_id=external_id, customer_id=customer_id, verified=verified, created_at=now,
                ))
        except sa.exc.IntegrityError:  # someone else created them first; our transaction rolled back
            found = await self.find_by_identity(channel, external_id)
            assert found is not None
            return found
        return await self.get(customer_id)

    async def from_identity(self, identity: Identity) -> Customer:
        """The customer a verified site identity names; the site's details win over older ones."""
        customer = await self.get_or_create_by_identity(identity.channel, identity.user_id, identity.name, verified=True)
        changes = {k: getattr(identity, k) for k in ("name", "email", "phone", "tier") if getattr(identity, k)}
        return await self.update(customer.id, **changes) if changes else customer

    async def update(self, customer_id: int, **changes: str) -> Customer:
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise CustomerError(f"cannot change {', '.join(sorted(unknown))}")
        for key, value in changes.items():
            if not isinstance(value, str) or len(value) > (10000 if key == "notes" else 254):
                raise CustomerError(f"{key} must be a string of at most {10000 if key == 'notes' else 254} characters")
        values: dict[str, Any] = dict(changes)
        for key in ("email", "tier"):
            if key in values:
                values[key] = values[key].strip().lower()
        async with self._engine.begin() as conn:
            customer_id = await self._resolve(conn, customer_id)
            await conn.execute(customers.update().where(customers.c.id == customer_id).values(updated_at=self._clock(), **values))
        return await self.get(customer_id)

    async def link_conversation(self, customer_id: int, conversation_id: str, how: str = "") -> Customer:
        """Say whose conversation this is; a conversation linked before moves to the new owner."""
        customer_id = (await self.get(customer_id)).id
        values = {"customer_id": customer_id, "linked_at": self._clock(), "how": how}
        try:
            async with self._engine.begin() as conn:
                await conn.execute(customer_conversations.insert().values(conversation_id=conversation_id, **values))
        except sa.exc.IntegrityError:  # linked before (or concurrently): the newest link wins
            async with self._engine.begin() as conn:
                await conn.execute(
                    customer_conversations.update().where(customer_conversations.c.conversation_id == conversation_id).values(**values)
                )
        return await self.get(customer_id)

    async def customer_of(self, conversation_id: str) -> Customer | None:
        query = sa.select(customer_conversations.c.customer_id).where(customer_conversations.c.conversation_id == conversation_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else await self.get(int(row[0]))

    async def conversations_of(self, customer_id: int) -> list[str]:
        async with self._engine.connect() as conn:
            customer_id = await self._resolve(conn, customer_id)
            rows = await conn.execute(
                sa.select(customer_conversations.c.conversation_id)
                .where(customer_conversations.c.customer_id == customer_id).order_by(customer_conversations.c.linked_at)
            )
            return [r[0] for r in rows.all()]

    async def merge(self, keep_id: int, absorb_id: int) -> Customer:
        """Fold `absorb_id` into `keep_id`: identities, conversations (and so cases and tickets) follow.

        Empty fields of the kept record take the absorbed record's values; notes are concatenated.
        """
        async with self._engine.begin() as conn:
            keep_id = await self._resolve(conn, keep_id)
            absorb_id = await self._resolve(conn, absorb_id)
            if keep_id == absorb_id:
                raise CustomerError("a customer cannot be merged with itself")
            now = self._clock()
            # Lock both rows in id order (no deadlock between opposite merges) and only while both are
            # live: a concurrent merge that absorbed one of them makes this one a conflict, not a cycle.
            for customer_id in sorted((keep_id, absorb_id)):
                locked = await conn.execute(customers.update().where(customers.c.id == customer_id, customers.c.merged_into.is_(None))
                                            .values(updated_at=now))
                if locked.rowcount != 1:
                    raise CustomerConflict(f"customer {customer_id} was merged meanwhile; reload and try again")
            rows = {
                r["id"]: r for r in (await conn.execute(sa.select(customers).where(customers.c.id.in_((keep_id, absorb_id))))).mappings()
            }
            keep, absorb = rows[keep_id], rows[absorb_id]
            values: dict[str, Any] = {k: keep[k] or absorb[k] for k in ("name", "email", "phone", "tier")}
            values["notes"] = "\n".join(n for n in (keep["notes"], absorb["notes"]) if n)
            await conn.execute(customers.update().where(customers.c.id == keep_id).values(updated_at=now, **values))
            await conn.execute(customer_identities.update().where(customer_identities.c.customer_id == absorb_id).values(customer_id=keep_id))
            await conn.execute(
                customer_conversations.update().where(customer_conversations.c.customer_id == absorb_id).values(customer_id=keep_id)
            )
            # The tombstone keeps no personal data: only where it went.
            await conn.execute(customers.update().where(customers.c.id == absorb_id).values(
                merged_into=keep_id, name="", email="", phone="", tier="", notes="", updated_at=now,
            ))
        return await self.get(keep_id)
