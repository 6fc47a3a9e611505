"""The console's HTTP API beyond claim/reply/close (handoff/api.py): presence, context panel,
suggested answers, internal notes, canned responses, transfer, supervisor take-over, tickets.

Same authentication as the rest of /api/agent (core.auth.staff); every change that other
consoles must see is published on the bus's `agents` topic.
"""
from __future__ import annotations

import asyncio
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from core.auth import staff
from core.http import ApiError, id_value, read_json
from handoff.accounts import Account
from handoff.presence import STAFF_ROLES, PresenceError
from handoff.queue import Case, CaseError
from handoff.care import mail_ticket_reply
from handoff.services import services
from handoff.tickets import TicketError

bp = Blueprint("agent_console_api", url_prefix="/api/agent")
agents_only = staff("agent", "supervisor")
supervisors_only = staff("supervisor")
MAX_NOTE = 4000
CONTEXT_KINDS = ("answered", "missed", "escalated", "transferred", "ticket_opened", "left_queue", "handed_back", "claimed",
                 "reassigned", "sla_breached", "followup_asked", "followup_answered")


async def _case(request: Request, case_id: int) -> Case:
    try:
        return await request.app.ctx.queue.get(case_id)
    except CaseError as exc:
        raise ApiError(exc.status, str(exc)) from None


def _text(data: dict[str, Any], key: str = "text", limit: int = MAX_NOTE) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"'{key}' must be a non-empty string")
    if len(value) > limit:
        raise ApiError(400, f"'{key}' is too long ({len(value)} characters; the limit is {limit})")
    return value.strip()


async def _publish(request: Request, event: dict[str, Any]) -> None:
    await request.app.ctx.bus.publish("agents", event)


# -- presence, teams, agents -----------------------------------------------------------------
@bp.get("/agents")
@agents_only
async def list_agents(request: Request, me: Account) -> HTTPResponse:
    svc = services(request.app)
    return json({"agents": [s.to_dict() for s in await svc.presence.all()], "teams": svc.rules.team_names()})


@bp.post("/presence")
@agents_only
async def set_presence(request: Request, me: Account) -> HTTPResponse:
    data = read_json(request)
    try:
        state = await services(request.app).presence.set_status(me.id, data.get("status"))  # type: ignore[arg-type]
    except PresenceError as exc:
        raise ApiError(400, str(exc)) from None
    await _publish(request, {"type": "presence", "agent": state.to_dict()})
    return json({"presence": state.to_dict()})


@bp.put("/agents/<account_id:int>")
@supervisors_only
async def configure_agent(request: Request, account_id: int, me: Account) -> HTTPResponse:
    """A supervisor sets an agent's teams (skills) and capacity."""
    data = read_json(request)
    teams = data.get("teams")
    if teams is not None and (not isinstance(teams, list) or not all(isinstance(t, str) for t in teams)):
        raise ApiError(400, "'teams' must be a list of team names")
    account = await request.app.ctx.accounts.by_id(account_id)
    if account is None or account.role not in STAFF_ROLES:
        raise ApiError(404, f"no agent {account_id}")
    try:
        state = await services(request.app).presence.configure(account_id, teams=teams, capacity=data.get("capacity"))
    except PresenceError as exc:
        raise ApiError(400, str(exc)) from None
    await _publish(request, {"type": "presence", "agent": state.to_dict()})
    return json({"agent": state.to_dict()})


