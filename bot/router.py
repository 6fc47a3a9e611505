"""The router: the one owner of who answers a conversation, the bot or a person.

Every channel hands customer messages here, and the agent API hands agent actions here. In
bot mode a message goes to Rasa; when an action asks for a person (a `tandem.escalate` custom
payload) the router opens a case and pauses Rasa. In waiting/human mode messages go to the
agent and are appended to Rasa's tracker, so the tracker tells the whole story. On hand-back
the router resumes Rasa and triggers EXTERNAL_handed_back, and the bot carries on.
Everything said is stored before anything is sent, and published on the bus for live clients.
"""
from __future__ import annotations

import logging
from typing import Any

from bot.conversations import Conversation, ConversationStore, Message
from bot.rasa_client import RasaClient, RasaUnavailable
from core.bus import Bus
from core.eventlog import EventLog
from core.settings import Settings
from handoff.accounts import Account
from handoff.queue import Case, CaseQueue

log = logging.getLogger(__name__)

REQUEST_HUMAN = "/request_human"
LEAVE_QUEUE = "/leave_queue"
TALK_TO_PERSON = {"title": "Talk to a person", "payload": REQUEST_HUMAN}
BOT_DOWN_TEXT = (
    "Sorry, our assistant is having trouble right now. Your message is saved. "
    "Would you like a person from our team to take over?"
)


class InvalidMessage(ValueError):
    """A customer or agent message that cannot be accepted; the text says why."""


def clean_text(text: Any, limit: int) -> str:
    """Accept printable text only: not empty, not binary, not longer than `limit` characters."""
    if not isinstance(text, str):
        raise InvalidMessage("'text' must be a string")
    if "\x00" in text or any(ord(c) < 32 and c not in "\n\r\t" for c in text):
        raise InvalidMessage("message contains binary data")
    stripped = text.strip()
    if not stripped:
        raise InvalidMessage("message is empty")
    if len(stripped) > limit:
        raise InvalidMessage(f"message is too long ({len(stripped)} characters; the limit is {limit})")
    return stripped


