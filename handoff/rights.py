"""Data rights of the hand-off room: cases and their routing, notes, tickets, SLA breaches, follow-ups.

Children first (replies before tickets, routing before cases) so foreign keys hold. Staff
accounts and canned responses are the business's, not customers'.
"""
from __future__ import annotations

from core.rights import ChildRows, NoPersonalData, RightsRegistry, RowsWhere
from handoff.followup import followups
from handoff.schema import case_notes, case_routing, cases, ticket_replies, tickets
from handoff.sla import sla_breaches


def register(registry: RightsRegistry) -> None:
    ticket_rows = RowsWhere("handoff", tickets, "conversation_id", also=(("contact", "contact"),))
    case_rows = RowsWhere("handoff", cases, "conversation_id")
    registry.register(
        ChildRows("handoff", ticket_replies, "ticket_id", ticket_rows),
        ticket_rows,
        RowsWhere("handoff", followups, "conversation_id"),
        RowsWhere("handoff", sla_breaches, "conversation_id"),
        RowsWhere("handoff", case_notes, "conversation_id"),
        ChildRows("handoff", case_routing, "case_id", case_rows),
        case_rows,
        NoPersonalData("handoff", "accounts", "staff accounts"),
        NoPersonalData("handoff", "sessions", "staff sessions"),
        NoPersonalData("handoff", "agent_status", "staff presence"),
        NoPersonalData("handoff", "canned_responses", "the team's reusable replies"),
    )
