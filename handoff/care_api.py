"""The console's case-care API: SLA time left per case, follow-ups (due, scheduled, asked ...).

    GET  /api/agent/sla[?case_id=N]                timers of every open case (or one case)
    GET  /api/agent/followups?status=due|scheduled|asked|solved|reopened|no_answer|cancelled
    POST /api/agent/cases/<id>/followup            {delay_s?}: ask the customer later (closed cases)
    POST /api/agent/followups/<id>/cancel
"""
from __future__ import annotations

from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from core.auth import staff
from core.http import ApiError, int_arg, read_json
from handoff.accounts import Account
from handoff.care import care
from handoff.followup import STATUSES, FollowupError

bp = Blueprint("care_api", url_prefix="/api/agent")
agents_only = staff("agent", "supervisor")
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL


def _known(value: int, what: str) -> int:
    if value > MAX_ID:
        raise ApiError(404, f"no {what} {value}")
    return value


@bp.get("/sla")
@agents_only
async def sla(request: Request, me: Account) -> HTTPResponse:
    """Time left, state (ok / warn / breached / met / missed) of each timer, per case."""
    one = int_arg(request, "case_id", -1)
    ids = [_known(one, "case")] if one >= 0 else [c.id for c in await request.app.ctx.queue.list("open", limit=500)]
    timers = await care(request.app).timers.sla.status(ids)
    return json({"warn_fraction": request.app.ctx.settings.sla.warn_fraction,
                 "cases": {str(case_id): value.to_dict() for case_id, value in timers.items()}})


@bp.get("/followups")
@agents_only
async def followups(request: Request, me: Account) -> HTTPResponse:
    status = request.args.get("status", "due")
    if status not in ("due",) + STATUSES:
        raise ApiError(400, f"status must be one of due, {', '.join(STATUSES)}")
    store = care(request.app).timers.followups
    found = await store.due() if status == "due" else await store.list(status)
    return json({"followups": [f.to_dict() for f in found]})


def delay_of(data: dict[str, Any]) -> float | None:
    delay = data.get("delay_s")
    if delay is not None and (not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay <= 365 * 86400):
        raise ApiError(400, "'delay_s' must be a number of seconds from 0 to one year")
    return None if delay is None else float(delay)


@bp.post("/cases/<case_id:int>/followup")
@agents_only
async def schedule(request: Request, case_id: int, me: Account) -> HTTPResponse:
    data = read_json(request) if request.body and request.body.strip() else {}
    delay = delay_of(data)
    try:
        followup = await care(request.app).timers.followups.schedule(_known(case_id, "case"), delay, created_by=me.id)
    except FollowupError as exc:
        raise ApiError(404 if str(exc).startswith("no case") else exc.status, str(exc)) from None
    await request.app.ctx.bus.publish("agents", {"type": "followup_scheduled", "followup": followup.to_dict()})
    return json({"followup": followup.to_dict()}, status=201)


@bp.post("/followups/<followup_id:int>/cancel")
@agents_only
async def cancel(request: Request, followup_id: int, me: Account) -> HTTPResponse:
    try:
        followup = await care(request.app).timers.followups.cancel(_known(followup_id, "follow-up"))
    except FollowupError as exc:
        raise ApiError(404 if str(exc).startswith("no follow-up") else exc.status, str(exc)) from None
    await request.app.ctx.bus.publish("agents", {"type": "followup_cancelled", "followup": followup.to_dict()})
    return json({"followup": followup.to_dict()})
