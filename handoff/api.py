"""The agents' HTTP API: log in, list the queue, claim, reply, close and hand back.

Every endpoint but login needs `Authorization: Bearer <session token>` of a staff account
with an agent or supervisor role; the customer-facing side is reached only through the
ConversationControl the app wires in (app.ctx.control).
"""
from __future__ import annotations


from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from core.auth import staff
from core.http import ApiError, read_json
from core.ratelimit import client_address, limiter
from handoff.accounts import Account, Accounts, AuthError, session_key
from handoff.control import ConversationControl
from handoff.queue import CaseError, CaseQueue
from handoff.care import care, wants_followup
from handoff.care_api import delay_of
from handoff.services import services

bp = Blueprint("agent_api", url_prefix="/api/agent")


RESOLUTIONS = ("resolved", "not_resolved", "duplicate", "spam", "transferred_to_ticket", "other")


def _accounts(request: Request) -> Accounts:
    return request.app.ctx.accounts


def _queue(request: Request) -> CaseQueue:
    return request.app.ctx.queue


def _control(request: Request) -> ConversationControl:
    return request.app.ctx.control


agents_only = staff("agent", "supervisor")


async def _case_or_error(request: Request, case_id: int):  # type: ignore[no-untyped-def]
    try:
        return await _queue(request).get(case_id)
    except CaseError as exc:
        raise ApiError(exc.status, str(exc)) from None


@bp.post("/login")
async def login(request: Request) -> HTTPResponse:
    data = read_json(request)
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ApiError(400, "'username' and 'password' are required")
    # Every attempt takes a hit before the password is checked (so parallel guesses count
    # too); a right password gives its hit back. Known and unknown names are treated alike.
    rates = limiter(request)
    checks = rates.login(username, client_address(request))
    await rates.enforce("login attempts", *checks)
    try:
        token, account, expires = await _accounts(request).login(username, password)
    except AuthError as exc:
        raise ApiError(401, str(exc)) from None
    await rates.refund(*checks)
    return json({"token": token, "expires_at": expires, "account": account.__dict__})


@bp.post("/logout")
@staff("agent", "supervisor", "editor", "manager")
async def logout(request: Request, me: Account) -> HTTPResponse:
    """Ends the session that asked, and closes its live sockets on every instance."""
    token = request.ctx.staff_token
    await _accounts(request).logout(token)
    await request.app.ctx.bus.publish("sessions", {"type": "session_ended", "session": session_key(token)})
    return json({"ok": True})


@bp.get("/me")
@staff("agent", "supervisor", "editor", "manager")
async def whoami(request: Request, me: Account) -> HTTPResponse:
    return json({"account": me.__dict__})


@bp.get("/cases")
@agents_only
async def list_cases(request: Request, me: Account) -> HTTPResponse:
    status = request.args.get("status", "waiting")
    if status not in ("waiting", "assigned", "closed", "cancelled", "open", "mine"):
        raise ApiError(400, "status must be waiting, assigned, open, mine, closed or cancelled")
    queue = _queue(request)
    found = await (queue.list("open", agent_id=me.id) if status == "mine" else queue.list(status))
    items = []
    for case in found:
        item = case.to_dict()
        if case.status == "waiting":
            item["position"] = await queue.position(case.id)
        items.append(item)
    return json({"cases": items})


@bp.get("/cases/<case_id:int>")
@agents_only
async def show_case(request: Request, case_id: int, me: Account) -> HTTPResponse:
    case = await _case_or_error(request, case_id)
    transcript = await _control(request).transcript(case.conversation_id)
    return json({"case": case.to_dict(), "transcript": transcript})


@bp.post("/cases/<case_id:int>/claim")
@agents_only
async def claim(request: Request, case_id: int, me: Account) -> HTTPResponse:
    try:
        case = await services(request.app).assignment.claim(case_id, me)
    except CaseError as exc:
        raise ApiError(exc.status, str(exc)) from None
    return json({"case": case.to_dict()})


@bp.post("/cases/<case_id:int>/messages")
@agents_only
async def reply(request: Request, case_id: int, me: Account) -> HTTPResponse:
    data = read_json(request)
    try:
        case = await _queue(request).require_owner(case_id, me.id)
    except CaseError as exc:
        raise ApiError(exc.status, str(exc)) from None
    try:
        message = await _control(request).agent_message(case, me, data.get("text"))
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return json({"message": message}, status=201)


@bp.post("/cases/<case_id:int>/close")
@agents_only
async def close(request: Request, case_id: int, me: Account) -> HTTPResponse:
    data = read_json(request) if request.body and request.body.strip() else {}
    resolution = data.get("resolution", "resolved")
    if resolution not in RESOLUTIONS:
        raise ApiError(400, f"resolution must be one of {', '.join(RESOLUTIONS)}")
    asked = data.get("followup")  # true / false / absent (complaints: yes by default); delay_s optional
    if asked is not None and not isinstance(asked, bool):
        raise ApiError(400, "'followup' must be true or false")
    delay = delay_of(data)
    try:
        case = await _queue(request).close(case_id, me.id, resolution)
    except CaseError as exc:
        raise ApiError(exc.status, str(exc)) from None
    await _control(request).hand_back(case, me, resolution)
    await request.app.ctx.bus.publish("agents", {"type": "case_closed", "case": case.to_dict(), "agent_id": me.id})
    followup = None
    if wants_followup(request.app.ctx.settings, case, asked):
        followup = (await care(request.app).timers.followups.schedule(case.id, delay, created_by=me.id)).to_dict()
    return json({"case": case.to_dict(), "followup": followup})
