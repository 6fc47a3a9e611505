"""Data rights of the conversations room: conversations, their messages, receipts and the event log."""
from __future__ import annotations

from conversations.events import conversation_events
from conversations.store import conversations, message_receipts, messages
from core.rights import RightsRegistry, RowsWhere


def register(registry: RightsRegistry) -> None:
    """Children first: receipts and events point at messages and conversations."""
    registry.register(
        RowsWhere("conversations", conversation_events, "conversation_id"),
        RowsWhere("conversations", message_receipts, "conversation_id"),
        RowsWhere("conversations", messages, "conversation_id"),
        RowsWhere("conversations", conversations, "id"),
    )
