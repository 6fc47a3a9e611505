"""Outbound mail against a real SMTP server (aiosmtpd on 127.0.0.1): stored first, sent, retried
with backoff through outages and temporary refusals, failed (and kept) on permanent refusals."""
from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from core.db import async_engine

from server.schema import create_schema
from core.settings import MailSettings
from mail.message import MailError, OutboundMail
from mail.outbox import Outbox
from tests.conftest import free_port, postgres_url, stack_settings


class Inbox:
    """An aiosmtpd handler that keeps what arrived and can refuse the next N mails."""

    def __init__(self) -> None:
        self.received: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: list[str] = []  # SMTP replies for the next DATA commands, e.g. "451 4.3.0 busy"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return self.refuse.pop(0)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.received.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"tandem" and auth_data.password == b"pw-smtp"
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False,
                            server_hostname="mail.test")
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    overrides = {"database_url": postgres_url("tandem_test_mail")} if request.param == "postgresql" else {}
    settings = stack_settings(tmp_path, **overrides)
    await asyncio.to_thread(create_schema, settings)
    found = async_engine(settings)
    try:
        yield found
    finally:
        await found.dispose()


def mail_settings(port: int, **changes: Any) -> MailSettings:
    values = dict(host="127.0.0.1", port=port, security="none", user="tandem", password="pw-smtp",
                  from_address="support@shop.example", backoff_s=30.0, max_attempts=3)
    return MailSettings(**{**values, **changes})


