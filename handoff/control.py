"""What the human side needs from whoever owns the conversations (the router implements it).

The agent API and the dispatcher call these to reach the customer, so handoff/ never imports
a channel.
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

    async def conversation_info(self, conversation_id: str) -> dict[str, Any]:
        """Channel, mode, customer name and profile (e.g. tier, email)."""
        ...

    async def queue_position(self, case: Case, position: int, eta_seconds: float | None) -> None:
        """Tell a waiting customer their place in the queue and the estimated wait."""
        ...

    async def case_transferred(self, case: Case, agent: Account, team: str) -> None:
        """The case went back to the queue for another team: the customer waits again."""
        ...

    async def agent_typing(self, case: Case, agent: Account, typing: bool) -> None: ...

    async def ticket_reply(self, conversation_id: str, agent: Account, text: str) -> dict[str, Any]:
        """An agent's answer to a ticket, said in the customer's conversation (stored either way)."""
        ...

    async def notice(self, conversation_id: str, text: str, kind: str, buttons: list[dict[str, str]] | None = None,
                     **data: Any) -> Any:
        """A bot notice into the conversation whatever its mode (reassignment, follow-up question)."""
        ...

    async def back_to_queue(self, case: Case) -> int:
        """The case is waiting again: the conversation waits for a person; returns the place in the queue."""
        ...
