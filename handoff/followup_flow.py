"""Asking a follow-up in the customer's channel and taking their answer (issue 12).

The timer loop claims a due follow-up (handoff/followup.py) and calls `ask`: the question, with
"yes" / "no" buttons, is said into the conversation (the widget shows it on return, Telegram
pushes it), and is also mailed when the customer left an e-mail address and their channel cannot
reach them by itself (anything but Telegram). The router hands every customer message to
`answer` first; only a button payload, or a typed button title, while a question is pending is
taken as the answer: "yes" closes the loop, "no" opens a case for the same team and the
conversation waits for a person again.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from conversations.store import Conversation, ConversationStore
from core.bus import Bus
from core.persona import AsyncPersona
from core.settings import Settings
from customers.store import CustomerStore
from handoff.control import ConversationControl
from handoff.followup import FollowupError, Followup, Followups
from handoff.tickets import TicketStore
from mail.compose import email_of, followup_mail
from mail.outbox import Outbox

log = logging.getLogger(__name__)

YES, NO = "/followup_yes", "/followup_no"
ALREADY = "Thanks, we already have your answer."
PUSH_CHANNELS = ("telegram",)  # channels that reach the customer without them coming back


@dataclass(frozen=True)
class Asked:
    followup: Followup
    message_id: int
    mailed_to: str | None


class FollowupFlow:
    def __init__(self, settings: Settings, followups: Followups, control: ConversationControl, conversations: ConversationStore,
                 customers: CustomerStore, tickets: TicketStore, outbox: Outbox, persona: AsyncPersona, bus: Bus) -> None:
        self.settings = settings
        self.followups = followups
        self.control = control
        self.conversations = conversations
        self.customers = customers
        self.tickets = tickets
        self.outbox = outbox
        self.persona = persona
        self.bus = bus

    async def email_for(self, conversation: Conversation) -> str | None:
        """Where mail reaches this customer: the conversation's profile, their record, their ticket."""
        candidates = [str(conversation.profile.get("email") or "")]
        customer = await self.customers.customer_of(conversation.id)
        if customer is not None:
            candidates.append(customer.email)
        candidates += await self.tickets.contacts_for(conversation.id)
        return next((found for found in map(email_of, candidates) if found), None)

    async def ask(self, followup: Followup) -> Asked:
        business = await self.persona.current()
        question = business.text("followup_question")
        buttons = [{"title": business.text("followup_yes"), "payload": YES}, {"title": business.text("followup_no"), "payload": NO}]
        message = await self.control.notice(followup.conversation_id, question, "followup_question", buttons, followup_id=followup.id)
        conversation = await self.conversations.get(followup.conversation_id)
        mailed_to = None
        if conversation.channel not in PUSH_CHANNELS:
            address = await self.email_for(conversation)
            mail = followup_mail(self.settings.mail, followup.case_id, address or "",
                                 f"{question}\n\n{business.text('followup_mail_hint')}", conversation.id)
            if mail is not None:
                await self.outbox.enqueue(mail)
                mailed_to = mail.to
        await self.bus.publish("agents", {"type": "followup_asked", "followup": followup.to_dict(), "mailed_to": mailed_to})
        return Asked(followup, message.id, mailed_to)

    def _verdict(self, text: str, payload: str | None, business: Any) -> bool | None:
        said = (payload or text or "").strip()
        if said == YES or said.casefold() == business.text("followup_yes").casefold():
            return True
        if said == NO or said.casefold() == business.text("followup_no").casefold():
            return False
        return None

    async def answer(self, conversation: Conversation, text: str, payload: str | None) -> list[Any] | None:
        """The customer's answer to a pending follow-up; None when this message is not one."""
        business = await self.persona.current()
        solved = self._verdict(text, payload, business)
        if solved is None:
            return None
        pending = await self.followups.pending_for(conversation.id)
        if pending is None:
            if payload in (YES, NO):  # a stale button: say so rather than feed "/followup_no" to the bot
                return [await self.control.notice(conversation.id, ALREADY, "followup_answered")]
            return None
        try:
            followup, case = await self.followups.resolve(pending.id, solved)
        except FollowupError:  # answered at the same moment elsewhere
            return [await self.control.notice(conversation.id, ALREADY, "followup_answered")]
        await self.bus.publish("agents", {"type": "followup_answered", "followup": followup.to_dict(), "solved": solved})
        if solved or case is None:
            return [await self.control.notice(conversation.id, business.text("followup_solved"), "followup_solved")]
        if case.status == "waiting":  # not when a person already has this customer's new case
            await self.control.back_to_queue(case)
        return [await self.control.notice(conversation.id, business.text("followup_reopened"), "followup_reopened", case_id=case.id)]
