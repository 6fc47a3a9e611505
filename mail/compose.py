"""The mails Tandem sends: a ticket's reply, a follow-up question. None when the customer left no e-mail."""
from __future__ import annotations

from core.settings import MailSettings
from mail.message import ADDRESS, OutboundMail


def email_of(contact: str) -> str | None:
    """Tickets keep an e-mail address or a phone number as `contact`; only the former gets mail."""
    value = (contact or "").strip().lower()
    return value if ADDRESS.match(value) else None


def ticket_reply_mail(settings: MailSettings, ticket_id: int, contact: str, reply_text: str, conversation_id: str) -> OutboundMail | None:
    to = email_of(contact)
    if to is None:
        return None
    return OutboundMail(to=to, subject=settings.ticket_subject.format(ticket_id=ticket_id), text=reply_text, kind="ticket_reply",
                        conversation_id=conversation_id, reference=f"ticket:{ticket_id}")


def followup_mail(settings: MailSettings, case_id: int, contact: str, question: str, conversation_id: str) -> OutboundMail | None:
    """`question` is the same text the customer's channel shows (the lead's follow-up wording)."""
    to = email_of(contact)
    if to is None:
        return None
    return OutboundMail(to=to, subject=settings.followup_subject.format(case_id=case_id), text=question, kind="followup",
                        conversation_id=conversation_id, reference=f"case:{case_id}")
