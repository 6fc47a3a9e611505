"""The hooks channel adapters call to say whose conversation this is (one call each).

The customer's tier is copied into the conversation's profile, which is what routing
(handoff/routing.py, priority points) and the escalation policy (metadata "tier", earlier
escalation for `priority_tiers`) already read; so linking is all it takes for a VIP to be one.
"""
from __future__ import annotations

from typing import Any

from conversations.store import ConversationStore
from core.settings import CustomerSettings
from customers.identity import verify_identity
from customers.store import Customer, CustomerStore


async def _into_profile(conversations: ConversationStore, conversation_id: str, customer: Customer) -> None:
    changes: dict[str, Any] = {"customer_id": customer.id}
    if customer.tier:
        changes["tier"] = customer.tier
    await conversations.update_profile(conversation_id, **changes)


async def link_telegram(store: CustomerStore, conversations: ConversationStore, conversation_id: str, user_id: int | str,
                        name: str = "") -> Customer:
    """A Telegram user id is an identity Telegram vouches for: one customer per user, on first message."""
    customer = await store.get_or_create_by_identity("telegram", str(user_id), name, verified=True)
    customer = await store.link_conversation(customer.id, conversation_id, "telegram")
    await _into_profile(conversations, conversation_id, customer)
    return customer


async def link_site_identity(
    store: CustomerStore, conversations: ConversationStore, settings: CustomerSettings, conversation_id: str, site_key: str,
    identity: Any, now: float,
) -> Customer | None:
    """The widget's `identity: {payload, signature}`; anything not verifiable is ignored (None), never an error."""
    if not isinstance(identity, dict):
        return None
    verified = verify_identity(site_key, identity.get("payload"), identity.get("signature"), now, settings=settings)
    if verified is None:
        return None
    customer = await store.from_identity(verified)
    customer = await store.link_conversation(customer.id, conversation_id, "identity")
    await _into_profile(conversations, conversation_id, customer)
    return customer
