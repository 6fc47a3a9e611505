"""Case care on app.ctx: customers, SLA timers, reassignment, follow-ups, mail, data rights.

Built once, on first use, from what bot/app.py already made (like handoff/services.py), so the
HTTP handlers and the timer loop share one set of objects. The clock is injectable for tests
that build these parts themselves (tests/test_timer_loop.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from sanic import Sanic

from core.db import sync_engine
from customers.data_rights import DataRights
from customers.store import CustomerStore
from handoff.followup_flow import FollowupFlow
from handoff.queue import Case
from handoff.services import services
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
    rights: DataRights


def build_care(app: Sanic, clock: Clock = time.time) -> CareServices:
    settings, engine = app.ctx.settings, app.ctx.engine
    svc = services(app)
    customers = CustomerStore(engine, clock)
    timers = CaseTimers(engine, settings, app.ctx.queue, svc.presence, clock)
    outbox = Outbox(engine, settings.mail, clock)
    flow = FollowupFlow(settings, timers.followups, app.ctx.control, app.ctx.conversations, customers, svc.tickets, outbox,
                        app.ctx.persona, app.ctx.bus)
    return CareServices(customers, timers, flow, outbox, DataRights(sync_engine(settings), settings, clock=clock))


def care(app: Sanic) -> CareServices:
    found = getattr(app.ctx, "care", None)
    if found is None:
        found = app.ctx.care = build_care(app)
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