class Router:
    def __init__(
        self,
        settings: Settings,
        conversations: ConversationStore,
        queue: CaseQueue,
        rasa: RasaClient,
        events: EventLog,
        bus: Bus,
    ) -> None:
        self.settings = settings
        self.conversations = conversations
        self.queue = queue
        self.rasa = rasa
        self.events = events
        self.bus = bus

    # -- conversations ---------------------------------------------------------------------
    async def start_conversation(self, channel: str, external_id: str | None = None, customer_name: str = "") -> Conversation:
        conversation = await self.conversations.create(channel, external_id, customer_name)
        await self.events.record(conversation.id, "conversation_started", channel)
        return conversation

    async def _say(self, conversation: Conversation, sender: str, text: str, **data: Any) -> Message:
        """Store first, then publish: a live client may miss a push, never a stored message."""
        message = await self.conversations.add_message(conversation.id, sender, text, **data)
        payload = {"type": "message", "channel": conversation.channel, "message": message.to_dict()}
        await self.bus.publish(f"conversation:{conversation.id}", payload)
        await self.bus.publish(f"channel:{conversation.channel}", {**payload, "external_id": conversation.external_id})
        if conversation.mode != "bot" or sender == "agent":
            await self.bus.publish("agents", {**payload, "case_id": conversation.case_id})
        return message

    # -- the customer speaks ---------------------------------------------------------------
    async def customer_message(self, conversation_id: str, text: Any, payload: str | None = None) -> list[Message]:
        """Handle one customer message; returns the replies it produced (stored and published)."""
        conversation = await self.conversations.get(conversation_id)
        if payload is not None and (not isinstance(payload, str) or len(payload) > 500):
            raise InvalidMessage("'payload' must be a short string")
        text = clean_text(text if payload is None else (text or payload), self.settings.max_message_chars)
        await self._say(conversation, "customer", text)
        await self.events.record(conversation.id, "message_in", conversation.channel, length=len(text))
        to_rasa = payload or text
        if conversation.mode == "bot":
            return await self._to_bot(conversation, to_rasa)
        if payload == LEAVE_QUEUE and conversation.mode == "waiting":
            return await self.leave_queue(conversation)
        await self._append_to_tracker(conversation.id, [{
            "event": "user", "text": text, "metadata": {"mode": conversation.mode},
            "parse_data": {"text": text, "intent": {"name": "handoff_message", "confidence": 1.0}, "entities": []},
        }])
        return []

    async def _to_bot(self, conversation: Conversation, text: str) -> list[Message]:
        try:
            outputs = await self.rasa.send(conversation.id, text, {"channel": conversation.channel})
        except RasaUnavailable as exc:
            log.warning("conversation %s: %s", conversation.id, exc)
            await self.events.record(conversation.id, "bot_unavailable", conversation.channel, error=str(exc))
            if text == REQUEST_HUMAN:
                return await self.escalate(conversation, "bot_unavailable", "the assistant was unavailable; the customer chose a person")
            return [await self._say(conversation, "system", BOT_DOWN_TEXT, buttons=[TALK_TO_PERSON], kind="bot_unavailable")]
        return await self._apply_outputs(conversation, outputs)

    async def _apply_outputs(self, conversation: Conversation, outputs: list[dict[str, Any]]) -> list[Message]:
        """Store Rasa's replies; act on Tandem's custom payloads (answer metadata, escalation)."""
        replies: list[Message] = []
        meta: dict[str, Any] = {}
        escalation: dict[str, Any] | None = None
        for output in outputs:
            custom = output.get("custom")
            if isinstance(custom, dict) and isinstance(custom.get("tandem"), dict):
                tandem = custom["tandem"]
                meta.update(tandem)
                if "escalate" in tandem:
                    escalation = tandem["escalate"]
                continue
            text = output.get("text")
            if not text:
                continue
            data: dict[str, Any] = {}
            if output.get("buttons"):
                data["buttons"] = [{"title": b.get("title", ""), "payload": b.get("payload", "")} for b in output["buttons"]]
            if "answer" in meta:
                data["faq_id"] = meta["answer"]["faq_id"]
                data["kind"] = "faq_answer"
            replies.append(await self._say(conversation, "bot", text, **data))
        await self._record_turn(conversation, meta)
        if escalation:
            replies += await self.escalate(
                conversation, str(escalation.get("reason", "unknown")), str(escalation.get("detail", "")), signals=escalation
            )
        return replies

    async def _record_turn(self, conversation: Conversation, meta: dict[str, Any]) -> None:
        if "answer" in meta:
            await self.events.record(
                conversation.id, "answered", conversation.channel, **meta["answer"], candidates=meta.get("candidates", []), nlu=meta.get("nlu", {})
            )
        elif "miss" in meta:
            await self.events.record(conversation.id, "missed", conversation.channel, **meta["miss"], candidates=meta.get("candidates", []))

    # -- to a person and back --------------------------------------------------------------
    async def escalate(self, conversation: Conversation, reason: str, detail: str, signals: dict[str, Any] | None = None) -> list[Message]:
        """Queue the conversation for a person and pause the bot. Idempotent."""
        if conversation.mode != "bot":
            return []
        case = await self.queue.open_case(conversation.id, conversation.channel, reason, detail, signals)
        if not await self.conversations.switch_mode(conversation.id, ("bot",), "waiting", case.id):
            return []
        conversation.mode, conversation.case_id = "waiting", case.id
        await self._append_to_tracker(conversation.id, [{"event": "pause"}])
        await self.events.record(conversation.id, "escalated", conversation.channel, case_id=case.id, reason=reason, detail=detail)
        await self.bus.publish("agents", {"type": "case_opened", "case": case.to_dict()})
        position = await self.queue.position(case.id)
        notice = await self._say(
            conversation, "system",
            f"You're number {position} in the queue for a person. You can keep writing; they'll see your messages.",
            kind="queued", buttons=[{"title": "Back to the assistant", "payload": LEAVE_QUEUE}],
        )
        return [notice]

    async def leave_queue(self, conversation: Conversation) -> list[Message]:
        """The customer gave up waiting: cancel the case, the bot answers again."""
        if conversation.case_id is not None:
            try:
                await self.queue.close(conversation.case_id, None, "customer_left", status="cancelled")
            except Exception:  # noqa: BLE001 - already claimed/closed: fall through to the mode check
                log.info("case %s could not be cancelled", conversation.case_id)
        if not await self.conversations.switch_mode(conversation.id, ("waiting",), "bot"):
            return []
        await self.events.record(conversation.id, "left_queue", conversation.channel, case_id=conversation.case_id)
        await self.bus.publish("agents", {"type": "case_cancelled", "case_id": conversation.case_id})
        conversation.mode = "bot"
        return await self._resume_bot(conversation)

    async def agent_joined(self, case: Case, agent: Account) -> None:
        conversation = await self.conversations.get(case.conversation_id)
        await self.conversations.switch_mode(conversation.id, ("waiting", "bot"), "human", case.id)
        conversation.mode = "human"
        await self.events.record(conversation.id, "claimed", conversation.channel, case_id=case.id, agent=agent.username, waited=round(case.claimed_at - case.created_at, 2) if case.claimed_at else None)
        await self._say(conversation, "system", f"{agent.display_name} from our support team has joined the chat.", kind="agent_joined", agent_name=agent.display_name)

    async def agent_message(self, case: Case, agent: Account, text: str) -> dict[str, Any]:
        text = clean_text(text, self.settings.max_message_chars)
        conversation = await self.conversations.get(case.conversation_id)
        message = await self._say(conversation, "agent", text, agent_name=agent.display_name)
        await self._append_to_tracker(conversation.id, [{"event": "bot", "text": text, "metadata": {"agent": agent.username}}])
        await self.events.record(conversation.id, "agent_message", conversation.channel, case_id=case.id, agent=agent.username)
        return message.to_dict()

    async def hand_back(self, case: Case, agent: Account | None, resolution: str) -> None:
        conversation = await self.conversations.get(case.conversation_id)
        if not await self.conversations.switch_mode(conversation.id, ("human", "waiting"), "bot"):
            return
        conversation.mode = "bot"
        await self.events.record(conversation.id, "handed_back", conversation.channel, case_id=case.id, resolution=resolution, agent=agent.username if agent else None)
        if agent:
            await self._say(conversation, "system", f"{agent.display_name} has left the chat.", kind="agent_left", agent_name=agent.display_name)
        await self._resume_bot(conversation)

    async def _resume_bot(self, conversation: Conversation) -> list[Message]:
        await self._append_to_tracker(conversation.id, [{"event": "resume"}])
        try:
            outputs = await self.rasa.trigger_intent(conversation.id, "EXTERNAL_handed_back")
        except RasaUnavailable:
            return [await self._say(conversation, "system", "You're back with our assistant.", kind="back_to_bot")]
        return await self._apply_outputs(conversation, outputs)

    async def feedback(self, conversation_id: str, message_id: int, helpful: bool) -> None:
        """A customer's thumbs up/down on a bot answer, recorded against its FAQ entry."""
        messages = await self.conversations.messages_since(conversation_id, message_id - 1, limit=1)
        if not messages or messages[0].id != message_id or not messages[0].data.get("faq_id"):
            raise InvalidMessage(f"message {message_id} is not a knowledge-base answer in this conversation")
        conversation = await self.conversations.get(conversation_id)
        await self.events.record(
            conversation_id, "feedback", conversation.channel, faq_id=messages[0].data["faq_id"], message_id=message_id, helpful=helpful
        )

    async def customer_typing(self, conversation_id: str, typing: bool) -> None:
        """Live only (never stored): the agent sees the customer typing."""
        conversation = await self.conversations.get(conversation_id)
        if conversation.mode != "bot":
            await self.bus.publish("agents", {"type": "typing", "conversation_id": conversation_id, "case_id": conversation.case_id, "typing": typing})

    async def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        return [m.to_dict() for m in await self.conversations.messages_since(conversation_id, 0, limit=5000)]

    async def _append_to_tracker(self, conversation_id: str, events: list[dict[str, Any]]) -> None:
        """Best effort: the database holds the transcript even if Rasa is down right now."""
        try:
            await self.rasa.append_events(conversation_id, events)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not append %s to Rasa's tracker of %s: %s", [e["event"] for e in events], conversation_id, exc)
