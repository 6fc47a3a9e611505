"""Data rights of the bot room: the channels' delivery ledger, Telegram's update ids and Rasa's tracker."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa

from bot.channels.deliveries import deliveries
from core.rights import NoPersonalData, RightsContext, RightsRegistry, RowsWhere, Subject, plain

RASA_EVENTS = "events"  # the table of Rasa's SQLTrackerStore; sender_id is our conversation id


@dataclass(frozen=True)
class RasaTracker:
    """Rasa's tracker rows: in the Tandem database on PostgreSQL, in var/rasa-tracker.db on SQLite
    (bot/processes.write_endpoints). The SQLite file commits separately from the main erasure."""

    room: str = "bot"
    table: str = "rasa_tracker.events"

    def _with_conn(self, ctx: RightsContext, work: Callable[[sa.engine.Connection, sa.Table], Any], empty: Any) -> Any:
        if ctx.settings.is_postgres:
            if not sa.inspect(ctx.conn).has_table(RASA_EVENTS):
                return empty
            return work(ctx.conn, sa.Table(RASA_EVENTS, sa.MetaData(), autoload_with=ctx.conn))
        path = ctx.settings.var_dir / "rasa-tracker.db"
        if not path.exists():
            return empty
        engine = sa.create_engine(f"sqlite:///{path}", future=True, connect_args={"timeout": 10})
        try:
            with engine.begin() as conn:
                if not sa.inspect(conn).has_table(RASA_EVENTS):
                    return empty
                return work(conn, sa.Table(RASA_EVENTS, sa.MetaData(), autoload_with=conn))
        finally:
            engine.dispose()

    def export(self, ctx: RightsContext, subject: Subject) -> list[dict[str, Any]]:
        if not subject.conversation_ids:
            return []

        def work(conn: sa.engine.Connection, table: sa.Table) -> list[dict[str, Any]]:
            query = sa.select(table).where(table.c.sender_id.in_(subject.conversation_ids)).order_by(table.c.id)
            return [plain(r) for r in conn.execute(query).mappings()]

        return self._with_conn(ctx, work, [])

    def erase(self, ctx: RightsContext, subject: Subject) -> int:
        if not subject.conversation_ids:
            return 0

        def work(conn: sa.engine.Connection, table: sa.Table) -> int:
            return int(conn.execute(table.delete().where(table.c.sender_id.in_(subject.conversation_ids))).rowcount or 0)

        return self._with_conn(ctx, work, 0)


def register(registry: RightsRegistry) -> None:
    registry.register(
        RasaTracker(),
        RowsWhere("bot", deliveries, "conversation_id"),
        NoPersonalData("bot", "inbound_updates", "Telegram update ids already handled: no content, no sender"),
    )
