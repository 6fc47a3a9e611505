"""The human side's services, as typed objects the composition root (server/) builds once.

`WaitingRoom` is what the router needs to tell a waiting customer about routing, opening hours
and who is online; `ConsoleServices` is what the agent API and console use. Both hold the same
objects, so there is one RoutingRules, one Presence, one BusinessHours and one TicketStore per
process.
"""
from __future__ import annotations

from dataclasses import dataclass

from sanic import Sanic
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import Settings
from handoff.assignment import CaseAssignment
from handoff.dispatch import Dispatcher
from handoff.hours import BusinessHours
from handoff.notes import CannedResponses, NoteStore
from handoff.presence import Presence
from handoff.routing import RoutingRules
from handoff.tickets import TicketStore


@dataclass(frozen=True)
class WaitingRoom:
    rules: RoutingRules
    presence: Presence
    hours: BusinessHours
    tickets: TicketStore

    @classmethod
    def build(cls, engine: AsyncEngine, settings: Settings) -> "WaitingRoom":
        rules = RoutingRules(settings)
        return cls(rules, Presence(engine, settings, rules), BusinessHours(settings.business_hours, settings.business_timezone), TicketStore(engine))


@dataclass(frozen=True)
class ConsoleServices:
    rules: RoutingRules
    presence: Presence
    tickets: TicketStore
    notes: NoteStore
    canned: CannedResponses
    hours: BusinessHours
    dispatcher: Dispatcher
    assignment: CaseAssignment


def services(app: Sanic) -> ConsoleServices:
    """The console's services, built by server/services.py before the server starts."""
    found: ConsoleServices = app.ctx.console
    return found
