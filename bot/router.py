"""The router: the one owner of who answers a conversation, the bot or a person.

Every channel hands customer messages here, and the agent API hands agent actions here. In
bot mode a message goes to Rasa; when an action asks for a person (a `tandem.escalate` custom
payload) the router opens a case and pauses Rasa. In waiting/human mode messages go to the
agent and are appended to Rasa's tracker, so the tracker tells the whole story. On hand-back
the router resumes Rasa and triggers EXTERNAL_handed_back, and the bot carries on.
Everything said is stored before anything is sent, and published on the bus for live clients.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

import sqlalchemy as sa

from conversations.decisions import BotDecision
from conversations.store import Conversation, ConversationStore, DuplicateMessage, Message, Receipt
from bot.hooks import ConversationHooks
from bot.rasa_client import RasaClient, RasaUnavailable
from core import texts
from core.bus import Bus
from conversations.events import EventLog
from core.language import detect
from core.settings import Settings
from handoff.accounts import Account
from handoff.dispatch import estimate_wait
from handoff.queue import Case, CaseQueue
from handoff.services import WaitingRoom
from handoff.tickets import clean_contact
from bot.turns import (
    BACK_TO_BOT,
    LEAVE_MESSAGE,
    LEAVE_MESSAGE_BUTTON,
    LEAVE_QUEUE,
    REQUEST_HUMAN,
    TALK_TO_PERSON,
    ClientIdReused,
    InvalidMessage,
    Turn,
    TurnIncomplete,
    clean_client_id,
    clean_text,
    language_of,
    localised_buttons,
)

log = logging.getLogger(__name__)

class Router:
    def __init__(
        self,
        settings: Settings,
        conversations: ConversationStore,
        queue: CaseQueue,
        rasa: RasaClient,
        events: EventLog,
        bus: Bus,
        waiting: WaitingRoom,
    ) -> None:
        self.settings = settings
        self.conversations = conversations
        self.queue = queue
        self.rasa = rasa
        self.events = events
        self.bus = bus
        # The waiting-customer experience: routing rules, who is online, opening hours, tickets
        # (the same objects the console uses, built once by the composition root).
        self.rules = waiting.rules
        self.presence = waiting.presence
        self.hours = waiting.hours
        self.tickets = waiting.tickets
        self.hooks: list[ConversationHooks] = []  # other rooms' plug-ins (server/services.py: the CSAT prompt)
        # Set by the composition root (server/services.py): a follow-up's answer is taken before
        # anything else sees the message; None (no follow-up answered) lets it through.
        self.followup_answers: Callable[[Conversation, str, str | None], Awaitable[list[Message] | None]] | None = None

    # -- conversations ---------------------------------------------------------------------
    async def start_conversation(self, channel: str, external_id: str | None = None, customer_name: str = "") -> Conversation:
        conversation = await self.conversations.create(channel, external_id, customer_name)
        await self.events.record(conversation.id, "conversation_started", channel)
        return conversation

    # -- the channels' port (bot/port.py) ---------------------------------------------------
    async def conversation_for(self, channel: str, external_id: str, customer_name: str = "") -> Conversation:
        found = await self.conversations.find_external(channel, external_id)
        if found is not None:
            return found
        try:
            return await self.start_conversation(channel, external_id, customer_name)
        except sa.exc.IntegrityError:  # the same chat's first two updates raced: the other one started it
            return await self.conversations.get_or_create_external(channel, external_id, customer_name)

    async def conversation(self, conversation_id: str) -> Conversation:
        return await self.conversations.get(conversation_id)

    async def note_profile(self, conversation_id: str, **values: Any) -> None:
        await self.conversations.update_profile(conversation_id, **values)

    async def restart(self, conversation_id: str, external_id: str) -> None:
        conversation = await self.conversations.get(conversation_id)
        await self.conversations.set_external_id(conversation_id, external_id)
        await self.events.record(conversation_id, "restarted", conversation.channel)

    async def history(self, conversation_id: str, after: int = 0, limit: int = 500) -> list[Message]:
        return await self.conversations.messages_since(conversation_id, after, limit=limit)

    def follow(self, conversation_id: str) -> "asyncio.Queue[dict[str, Any]]":
        return self.bus.subscribe(f"conversation:{conversation_id}")

    def unfollow(self, conversation_id: str, updates: "asyncio.Queue[dict[str, Any]]") -> None:
        self.bus.unsubscribe(f"conversation:{conversation_id}", updates)

    def follow_channel(self, channel: str) -> "asyncio.Queue[dict[str, Any]]":
        return self.bus.subscribe(f"channel:{channel}")

    def unfollow_channel(self, channel: str, updates: "asyncio.Queue[dict[str, Any]]") -> None:
        self.bus.unsubscribe(f"channel:{channel}", updates)

    async def delivery_failed(self, conversation_id: str, message_id: int, error: str, **detail: Any) -> None:
        conversation = await self.conversations.get(conversation_id)
        await self.events.record(conversation_id, "delivery_failed", conversation.channel, message_id=message_id, error=error, **detail)

    async def _say(self, conversation: Conversation, sender: str, text: str, **data: Any) -> Message:
        """Store first, then publish: a live client may miss a push, never a stored message."""
        message = await self.conversations.add_message(conversation.id, sender, text, **data)
        await self._publish(conversation, message, sender)
        return message

    async def say(self, conversation_id: str, sender: str, text: str, **data: Any) -> Message:
        """A message said into the conversation by a hook (e.g. the CSAT prompt): stored, then published."""
        return await self._say(await self.conversations.get(conversation_id), sender, text, **data)

    async def _ended(self, conversation: Conversation, trigger: str, case_id: int | None = None) -> list[Message]:
        replies: list[Message] = []
        for hook in self.hooks:
            try:
                replies += await hook.conversation_ended(conversation, trigger, case_id)
            except Exception:  # noqa: BLE001 - a plug-in never breaks a hand-back or a goodbye
                log.exception("conversation %s: %s hook failed", conversation.id, trigger)
        return replies

    async def _publish(self, conversation: Conversation, message: Message, sender: str) -> None:
        payload = {"type": "message", "channel": conversation.channel, "message": message.to_dict()}
        await self.bus.publish(f"conversation:{conversation.id}", payload)
        await self.bus.publish(f"channel:{conversation.channel}", {**payload, "external_id": conversation.external_id})
        if conversation.mode != "bot" or sender == "agent":
            await self.bus.publish("agents", {**payload, "case_id": conversation.case_id})

    # -- the customer speaks ---------------------------------------------------------------
    async def customer_message(self, conversation_id: str, text: Any, payload: str | None = None) -> list[Message]:
        """Handle one customer message; returns the replies it produced (stored and published)."""
        return (await self.customer_turn(conversation_id, text, payload)).replies

    async def customer_turn(self, conversation_id: str, text: Any, payload: str | None = None, client_id: str | None = None) -> Turn:
        """Handle one customer message; a client id already stored is not handled again."""
        conversation = await self.conversations.get(conversation_id)
        handled_in = conversation.mode  # who this message goes to (the turn may change conversation.mode)
        if payload is not None and (not isinstance(payload, str) or len(payload) > 500):
            raise InvalidMessage("'payload' must be a short string")
        text = clean_text(text if payload is None else (text or payload), self.settings.max_message_chars)
        client_id = clean_client_id(client_id)
        extra: dict[str, Any] = {"client_id": client_id} if client_id else {}
        extra["handled_in"] = handled_in  # kept with the message, so a replay tells the same
        try:
            message = await self.conversations.add_message(conversation.id, "customer", text, **extra)
        except DuplicateMessage as duplicate:
            return await self._replayed(duplicate.receipt, text)
        try:
            await self._publish(conversation, message, "customer")
            replies = await self._handle_customer(conversation, text, payload, message.id)
            mode = None
            if client_id:
                mode = (await self.conversations.get(conversation.id)).mode
                await self.conversations.finish_receipt(conversation.id, client_id, [m.id for m in replies], mode)
        except Exception as exc:  # noqa: BLE001 - re-raised with the truth: the message is kept
            raise TurnIncomplete(message, exc) from exc
        return Turn(message, replies, mode, handled_in=handled_in)

    async def _replayed(self, receipt: Receipt, text: str) -> Turn:
        stored = await self.conversations.messages_by_id(receipt.conversation_id, [receipt.message_id])
        if not stored or stored[0].text != text:
            raise ClientIdReused(f"client id {receipt.client_id!r} was already used for a different message")
        replies = await self.conversations.messages_by_id(receipt.conversation_id, receipt.reply_ids)
        return Turn(stored[0], replies, receipt.mode, replayed=True, handled_in=stored[0].data.get("handled_in"))

    async def replayed_turn(self, conversation_id: str, client_id: str, timeout: float) -> Turn | None:
        """Wait (bounded) for the original turn of a replayed client id to be answered."""
        deadline = time.monotonic() + timeout
        while True:
            receipt = await self.conversations.receipt(conversation_id, client_id)
            if receipt is None:
                return None
            if receipt.status == "answered" or time.monotonic() > deadline:
                stored = await self.conversations.messages_by_id(conversation_id, [receipt.message_id])
                replies = await self.conversations.messages_by_id(conversation_id, receipt.reply_ids)
                return Turn(stored[0], replies, receipt.mode, replayed=True, handled_in=stored[0].data.get("handled_in"))
            await asyncio.sleep(0.2)

    async def _note_language(self, conversation: Conversation, text: str, payload: str | None) -> None:
        """Keep the language of the customer's latest message in the profile (one write when it
        changes), so every reply and notice of this turn and after is in that language."""
        if payload is not None or text.startswith("/"):
            return  # a button says nothing about the language
        current = language_of(conversation)
        lang = detect(text, default=current)  # type: ignore[arg-type]
        if lang != current:
            await self.conversations.update_profile(conversation.id, lang=lang)
            conversation.profile["lang"] = lang

    async def _handle_customer(self, conversation: Conversation, text: str, payload: str | None, message_id: int | None = None) -> list[Message]:
        await self.events.record(conversation.id, "message_in", conversation.channel, length=len(text))
        await self._note_language(conversation, text, payload)
        if self.followup_answers is not None:
            answered = await self.followup_answers(conversation, text, payload)
            if answered is not None:
                return answered
        to_rasa = payload or text
        if conversation.mode == "bot":
            for hook in self.hooks:
                taken = await hook.customer_turn(conversation, text, payload)
                if taken is not None:
                    return taken
            return await self._to_bot(conversation, to_rasa, message_id)
        if payload == LEAVE_QUEUE and conversation.mode == "waiting":
            return await self.leave_queue(conversation)
        if conversation.mode == "waiting":
            if payload == LEAVE_MESSAGE:
                return await self._start_ticket(conversation)
            draft = await self.tickets.draft_for(conversation.id)
            if draft is not None:
                return await self._ticket_contact(conversation, draft.id, text)
        await self._append_to_tracker(conversation.id, [{
            "event": "user", "text": text, "metadata": {"mode": conversation.mode},
            "parse_data": {"text": text, "intent": {"name": "handoff_message", "confidence": 1.0}, "entities": []},
        }])
        return []

    async def _to_bot(self, conversation: Conversation, text: str, message_id: int | None = None) -> list[Message]:
        try:
            metadata: dict[str, Any] = {"channel": conversation.channel, "lang": language_of(conversation)}
            if conversation.profile.get("tier"):
                metadata["tier"] = conversation.profile["tier"]  # the escalation policy weighs it
            outputs = await self.rasa.send(conversation.id, text, metadata)
        except RasaUnavailable as exc:
            log.warning("conversation %s: %s", conversation.id, exc)
            await self.events.record(conversation.id, "bot_unavailable", conversation.channel, error=str(exc))
            if text == REQUEST_HUMAN:
                return await self.escalate(conversation, "bot_unavailable", "the assistant was unavailable; the customer chose a person")
            lang = language_of(conversation)
            return [await self._say(conversation, "system", texts.notice("bot_down", lang),
                                    buttons=localised_buttons([TALK_TO_PERSON], lang), kind="bot_unavailable")]
        return await self._apply_outputs(conversation, outputs, message_id)

    async def _apply_outputs(self, conversation: Conversation, outputs: list[dict[str, Any]], message_id: int | None = None) -> list[Message]:
        """Store Rasa's replies; act on the bot's typed decision (conversations/decisions.py)."""
        replies: list[Message] = []
        decision: BotDecision | None = None
        for output in outputs:
            found = BotDecision.from_payload(output.get("custom"))
            if found is not None:
                decision = found if decision is None or found.kind == "escalate" else decision
                continue
            text = output.get("text")
            if not text:
                continue
            data: dict[str, Any] = {}
            if output.get("buttons"):
                data["buttons"] = [{"title": b.get("title", ""), "payload": b.get("payload", "")} for b in output["buttons"]]
            if decision is not None and decision.answered is not None:
                data["faq_id"] = decision.answered.faq_id
                data["kind"] = "faq_answer"
            if decision is not None and decision.kind != "reply":
                data["decision"] = decision.kind  # answer | clarify | miss | escalate: what the bot decided
            replies.append(await self._say(conversation, "bot", text, **data))
        if decision is None:
            return replies
        await self._record_turn(conversation, decision, message_id)
        if decision.escalation is not None:
            replies += await self.escalate(conversation, decision.escalation.reason, decision.escalation.detail, signals=decision.escalation.signals)
        elif decision.kind == "reply" and decision.intent == "goodbye":
            replies += await self._ended(conversation, "goodbye")  # a bot-only conversation ends: ask for CSAT
        return replies

    async def _record_turn(self, conversation: Conversation, decision: BotDecision, message_id: int | None) -> None:
        """The answered/missed event for the reports, and the customer message's sentiment for the console."""
        candidates = [c.to_dict() for c in decision.candidates]
        if decision.answered is not None:
            answered = decision.answered
            await self.events.record(conversation.id, "answered", conversation.channel, faq_id=answered.faq_id, score=answered.score,
                                     category=answered.category, candidates=candidates, nlu=decision.nlu)
        elif decision.missed is not None:
            await self.events.record(conversation.id, "missed", conversation.channel, kind=decision.missed.kind, **decision.missed.values,
                                     candidates=candidates)
        if message_id is not None and decision.sentiment:
            await self.conversations.annotate(conversation.id, message_id, sentiment=decision.sentiment)

    # -- to a person and back --------------------------------------------------------------
    async def escalate(self, conversation: Conversation, reason: str, detail: str, signals: dict[str, Any] | None = None) -> list[Message]:
        """Queue the conversation for a person and pause the bot. Idempotent."""
        if conversation.mode != "bot":
            return []
        routing = self.rules.classify(reason, signals, conversation.profile)
        case = await self.queue.open_case(
            conversation.id, conversation.channel, reason, detail, signals,
            priority=routing.priority, team=routing.team, tier=routing.tier, severity=routing.severity,
        )
        if not await self.conversations.switch_mode(conversation.id, ("bot",), "waiting", case.id):
            return []
        conversation.mode, conversation.case_id = "waiting", case.id
        # The position is recorded as told before anyone can sweep the queue, so the first
        # notice the customer sees is this one, not a "you're now number N" from the dispatcher.
        position = await self.queue.position(case.id)
        await self.queue.mark_notified(case.id, position)
        # Agents next: the case is stored, and Rasa's tracker call below can be slow under load.
        await self.bus.publish("agents", {"type": "case_opened", "case": case.to_dict()})
        await self.events.record(conversation.id, "escalated", conversation.channel, case_id=case.id, reason=reason, detail=detail)
        await self._append_to_tracker(conversation.id, [{"event": "pause"}])
        lang = language_of(conversation)
        text, buttons = await self._waiting_notice(position, lang)
        notice = await self._say(
            conversation, "system", texts.notice("queued", lang, position=position, wait=text),
            kind="queued", buttons=localised_buttons(buttons, lang),
        )
        return [notice]

    async def _waiting_notice(self, position: int, lang: str = "en") -> tuple[str, list[dict[str, str]]]:
        """The estimated wait, or, when no one can chat now, the offer to leave a message."""
        if not self.hours.is_open():
            opening = self.hours.next_opening()
            if lang == "zh":
                when = f"下次服务时间：{opening.strftime('%m-%d %H:%M')}（{self.hours.zone.key}）。" if opening else ""
            else:
                when = f" We open again {opening.strftime('%A at %H:%M')} ({self.hours.zone.key})." if opening else ""
            return texts.notice("closed", lang, when=when), [LEAVE_MESSAGE_BUTTON, BACK_TO_BOT]
        agents = await self.presence.available()
        if not agents:
            return texts.notice("nobody_online", lang), [LEAVE_MESSAGE_BUTTON, BACK_TO_BOT]
        wait = texts.describe_wait(estimate_wait(position, agents, await self.queue.average_handle_seconds()), lang)
        return (texts.notice("estimated_wait", lang, wait=wait) if wait else "", [BACK_TO_BOT, LEAVE_MESSAGE_BUTTON])

    async def queue_position(self, case: Case, position: int, eta_seconds: float | None) -> None:
        """A waiting customer's place changed: tell them (stored, so every channel shows it)."""
        conversation = await self.conversations.get(case.conversation_id)
        if conversation.mode != "waiting" or conversation.case_id != case.id:
            return
        lang = language_of(conversation)
        wait = texts.describe_wait(eta_seconds, lang)
        await self._say(
            conversation, "system",
            texts.notice("queue_position", lang, position=position, wait=texts.notice("estimated_wait", lang, wait=wait) if wait else ""),
            kind="queue_position", buttons=localised_buttons([BACK_TO_BOT, LEAVE_MESSAGE_BUTTON], lang),
        )

    async def case_transferred(self, case: Case, agent: Account, team: str) -> None:
        conversation = await self.conversations.get(case.conversation_id)
        if not await self.conversations.switch_mode(conversation.id, ("human",), "waiting", case.id):
            return
        await self.events.record(conversation.id, "transferred", conversation.channel, case_id=case.id, agent=agent.username, team=team)
        position = await self.queue.position(case.id)
        await self.queue.mark_notified(case.id, position)
        await self._say(
            conversation, "system",
            f"{agent.display_name} has passed your chat to our {team} team. You're number {position} in the queue.",
            kind="transferred", buttons=[BACK_TO_BOT],
        )

    # -- notices from the case timers (handoff/timer_loop.py, handoff/followup_flow.py) --------
    async def notice(self, conversation_id: str, text: str, kind: str, buttons: list[dict[str, str]] | None = None,
                     **data: Any) -> Message:
        """A bot notice said into this conversation whatever its mode: stored, then sent by its channel."""
        conversation = await self.conversations.get(conversation_id)
        return await self._say(conversation, "system", text, kind=kind, **({"buttons": buttons} if buttons else {}), **data)

    async def back_to_queue(self, case: Case) -> int:
        """The case waits for a person again (its agent went quiet, a follow-up reopened it): the
        conversation waits too, the bot stays paused. Returns the customer's place (0: not waiting)."""
        conversation = await self.conversations.get(case.conversation_id)
        if not await self.conversations.switch_mode(conversation.id, ("human", "waiting", "bot"), "waiting", case.id):
            return 0
        if conversation.mode == "bot":
            await self._append_to_tracker(conversation.id, [{"event": "pause"}])
        position = await self.queue.position(case.id)
        await self.queue.mark_notified(case.id, position)
        await self.bus.publish("agents", {"type": "case_opened", "case": case.to_dict()})
        return position

    # -- tickets: leave a message when no one can chat ---------------------------------------
    async def _start_ticket(self, conversation: Conversation) -> list[Message]:
        case = await self.queue.open_case_for(conversation.id)
        draft = await self.tickets.start_draft(
            conversation.id, conversation.channel, case.id if case else None, case.team if case else None,
            case.reason if case else "", case.detail if case else "",
        )
        known = clean_contact(str(conversation.profile.get("email") or ""))
        if known:
            return await self._ticket_contact(conversation, draft.id, known)
        await self.events.record(conversation.id, "ticket_started", conversation.channel, ticket_id=draft.id)
        return [await self._say(
            conversation, "system", "Please type the email address (or phone number) where we can reach you.",
            kind="ticket_contact", buttons=[BACK_TO_BOT],
        )]

    async def _ticket_contact(self, conversation: Conversation, ticket_id: int, text: str) -> list[Message]:
        contact = clean_contact(text)
        if contact is None:
            return [await self._say(
                conversation, "system", "That doesn't look like an email address or a phone number. Please try again.",
                kind="ticket_contact", buttons=[BACK_TO_BOT],
            )]
        ticket = await self.tickets.open(ticket_id, contact, await self.transcript(conversation.id))
        await self.conversations.update_profile(conversation.id, **({"email": contact} if "@" in contact else {"phone": contact}))
        if conversation.case_id is not None:
            try:
                await self.queue.close(conversation.case_id, None, "ticket", status="cancelled")
            except Exception:  # noqa: BLE001 - claimed meanwhile: the ticket still stands
                log.info("case %s could not be cancelled for ticket %s", conversation.case_id, ticket.id)
        await self.events.record(conversation.id, "ticket_opened", conversation.channel, ticket_id=ticket.id, case_id=conversation.case_id)
        await self.bus.publish("agents", {"type": "case_cancelled", "case_id": conversation.case_id})
        await self.bus.publish("agents", {"type": "ticket_opened", "ticket": ticket.to_dict()})
        replies = [await self._say(
            conversation, "system",
            f"Thank you. Your message is saved as ticket #{ticket.id}; we'll reply to {contact} and here in this chat.",
            kind="ticket_opened",
        )]
        if not await self.conversations.switch_mode(conversation.id, ("waiting",), "bot"):
            return replies
        conversation.mode = "bot"
        return replies + await self._resume_bot(conversation)

    async def ticket_reply(self, conversation_id: str, agent: Account, text: str) -> dict[str, Any]:
        """Said into the conversation whatever its mode: the channel delivers it now or on return."""
        text = clean_text(text, self.settings.max_message_chars)
        conversation = await self.conversations.get(conversation_id)
        message = await self._say(conversation, "agent", text, agent_name=agent.display_name, kind="ticket_reply")
        await self.events.record(conversation.id, "ticket_reply", conversation.channel, agent=agent.username)
        return message.to_dict()

    async def leave_queue(self, conversation: Conversation) -> list[Message]:
        """The customer gave up waiting: cancel the case, the bot answers again."""
        if conversation.case_id is not None:
            try:
                await self.queue.close(conversation.case_id, None, "customer_left", status="cancelled")
            except Exception:  # noqa: BLE001 - already claimed/closed: fall through to the mode check
                log.info("case %s could not be cancelled", conversation.case_id)
        await self.tickets.discard_draft(conversation.id)
        if not await self.conversations.switch_mode(conversation.id, ("waiting",), "bot"):
            return []
        await self.events.record(conversation.id, "left_queue", conversation.channel, case_id=conversation.case_id)
        await self.bus.publish("agents", {"type": "case_cancelled", "case_id": conversation.case_id})
        conversation.mode = "bot"
        return await self._resume_bot(conversation)

    async def agent_joined(self, case: Case, agent: Account) -> None:
        conversation = await self.conversations.get(case.conversation_id)
        await self.conversations.switch_mode(conversation.id, ("waiting", "bot"), "human", case.id)
        await self.tickets.discard_draft(conversation.id)
        conversation.mode = "human"
        await self.events.record(conversation.id, "claimed", conversation.channel, case_id=case.id, agent=agent.username, waited=round(case.claimed_at - case.created_at, 2) if case.claimed_at else None)
        await self._say(conversation, "system", texts.notice("agent_joined", language_of(conversation), agent=agent.display_name),
                        kind="agent_joined", agent_name=agent.display_name)

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
            await self._say(conversation, "system", texts.notice("agent_left", language_of(conversation), agent=agent.display_name),
                            kind="agent_left", agent_name=agent.display_name)
        await self._resume_bot(conversation)
        if agent:
            await self._ended(conversation, "hand_back", case.id)

    async def _resume_bot(self, conversation: Conversation) -> list[Message]:
        await self._append_to_tracker(conversation.id, [{"event": "resume"}])
        try:
            outputs = await self.rasa.trigger_intent(conversation.id, "EXTERNAL_handed_back")
        except RasaUnavailable:
            return [await self._say(conversation, "system", texts.notice("back_to_bot", language_of(conversation)), kind="back_to_bot")]
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

    async def agent_typing(self, case: Case, agent: Account, typing: bool) -> None:
        """Live only: the customer's channel may show "Alex is typing"."""
        conversation = await self.conversations.get(case.conversation_id)
        event = {"type": "typing", "sender": "agent", "agent_name": agent.display_name, "typing": typing, "channel": conversation.channel}
        await self.bus.publish(f"conversation:{conversation.id}", event)
        await self.bus.publish(f"channel:{conversation.channel}", {**event, "external_id": conversation.external_id})

    async def conversation_info(self, conversation_id: str) -> dict[str, Any]:
        conversation = await self.conversations.get(conversation_id)
        return {
            "id": conversation.id, "channel": conversation.channel, "mode": conversation.mode, "case_id": conversation.case_id,
            "customer_name": conversation.customer_name, "profile": conversation.profile, "created_at": conversation.created_at,
        }

    async def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        """The whole conversation for the agents, with each customer message's sentiment (which the
        customer's own channels never show)."""
        return [{**m.to_dict(), **({"sentiment": m.data["sentiment"]} if "sentiment" in m.data else {})}
                for m in await self.conversations.messages_since(conversation_id, 0, limit=5000)]

    async def _append_to_tracker(self, conversation_id: str, events: list[dict[str, Any]]) -> None:
        """Best effort: the database holds the transcript even if Rasa is down right now."""
        try:
            await self.rasa.append_events(conversation_id, events)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not append %s to Rasa's tracker of %s: %s", [e["event"] for e in events], conversation_id, exc)