# -- the context panel -----------------------------------------------------------------------
@bp.get("/cases/<case_id:int>/context")
@agents_only
async def context(request: Request, case_id: int, me: Account) -> HTTPResponse:
    """Everything an agent needs before typing: transcript, why it escalated, NLU, candidates, profile, notes."""
    case = await _case(request, case_id)
    control = request.app.ctx.control
    conversation = await control.conversation_info(case.conversation_id)
    transcript = await control.transcript(case.conversation_id)
    events = await request.app.ctx.events.for_conversation(case.conversation_id)
    # Each customer message carries the NLU's sentiment in the transcript (the router stores it with the turn).
    turns = [{"kind": e["kind"], "at": e["at"], **e["data"]} for e in events if e["kind"] in CONTEXT_KINDS]
    signals = case.signals or {}
    return json({
        "case": case.to_dict(),
        "conversation": conversation,
        "escalation": {
            "reason": case.reason, "detail": case.detail, "nlu": signals.get("nlu") or {},
            "candidates": signals.get("candidates") or [], "sentiment": signals.get("sentiment"),
        },
        "transcript": transcript,
        "turns": turns,
        "notes": await services(request.app).notes.for_conversation(case.conversation_id),
    })


@bp.get("/cases/<case_id:int>/suggestions")
@agents_only
async def suggestions(request: Request, case_id: int, me: Account) -> HTTPResponse:
    """Knowledge-base answers for the customer's last question (search runs in a worker thread)."""
    case = await _case(request, case_id)
    transcript = await request.app.ctx.control.transcript(case.conversation_id)
    questions = [m["text"] for m in transcript if m["sender"] == "customer" and not m["text"].startswith("/")]
    if not questions:
        return json({"query": "", "suggestions": []})
    query = questions[-1]
    await request.app.ctx.knowledge_ready
    matches = await asyncio.to_thread(request.app.ctx.knowledge.search, query, 3)
    return json({"query": query, "suggestions": [
        {"faq_id": m.faq_id, "score": round(float(m.score), 4), "question": m.question, "answer": m.answer, "category": m.category}
        for m in matches
    ]})


# -- internal notes and canned responses -----------------------------------------------------
@bp.get("/cases/<case_id:int>/notes")
@agents_only
async def list_notes(request: Request, case_id: int, me: Account) -> HTTPResponse:
    case = await _case(request, case_id)
    return json({"notes": await services(request.app).notes.for_conversation(case.conversation_id)})


@bp.post("/cases/<case_id:int>/notes")
@agents_only
async def add_note(request: Request, case_id: int, me: Account) -> HTTPResponse:
    """Internal: stored with the conversation, shown to agents, never sent to the customer."""
    case = await _case(request, case_id)
    note = await services(request.app).notes.add(case.conversation_id, case.id, me.id, _text(read_json(request)))
    await _publish(request, {"type": "note", "case_id": case.id, "note": note})
    return json({"note": note}, status=201)


@bp.get("/canned")
@agents_only
async def list_canned(request: Request, me: Account) -> HTTPResponse:
    return json({"canned": await services(request.app).canned.list()})


@bp.post("/canned")
@agents_only
async def add_canned(request: Request, me: Account) -> HTTPResponse:
    data = read_json(request)
    item = await services(request.app).canned.add(_text(data, "title", 120), _text(data), me.id)
    return json({"canned": item}, status=201)


@bp.delete("/canned/<canned_id:int>")
@supervisors_only
async def delete_canned(request: Request, canned_id: int, me: Account) -> HTTPResponse:
    if not await services(request.app).canned.delete(canned_id):
        raise ApiError(404, f"no canned response {canned_id}")
    return json({"ok": True})


