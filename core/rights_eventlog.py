"""Data rights of the event log (answers, misses, searches' scores, feedback/ratings, SLA breaches)."""
from __future__ import annotations

from core.eventlog import conversation_events
from core.rights import NoPersonalData, RightsRegistry, RowsWhere


def register(registry: RightsRegistry) -> None:
    registry.register(
        RowsWhere("core", conversation_events, "conversation_id"),
        NoPersonalData("core", "persona_texts", "the business's own bot texts, written by editors"),
        NoPersonalData("core", "rate_limits", "throttle buckets under SHA-256 hashed keys, expiring within minutes"),
    )
