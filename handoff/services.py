"""The console's services on app.ctx, built on first use from what bot/app.py already made.

Lazy, so the app factory needs only one line per blueprint and every request finds them even
before the after_server_start listener has started the dispatcher.
"""
from __future__ import annotations

from dataclasses import dataclass

from sanic import Sanic

from handoff.dispatch import Dispatcher
from handoff.hours import BusinessHours
from handoff.notes import CannedResponses, NoteStore
from handoff.presence import Presence
from handoff.routing import RoutingRules
from handoff.tickets import TicketStore


@dataclass
class ConsoleServices:
    rules: RoutingRules
    presence: Presence
    tickets: TicketStore
    notes: NoteStore
    canned: CannedResponses
    hours: BusinessHours
    dispatcher: Dispatcher


def services(app: Sanic) -> ConsoleServices:
    found = getattr(app.ctx, "console", None)
    if found is None:
        settings, engine = app.ctx.settings, app.ctx.engine
        rules = RoutingRules(settings)
        presence = Presence(engine, settings, rules)
        found = ConsoleServices(
            rules=rules, presence=presence, tickets=TicketStore(engine), notes=NoteStore(engine),
            canned=CannedResponses(engine), hours=BusinessHours(settings.business_hours, settings.business_timezone),
            dispatcher=Dispatcher(settings, app.ctx.queue, presence, app.ctx.control, app.ctx.bus),
        )
        app.ctx.console = found
    return found
