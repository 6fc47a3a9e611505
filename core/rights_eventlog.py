"""Data rights of the event log (answers, misses, searches' scores, feedback/ratings, SLA breaches)."""
from __future__ import annotations

from core.eventlog import conversation_events
from core.rights import RightsRegistry, RowsWhere


def register(registry: RightsRegistry) -> None:
    registry.register(RowsWhere("core", conversation_events, "conversation_id"))
