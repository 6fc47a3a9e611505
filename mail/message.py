"""Typed outbound mail and its conversion to a standard e-mail message."""
from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass, field
from email.message import EmailMessage

ADDRESS = re.compile(r"^[^@\s<>,;]{1,64}@[^@\s<>,;]{1,190}\.[^@\s<>,;.]{2,}$")


class MailError(ValueError):
    """A mail that cannot be sent as given (bad address, empty subject ...)."""


@dataclass(frozen=True)
class OutboundMail:
    to: str
    subject: str
    text: str
    kind: str = ""  # ticket_reply | followup | ... (for reading the outbox)
    conversation_id: str | None = None  # whose data this is (data rights) and where replies belong
    reference: str = ""  # e.g. "ticket:12": threads replies (Message-ID / In-Reply-To)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not ADDRESS.match(self.to or ""):
            raise MailError(f"not an e-mail address: {self.to!r}")
        if not self.subject.strip() or "\n" in self.subject or "\r" in self.subject or len(self.subject) > 250:
            raise MailError("subject must be one non-empty line of at most 250 characters")
        if not self.text.strip():
            raise MailError("the mail has no text")


def build_message(mail: OutboundMail, from_address: str, message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["Message-ID"] = message_id
    if mail.reference:
        domain = from_address.rpartition("@")[2] or "tandem.local"
        thread = f"<{mail.reference.replace(':', '-')}@{domain}>"
        message["In-Reply-To"] = thread
        message["References"] = thread
    for key, value in mail.headers.items():
        if "\n" in value or "\r" in value:
            raise MailError(f"header {key} contains a line break")
        message[key] = value
    message.set_content(mail.text)
    return message
