"""Supervisors' data rights over HTTP: export everything held about one customer, and erase it.

    GET  /api/agent/customers/<id>/export      supervisors: everything held about them (JSON)
    POST /api/agent/customers/<id>/erase       supervisors: {force?} delete it all, Rasa's tracker included

The work is privacy/data_rights.py's (every room's registered handlers), run in a worker thread.
"""
from __future__ import annotations

import asyncio

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from core.auth import staff
from core.http import ApiError, read_json
from handoff.accounts import Account
from privacy.data_rights import DataRights, OpenCaseError

bp = Blueprint("privacy_api", url_prefix="/api/agent")
supervisors_only = staff("supervisor")
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL: a larger one names no record


def _rights(request: Request) -> DataRights:
    rights: DataRights = request.app.ctx.data_rights
    return rights


@bp.get("/customers/<customer_id:int>/export")
@supervisors_only
async def export_customer(request: Request, customer_id: int, me: Account) -> HTTPResponse:
    if customer_id > MAX_ID:
        raise ApiError(404, f"no customer {customer_id}")
    try:
        exported = await asyncio.to_thread(_rights(request).export_customer, customer_id)
    except KeyError:
        raise ApiError(404, f"no customer {customer_id}") from None
    return json(exported, default=str, headers={"Content-Disposition": f'attachment; filename="customer-{customer_id}.json"'})


@bp.post("/customers/<customer_id:int>/erase")
@supervisors_only
async def erase_customer(request: Request, customer_id: int, me: Account) -> HTTPResponse:
    """Everything about them, in every room and Rasa's tracker; refused (409) while a case of theirs is open."""
    data = read_json(request) if request.body and request.body.strip() else {}
    force = data.get("force", False)
    if not isinstance(force, bool):
        raise ApiError(400, "'force' must be true or false")
    if customer_id > MAX_ID:
        raise ApiError(404, f"no customer {customer_id}")
    try:
        erasure = await asyncio.to_thread(_rights(request).erase_customer, customer_id, force)
    except KeyError:
        raise ApiError(404, f"no customer {customer_id}") from None
    except OpenCaseError as exc:
        raise ApiError(409, str(exc)) from None
    await request.app.ctx.bus.publish("agents", {"type": "customer_erased", "customer_id": customer_id})
    return json({"erased": customer_id, "conversations": len(erasure.subject.conversation_ids),
                 "rows": {k: v for k, v in erasure.counts.items() if v}})
