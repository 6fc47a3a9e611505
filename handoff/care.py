"""Case care's services: customers, SLA timers, reassignment, follow-ups, mail, retention.

Built once by the composition root (server/services.py), so the HTTP handlers and the timer
loop share one set of objects. Retention is handed in as a callable: erasing data crosses every
room (privacy/), which handoff/ may not import. The clock is injectable for tests that build
these parts themselves (tests/test_timer_loop.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sanic import Sanic

from customers.store import CustomerStore
from handoff.followup_flow import FollowupFlow
from handoff.history import CaseHistory
from handoff.queue import Case
from handoff.timers import CaseTimers
from mail.compose import ticket_reply_mail
from mail.outbox import Outbox

Clock = Callable[[], float]


@dataclass
class CareServices:
    customers: CustomerStore
    timers: CaseTimers
    flow: FollowupFlow
    outbox: Outbox
    history: CaseHistory  # a customer's past cases, for the console
    apply_retention: Callable[[], int]  # erase conversations past customers.retention_days (privacy/); the count


def care(app: Sanic) -> CareServices:
    """The care services server/services.py built before the server started."""
    found: CareServices = app.ctx.care
    return found


def wants_followup(settings: Any, case: Case, asked: Any) -> bool:
    """Closing schedules a follow-up when the agent asked for one, or by default for the
    `followup.auto_teams` (complaints) unless the agent said no."""
    if asked is not None:
        return bool(asked)
    return (case.team or "") in settings.followup.auto_teams


async def mail_ticket_reply(app: Sanic, ticket: Any, text: str) -> int | None:
    """The ticket's reply also goes out as mail when the contact is an e-mail address; the outbox id."""
    mail = ticket_reply_mail(app.ctx.settings.mail, ticket.id, ticket.contact, text, ticket.conversation_id)
    if mail is None:
        return None
    return (await care(app).outbox.enqueue(mail)).id
