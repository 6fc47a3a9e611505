"""Data rights of the customers room: the record, its channel identities, its conversation links."""
from __future__ import annotations

from core.rights import RightsRegistry, RowsWhere
from customers.schema import customer_conversations, customer_identities, customers


def register(registry: RightsRegistry) -> None:
    registry.register(
        RowsWhere("customers", customer_conversations, "customer_id", by="customer", also=(("conversation_id", "conversation"),)),
        RowsWhere("customers", customer_identities, "customer_id", by="customer"),
        RowsWhere("customers", customers, "id", by="customer", also=(("merged_into", "customer"),)),
    )