# -- transfer and take-over ------------------------------------------------------------------
@bp.post("/cases/<case_id:int>/transfer")
@agents_only
async def transfer(request: Request, case_id: int, me: Account) -> HTTPResponse:
    """To another agent (they join at once) or to a team (back to the queue), with a note."""
    data = read_json(request)
    note = data.get("note") or ""
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise ApiError(400, f"'note' must be a string of at most {MAX_NOTE} characters")
    agent_id, team = data.get("agent_id"), data.get("team")
    if (agent_id is None) == (team is None):
        raise ApiError(400, "give exactly one of 'agent_id' or 'team'")
    svc = services(request.app)
    queue, control = request.app.ctx.queue, request.app.ctx.control
    owner = None if me.role == "supervisor" else me.id
    try:
        if agent_id is not None:
            agent_id = id_value(agent_id, "agent_id")
            target = await request.app.ctx.accounts.by_id(agent_id)
            if target is None or target.role not in STAFF_ROLES:
                raise ApiError(404, f"no agent {agent_id}")
            case = await queue.transfer_to_agent(case_id, owner, target.id)
            where = target.display_name
        else:
            if not isinstance(team, str) or team not in svc.rules.teams:
                raise ApiError(400, f"unknown team {team!r}; teams are {', '.join(svc.rules.team_names())}")
            case = await queue.transfer_to_team(case_id, owner, team)
            where = f"team {team}"
    except CaseError as exc:
        raise ApiError(exc.status, str(exc)) from None
    saved = await svc.notes.add(case.conversation_id, case.id, me.id, f"Transferred to {where}" + (f": {note.strip()}" if note.strip() else ""), kind="transfer")
    if agent_id is not None:
        await svc.assignment.announce(case, target, {"type": "case_transferred", "from_agent_id": me.id, "note": saved})
    else:
        await control.case_transferred(case, me, team)
        await _publish(request, {"type": "case_transferred", "case": case.to_dict(), "from_agent_id": me.id, "note": saved})
    return json({"case": case.to_dict(), "note": saved})


@bp.post("/cases/<case_id:int>/takeover")
@supervisors_only
async def takeover(request: Request, case_id: int, me: Account) -> HTTPResponse:
    """A supervisor takes a chat from whichever agent has it."""
    try:
        case = await services(request.app).assignment.take_over(case_id, me)
    except CaseError as exc:
        raise ApiError(exc.status, str(exc)) from None
    return json({"case": case.to_dict()})


# -- tickets ---------------------------------------------------------------------------------
@bp.get("/tickets")
@agents_only
async def list_tickets(request: Request, me: Account) -> HTTPResponse:
    status = request.args.get("status", "pending")
    if status not in ("pending", "open", "answered", "closed"):
        raise ApiError(400, "status must be pending, open, answered or closed")
    return json({"tickets": [t.to_dict() for t in await services(request.app).tickets.list(status)]})


@bp.get("/tickets/<ticket_id:int>")
@agents_only
async def show_ticket(request: Request, ticket_id: int, me: Account) -> HTTPResponse:
    try:
        ticket = await services(request.app).tickets.get(ticket_id)
    except TicketError as exc:
        raise ApiError(exc.status, str(exc)) from None
    return json({"ticket": ticket.to_dict(full=True)})


@bp.post("/tickets/<ticket_id:int>/reply")
@agents_only
async def reply_ticket(request: Request, ticket_id: int, me: Account) -> HTTPResponse:
    """Stored on the ticket first, then said in the customer's conversation (their channel shows it)."""
    text = _text(read_json(request), limit=request.app.ctx.settings.max_message_chars)
    store = services(request.app).tickets
    try:
        ticket = await store.get(ticket_id)
        reply = await store.add_reply(ticket_id, me.id, text)
    except TicketError as exc:
        raise ApiError(exc.status, str(exc)) from None
    try:
        message = await request.app.ctx.control.ticket_reply(ticket.conversation_id, me, text)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    await store.set_reply_message(reply["id"], message["id"])
    mail_id = await mail_ticket_reply(request.app, ticket, text)  # and by e-mail when the contact is an address
    await _publish(request, {"type": "ticket_updated", "ticket_id": ticket_id})
    return json({"reply": {**reply, "message_id": message["id"], "mail_id": mail_id}, "message": message}, status=201)


@bp.post("/tickets/<ticket_id:int>/close")
@agents_only
async def close_ticket(request: Request, ticket_id: int, me: Account) -> HTTPResponse:
    try:
        ticket = await services(request.app).tickets.close(ticket_id)
    except TicketError as exc:
        raise ApiError(exc.status, str(exc)) from None
    await _publish(request, {"type": "ticket_updated", "ticket_id": ticket_id})
    return json({"ticket": ticket.to_dict()})