@pytest.mark.asyncio
async def test_mail_arrives_with_headers_and_threading(engine: Any, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    outbox = Outbox(engine, mail_settings(port))
    stored = await outbox.enqueue(OutboundMail("Zoe@Example.org", "Re: your ticket #12", "Hello Zoë,\nyour parcel left today.",
                                               "ticket_reply", "conv-1", reference="ticket:12"))
    assert stored.status == "queued"
    [sent] = await outbox.deliver_due()
    assert sent.status == "sent" and sent.attempts == 1
    [message] = inbox.received
    assert inbox.envelopes == [("support@shop.example", ["zoe@example.org"])]
    assert message["Subject"] == "Re: your ticket #12" and message["Message-ID"].strip() == stored.message_id
    assert message["In-Reply-To"] == "<ticket-12@shop.example>"
    assert message.get_content().replace("\r\n", "\n").strip() == "Hello Zoë,\nyour parcel left today."  # SMTP lines end in CRLF
    assert await outbox.deliver_due() == []  # sent once, never again


@pytest.mark.asyncio
async def test_outage_and_temporary_refusal_are_retried_with_backoff(engine: Any, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    clock = Clock()
    down = Outbox(engine, mail_settings(free_port()), clock=clock)  # nothing listens there: connection refused
    stored = await down.enqueue(OutboundMail("a@example.org", "Follow-up", "Is it solved?", "followup"))
    [first] = await down.deliver_due()
    assert (first.status, first.attempts, first.next_attempt_at) == ("retry", 1, clock.now + 30.0)
    assert "Connection" in (first.last_error or "") or "refused" in (first.last_error or "")

    outbox = Outbox(engine, mail_settings(port), clock=clock)  # the server is back
    assert await outbox.deliver_due() == []  # not due yet: backoff holds
    clock.now += 30.0
    inbox.refuse = ["451 4.3.0 try again later"]
    [second] = await outbox.deliver_due()
    assert (second.status, second.attempts, second.next_attempt_at) == ("retry", 2, clock.now + 60.0)  # doubled
    assert "451" in (second.last_error or "")
    clock.now += 60.0
    [third] = await outbox.deliver_due()
    assert (third.status, third.attempts) == ("sent", 3)
    assert [m["Subject"] for m in inbox.received] == ["Follow-up"] and stored.id == third.id


@pytest.mark.asyncio
async def test_permanent_refusal_and_exhausted_retries_fail_but_keep_the_mail(engine: Any, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    clock = Clock()
    outbox = Outbox(engine, mail_settings(port, max_attempts=2), clock=clock)
    bounced = await outbox.enqueue(OutboundMail("gone@example.org", "Hello", "text"))
    inbox.refuse = ["550 5.1.1 no such user"]
    [result] = await outbox.deliver_due()
    assert (result.status, result.attempts) == ("failed", 1)

    wrong_password = Outbox(engine, mail_settings(port, password="nope", max_attempts=2), clock=clock)
    locked = await wrong_password.enqueue(OutboundMail("b@example.org", "Hello", "text"))
    [first] = await wrong_password.deliver_due()
    assert first.status == "retry"  # a login failure may be a rotated password: retry, then give up
    clock.now += 30.0
    [second] = await wrong_password.deliver_due()
    assert (second.status, second.attempts) == ("failed", 2)
    assert inbox.received == []
    assert {d.id for d in await outbox.list("failed")} == {bounced.id, locked.id}  # kept for a person to see


@pytest.mark.asyncio
async def test_unconfigured_mail_waits_and_bad_mail_is_refused_up_front(engine: Any) -> None:
    outbox = Outbox(engine, MailSettings())
    await outbox.enqueue(OutboundMail("a@example.org", "Hi", "text"))
    assert await outbox.deliver_due() == [] and [d.status for d in await outbox.list()] == ["queued"]
    for bad in (dict(to="not-an-address", subject="s", text="t"), dict(to="a@example.org", subject="two\nlines", text="t"),
                dict(to="a@example.org", subject="s", text="  ")):
        with pytest.raises(MailError):
            OutboundMail(**bad)


@pytest.mark.asyncio
async def test_two_senders_deliver_each_mail_once(engine: Any, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    first, second = Outbox(engine, mail_settings(port)), Outbox(engine, mail_settings(port))
    for n in range(5):
        await first.enqueue(OutboundMail(f"c{n}@example.org", f"Mail {n}", "text"))
    await asyncio.gather(first.deliver_due(), second.deliver_due())
    assert sorted(m["Subject"] for m in inbox.received) == [f"Mail {n}" for n in range(5)]


@pytest.mark.asyncio
async def test_ticket_reply_goes_out_only_to_an_email_contact(engine: Any, smtp: tuple[Inbox, int]) -> None:
    from mail.compose import followup_mail, ticket_reply_mail

    inbox, port = smtp
    settings = mail_settings(port)
    assert ticket_reply_mail(settings, 7, "+49301234567", "Your refund is on its way.", "conv-7") is None  # a phone number
    mail = ticket_reply_mail(settings, 7, " Zoe@Example.org ", "Your refund is on its way.", "conv-7")
    follow = followup_mail(settings, 3, "zoe@example.org", "Is the problem solved? Reply yes or no in the chat.", "conv-7")
    outbox = Outbox(engine, settings)
    await outbox.enqueue(mail)
    await outbox.enqueue(follow)
    assert [d.status for d in await outbox.deliver_due()] == ["sent", "sent"]
    assert [(m["To"], m["Subject"]) for m in inbox.received] == [
        ("zoe@example.org", "Re: your request #7"), ("zoe@example.org", "Was your problem solved? (request #3)")]


@pytest.mark.asyncio
async def test_a_crashed_senders_mail_is_taken_over_once(engine: Any, smtp: tuple[Inbox, int]) -> None:
    from mail.outbox import STALE_AFTER_S, mail_outbox

    inbox, port = smtp
    clock = Clock()
    first, second = Outbox(engine, mail_settings(port), clock=clock), Outbox(engine, mail_settings(port), clock=clock)
    stored = await first.enqueue(OutboundMail("d@example.org", "Stuck", "text"))
    async with engine.begin() as conn:  # a process claimed it and died before sending
        await conn.execute(mail_outbox.update().where(mail_outbox.c.id == stored.id).values(status="sending", claimed_at=clock.now))
    assert await first.deliver_due() == []  # a live sender is never overtaken
    clock.now += STALE_AFTER_S + 1
    await asyncio.gather(first.deliver_due(), second.deliver_due())
    assert [m["Subject"] for m in inbox.received] == ["Stuck"]
    assert (await first.get(stored.id)).status == "sent"
