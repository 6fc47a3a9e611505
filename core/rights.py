"""Data rights: export and erase everything held about a person, room by room.

Each room registers one `TableRights` per table it owns (and per store outside the Tandem
database, such as Rasa's tracker). `RightsRegistry.uncovered()` lists every table on the shared
MetaData that no room claimed, and a test fails while that list is not empty, so a new room
cannot add a table and forget to say how its rows are exported and erased. Tables that hold no
customer data (staff accounts, FAQ entries) are claimed explicitly with `NoPersonalData`.

Handlers run on one synchronous connection inside one transaction (the whole erasure commits or
nothing does), in registration order: children before parents, so foreign keys hold.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

import sqlalchemy as sa

from core.settings import Settings


@dataclass(frozen=True)
class Subject:
    """Whose data: their conversations, their customer record, their contact addresses."""

    conversation_ids: tuple[str, ...] = ()
    customer_ids: tuple[int, ...] = ()
    contacts: tuple[str, ...] = ()  # e-mail addresses and phone numbers, lower-cased


@dataclass
class RightsContext:
    conn: sa.engine.Connection  # the one transaction on the Tandem database
    settings: Settings


class TableRights(Protocol):
    """Export and erase one table's rows about a subject."""

    room: str
    table: str

    def export(self, ctx: RightsContext, subject: Subject) -> list[dict[str, Any]]: ...

    def erase(self, ctx: RightsContext, subject: Subject) -> int: ...


def plain(row: Any) -> dict[str, Any]:
    """A row as JSON-ready values; JSON text columns are decoded so exports read naturally."""
    out: dict[str, Any] = {}
    for key, value in dict(row).items():
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        elif isinstance(value, (bytes, bytearray)):
            value = value.decode("utf-8", "replace")
        out[key] = value
    return out


@dataclass(frozen=True)
class RowsWhere:
    """Rows of `table` whose `column` holds one of the subject's conversation ids / customer ids / contacts."""

    room: str
    table_obj: sa.Table
    column: str
    by: str = "conversation"  # conversation | customer | contact
    also: tuple[tuple[str, str], ...] = ()  # more (column, by) pairs, OR-ed: e.g. tickets by contact too

    @property
    def table(self) -> str:
        return self.table_obj.name

    def _where(self, subject: Subject) -> sa.sql.ColumnElement | None:
        keys = {"conversation": subject.conversation_ids, "customer": subject.customer_ids, "contact": subject.contacts}
        parts = []
        for name, by in ((self.column, self.by), *self.also):
            if keys[by]:
                column = self.table_obj.c[name]
                parts.append(sa.func.lower(column).in_(keys[by]) if by == "contact" else column.in_(keys[by]))
        return sa.or_(*parts) if parts else None

    def export(self, ctx: RightsContext, subject: Subject) -> list[dict[str, Any]]:
        where = self._where(subject)
        if where is None:
            return []
        return [plain(r) for r in ctx.conn.execute(sa.select(self.table_obj).where(where)).mappings()]

    def erase(self, ctx: RightsContext, subject: Subject) -> int:
        where = self._where(subject)
        if where is None:
            return 0
        return int(ctx.conn.execute(self.table_obj.delete().where(where)).rowcount or 0)


@dataclass(frozen=True)
class ChildRows:
    """Rows of `table` that belong to parent rows (e.g. ticket replies of the subject's tickets)."""

    room: str
    table_obj: sa.Table
    column: str  # the child's reference to the parent's key
    parent: RowsWhere
    parent_key: str = "id"

    @property
    def table(self) -> str:
        return self.table_obj.name

    def _where(self, subject: Subject) -> sa.sql.ColumnElement | None:
        where = self.parent._where(subject)
        if where is None:
            return None
        parents = sa.select(self.parent.table_obj.c[self.parent_key]).where(where)
        return self.table_obj.c[self.column].in_(parents)

    def export(self, ctx: RightsContext, subject: Subject) -> list[dict[str, Any]]:
        where = self._where(subject)
        return [] if where is None else [plain(r) for r in ctx.conn.execute(sa.select(self.table_obj).where(where)).mappings()]

    def erase(self, ctx: RightsContext, subject: Subject) -> int:
        where = self._where(subject)
        return 0 if where is None else int(ctx.conn.execute(self.table_obj.delete().where(where)).rowcount or 0)


@dataclass(frozen=True)
class NoPersonalData:
    """A table claimed on purpose as holding nothing about customers (say why)."""

    room: str
    table: str
    why: str

    def export(self, ctx: RightsContext, subject: Subject) -> list[dict[str, Any]]:
        return []

    def erase(self, ctx: RightsContext, subject: Subject) -> int:
        return 0


@dataclass
class RightsRegistry:
    handlers: list[TableRights] = field(default_factory=list)

    def register(self, *handlers: TableRights) -> None:
        for handler in handlers:
            if any(h.table == handler.table and h.room == handler.room for h in self.handlers):
                raise ValueError(f"{handler.room}.{handler.table} is registered twice")
            self.handlers.append(handler)

    def covered(self) -> set[str]:
        return {h.table for h in self.handlers}

    def uncovered(self, metadata: sa.MetaData) -> list[str]:
        """Tables on the MetaData that no room claimed: each is a data-rights hole."""
        return sorted(set(metadata.tables) - self.covered())

    def export(self, ctx: RightsContext, subject: Subject) -> dict[str, dict[str, list[dict[str, Any]]]]:
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for handler in self.handlers:
            rows = handler.export(ctx, subject)
            if rows:
                out.setdefault(handler.room, {})[handler.table] = rows
        return out

    def erase(self, ctx: RightsContext, subject: Subject) -> dict[str, int]:
        counts: dict[str, int] = {}
        for handler in self.handlers:
            n = handler.erase(ctx, subject)
            if n:
                counts[f"{handler.room}.{handler.table}"] = n
        return counts


def chunks(values: Iterable[Any], size: int = 500) -> Iterable[tuple[Any, ...]]:
    """Bound IN lists (SQLite allows 32766 parameters; PostgreSQL is fine either way)."""
    batch: list[Any] = []
    for value in values:
        batch.append(value)
        if len(batch) == size:
            yield tuple(batch)
            batch = []
    if batch:
        yield tuple(batch)


def register(registry: RightsRegistry) -> None:
    """core's own tables hold no personal data."""
    registry.register(
        NoPersonalData("core", "persona_texts", "the business's own bot texts, written by editors"),
        NoPersonalData("core", "rate_limits", "throttle buckets under SHA-256 hashed keys, expiring within minutes"),
    )
