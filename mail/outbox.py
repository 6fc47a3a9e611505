"""The outbox: every mail is stored before it is sent, then delivered with retries.

Store first, send second: a crash, an SMTP outage or a refused login never loses a mail; it
stays `queued` (or `retry`, with its next attempt time, backing off exponentially) until it is
`sent`, or `failed` after `max_attempts` (kept, with the last error, for a person to look at).
One process claims a mail with a conditional UPDATE before sending it, so two web processes
never send the same mail twice; a claim older than `STALE_AFTER_S` (a crashed sender) is retried.
SMTP itself is the standard library's smtplib in a worker thread, so the event loop never blocks.
"""
from __future__ import annotations

import asyncio
import email.utils
import json
import smtplib
import ssl
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import metadata
from core.settings import MailSettings
from mail.message import MailError, OutboundMail, build_message

Clock = Callable[[], float]
STALE_AFTER_S = 300.0

mail_outbox = sa.Table(
    "mail_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("to_address", sa.String(254), nullable=False, index=True),
    sa.Column("subject", sa.String(250), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("kind", sa.String(30), nullable=False, default=""),
    sa.Column("conversation_id", sa.String(64), nullable=True, index=True),
    sa.Column("reference", sa.String(80), nullable=False, default=""),
    sa.Column("headers", sa.Text, nullable=False, default="{}"),
    sa.Column("message_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(10), nullable=False, index=True),  # queued | sending | retry | sent | failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False, index=True),
    sa.Column("claimed_at", sa.Float, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("sent_at", sa.Float, nullable=True),
)


@dataclass(frozen=True)
class Delivery:
    id: int
    to_address: str
    subject: str
    kind: str
    conversation_id: str | None
    message_id: str
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float
    sent_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _delivery(row: Any) -> Delivery:
    return Delivery(**{k: row[k] for k in Delivery.__dataclass_fields__})


def smtp_send(settings: MailSettings, message: Any) -> None:
    """One SMTP session (blocking: call it in a thread). Raises on any refusal."""
    # Our EHLO name is the sender's domain: smtplib's default (socket.getfqdn) waits on DNS.
    helo = settings.from_address.rpartition("@")[2] or "localhost"
    if settings.security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, local_hostname=helo, timeout=settings.timeout_s,
                                                context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(settings.host, settings.port, local_hostname=helo, timeout=settings.timeout_s)
    try:
        client.ehlo()
        if settings.security == "starttls":
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if settings.user:
            client.login(settings.user, settings.password)
        client.send_message(message)
    finally:
        try:
            client.quit()
        except smtplib.SMTPException:
            client.close()


Sender = Callable[[MailSettings, Any], None]


class Outbox:
    def __init__(self, engine: AsyncEngine, settings: MailSettings, clock: Clock = time.time, sender: Sender = smtp_send) -> None:
        if settings.security not in ("none", "starttls", "ssl"):
            raise ValueError("mail.security must be none, starttls or ssl")
        self._engine = engine
        self.settings = settings
        self._clock = clock
        self._send = sender  # smtplib by default; the seam is for a different transport, not for tests

    async def enqueue(self, mail: OutboundMail) -> Delivery:
        """Store the mail (the only step that must succeed for it to be safe)."""
        now = self._clock()
        domain = (self.settings.from_address.rpartition("@")[2] or "tandem.local")
        message_id = email.utils.make_msgid(idstring=uuid.uuid4().hex[:12], domain=domain)
        async with self._engine.begin() as conn:
            result = await conn.execute(mail_outbox.insert().values(
                to_address=mail.to.lower(), subject=mail.subject, body=mail.text, kind=mail.kind, conversation_id=mail.conversation_id,
                reference=mail.reference, headers=json.dumps(mail.headers), message_id=message_id, status="queued", attempts=0,
                next_attempt_at=now, created_at=now,
            ))
        return await self.get(int(result.inserted_primary_key[0]))

    async def get(self, delivery_id: int) -> Delivery:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(mail_outbox).where(mail_outbox.c.id == delivery_id))).mappings().first()
        if row is None:
            raise KeyError(delivery_id)
        return _delivery(row)

    async def list(self, status: str | None = None) -> list[Delivery]:
        query = sa.select(mail_outbox).order_by(mail_outbox.c.id)
        if status:
            query = query.where(mail_outbox.c.status == status)
        async with self._engine.connect() as conn:
            return [_delivery(r) for r in (await conn.execute(query)).mappings()]

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt `attempts + 1`: backoff_s, doubling, capped at a day."""
        return min(86400.0, self.settings.backoff_s * (2 ** max(0, attempts - 1)))

    async def _claim(self, row: Any, now: float) -> bool:
        claimed = mail_outbox.c.claimed_at.is_(None) if row["claimed_at"] is None else mail_outbox.c.claimed_at == row["claimed_at"]
        condition = [mail_outbox.c.id == row["id"], mail_outbox.c.status == row["status"], mail_outbox.c.attempts == row["attempts"], claimed]
        async with self._engine.begin() as conn:
            result = await conn.execute(mail_outbox.update().where(*condition).values(status="sending", claimed_at=now))
        return result.rowcount == 1

    async def deliver_due(self, limit: int = 50) -> list[Delivery]:
        """Send every mail whose time has come; returns what happened to each one tried."""
        if not self.settings.host or not self.settings.from_address:
            return []  # not configured: mails wait in the outbox
        now = self._clock()
        due = sa.or_(
            sa.and_(mail_outbox.c.status.in_(("queued", "retry")), mail_outbox.c.next_attempt_at <= now),
            sa.and_(mail_outbox.c.status == "sending", mail_outbox.c.claimed_at < now - STALE_AFTER_S),
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(mail_outbox).where(due).order_by(mail_outbox.c.id).limit(limit))).mappings().all()
        tried = []
        for row in rows:
            if not await self._claim(row, now):
                continue  # another process has it
            tried.append(await self._attempt(row))
        return tried

    async def _attempt(self, row: Any) -> Delivery:
        attempts = row["attempts"] + 1
        try:
            mail = OutboundMail(to=row["to_address"], subject=row["subject"], text=row["body"], kind=row["kind"],
                                conversation_id=row["conversation_id"], reference=row["reference"], headers=json.loads(row["headers"] or "{}"))
            message = build_message(mail, self.settings.from_address, row["message_id"])
            await asyncio.to_thread(self._send, self.settings, message)
        except (OSError, smtplib.SMTPException, MailError, ssl.SSLError) as exc:
            now = self._clock()
            permanent = isinstance(exc, MailError) or (isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600
                                                       and not isinstance(exc, smtplib.SMTPAuthenticationError))
            give_up = permanent or attempts >= self.settings.max_attempts
            values = {"status": "failed" if give_up else "retry", "attempts": attempts, "last_error": f"{type(exc).__name__}: {exc}"[:2000],
                      "next_attempt_at": now + (0.0 if give_up else self.backoff(attempts)), "claimed_at": None}
        else:
            now = self._clock()
            values = {"status": "sent", "attempts": attempts, "sent_at": now, "last_error": None, "claimed_at": None}
        async with self._engine.begin() as conn:
            await conn.execute(mail_outbox.update().where(mail_outbox.c.id == row["id"], mail_outbox.c.status == "sending").values(**values))
        return await self.get(row["id"])
