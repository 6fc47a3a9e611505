"""What the human side needs from whoever owns the conversations (the router implements it).

The agent API calls these to reach the customer, so handoff/ never imports a channel.
"""
from __future__ import annotations

from typing import Any, Protocol

from handoff.accounts import Account
from handoff.queue import Case


class ConversationControl(Protocol):
    async def agent_joined(self, case: Case, agent: Account) -> None: ...

    async def agent_message(self, case: Case, agent: Account, text: str) -> dict[str, Any]: ...

    async def hand_back(self, case: Case, agent: Account | None, resolution: str) -> None: ...

    async def transcript(self, conversation_id: str) -> list[dict[str, Any]]: ...
