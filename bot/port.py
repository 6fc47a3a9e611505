"""What a channel adapter may ask of the conversation's owner: the channels' one door in.

REST, the widget and Telegram see the router only through this port, the way
python-telegram-bot's handlers see only their BaseHandler contract: start a conversation, say
something as the customer, read its history, follow it live, give feedback, show typing. The
router (bot/router.py) implements it; how conversations are stored, logged and published stays
behind it, so a channel never touches the stores, the event log or the bus.
"""
from __future__ import annotations

import asyncio
from typing import Any, Protocol

from conversations.store import Conversation, Message


class ChannelPort(Protocol):
    # -- a conversation ---------------------------------------------------------------------
    async def start_conversation(self, channel: str, external_id: str | None = None, customer_name: str = "") -> Conversation:
        """A new conversation on this channel (logged as started)."""
        ...

    async def conversation_for(self, channel: str, external_id: str, customer_name: str = "") -> Conversation:
        """The conversation of a push channel's chat, started on first contact (race-free)."""
        ...

    async def conversation(self, conversation_id: str) -> Conversation:
        """Its mode, channel and profile (UnknownConversation if there is none)."""
        ...

    async def note_profile(self, conversation_id: str, **values: Any) -> None:
        """Remember what the channel knows about the customer (site key, language, ...)."""
        ...

    async def restart(self, conversation_id: str, external_id: str) -> None:
        """The chat starts afresh: the old conversation keeps its transcript under a new external id."""
        ...

    # -- the customer speaks ----------------------------------------------------------------
    async def customer_turn(self, conversation_id: str, text: Any, payload: str | None = None, client_id: str | None = None) -> Any:
        """Store, answer and publish one customer message (a `Turn`)."""
        ...

    async def customer_message(self, conversation_id: str, text: Any, payload: str | None = None) -> list[Message]:
        """The same without a client id; the replies."""
        ...

    async def replayed_turn(self, conversation_id: str, client_id: str, timeout: float) -> Any:
        """A retried message's original turn (waits for it while another instance answers)."""
        ...

    async def feedback(self, conversation_id: str, message_id: int, helpful: bool) -> None: ...

    async def customer_typing(self, conversation_id: str, typing: bool) -> None: ...

    # -- reading ------------------------------------------------------------------------------
    async def history(self, conversation_id: str, after: int = 0, limit: int = 500) -> list[Message]:
        """Messages after the cursor (a message id), oldest first."""
        ...

    def follow(self, conversation_id: str) -> "asyncio.Queue[dict[str, Any]]":
        """Live updates of the conversation from every instance; `unfollow` when done."""
        ...

    def unfollow(self, conversation_id: str, updates: "asyncio.Queue[dict[str, Any]]") -> None: ...

    # -- push channels (Telegram): what was said outside an update, and what could not be sent --
    def follow_channel(self, channel: str) -> "asyncio.Queue[dict[str, Any]]":
        """Every message said in this channel's conversations, from every instance."""
        ...

    def unfollow_channel(self, channel: str, updates: "asyncio.Queue[dict[str, Any]]") -> None: ...

    async def delivery_failed(self, conversation_id: str, message_id: int, error: str, **detail: Any) -> None:
        """A stored message the channel gave up sending (logged for agents and incident reading)."""
        ...
