"""What other rooms may plug into the router, without the router importing them.

server/app.py registers the hooks (today: reports/csat_prompt.py, the satisfaction question). The
router calls them; a hook that fails is logged and never costs the customer a turn.
"""
from __future__ import annotations

from typing import Protocol

from conversations.store import Conversation, Message


class ConversationHooks(Protocol):
    async def customer_turn(self, conversation: Conversation, text: str, payload: str | None) -> list[Message] | None:
        """A customer message in bot mode, before Rasa: the hook's replies if it took the turn, else None."""
        ...

    async def conversation_ended(self, conversation: Conversation, trigger: str, case_id: int | None) -> list[Message]:
        """An agent handed the customer back (trigger "hand_back") or the customer said goodbye ("goodbye")."""
        ...
