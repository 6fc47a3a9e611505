"""The console's customer API: who the customer is, their past cases, merging two records.
(Supervisors' data rights, export and erasure, are privacy/api.py.)

    GET  /api/agent/cases/<id>/customer        profile + past cases of the case's customer (or null)
    GET  /api/agent/customers?email=&q=        find records (to merge)
    GET  /api/agent/customers/<id>             one record with its past cases
    PUT  /api/agent/customers/<id>             name, e-mail, phone, notes (agents); tier (supervisors)
    POST /api/agent/customers/merge            {keep_id, absorb_id}
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

import sqlalchemy as sa
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from core.auth import staff
from core.http import ApiError, id_value, read_json
from customers.schema import customers as customer_table
from customers.store import Customer, CustomerError, CustomerStore
from handoff.accounts import Account
from handoff.care import care
from handoff.queue import CaseError

bp = Blueprint("customers_api", url_prefix="/api/agent")
agents_only = staff("agent", "supervisor")
supervisors_only = staff("supervisor")
MAX_QUERY = 200
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL: a larger one names no record
CONTROL = {chr(c) for c in range(32)} - {"\n", "\t"}


def _store(request: Request) -> CustomerStore:
    return care(request.app).customers


async def _view(request: Request, customer: Customer) -> dict[str, Any]:
    """The record and every case of every conversation of it (merged records' included)."""
    services = care(request.app)
    cases = await services.history.of_conversations(await services.customers.conversations_of(customer.id))
    return {"customer": customer.to_dict(), "past_cases": [asdict(c) for c in cases]}


async def _customer(request: Request, customer_id: int) -> Customer:
    if customer_id > MAX_ID:
        raise ApiError(404, f"no customer {customer_id}")
    try:
        return await _store(request).get(customer_id)
    except CustomerError as exc:
        raise ApiError(exc.status, str(exc)) from None


@bp.get("/cases/<case_id:int>/customer")
@agents_only
async def case_customer(request: Request, case_id: int, me: Account) -> HTTPResponse:
    """The context panel's customer: profile and every past case with its outcome."""
    if case_id > MAX_ID:
        raise ApiError(404, f"no case {case_id}")
    try:
        case = await request.app.ctx.queue.get(case_id)
    except CaseError as exc:
        raise ApiError(exc.status, str(exc)) from None
    store = _store(request)
    customer = await store.customer_of(case.conversation_id)
    if customer is None:
        return json({"customer": None, "past_cases": []})
    return json(await _view(request, customer))


@bp.get("/customers")
@agents_only
async def find_customers(request: Request, me: Account) -> HTTPResponse:
    email, text = (request.args.get("email") or "").strip(), (request.args.get("q") or "").strip()
    if not email and not text:
        raise ApiError(400, "give 'email' or 'q' (part of a name or e-mail address)")
    if len(email) > MAX_QUERY or len(text) > MAX_QUERY or "\x00" in email + text:
        raise ApiError(400, f"'email' and 'q' must be at most {MAX_QUERY} printable characters")
    store = _store(request)
    if email:
        found = await store.find_by_email(email)
    else:
        escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = (sa.select(customer_table.c.id).where(customer_table.c.merged_into.is_(None), sa.or_(
            sa.func.lower(customer_table.c.name).like(pattern, escape="\\"), customer_table.c.email.like(pattern, escape="\\")))
            .order_by(customer_table.c.id).limit(20))
        async with request.app.ctx.engine.connect() as conn:
            ids = [int(r[0]) for r in (await conn.execute(query)).all()]
        found = [await store.get(i) for i in ids]
    return json({"customers": [c.to_dict() for c in found]})


@bp.get("/customers/<customer_id:int>")
@agents_only
async def show_customer(request: Request, customer_id: int, me: Account) -> HTTPResponse:
    return json(await _view(request, await _customer(request, customer_id)))


@bp.put("/customers/<customer_id:int>")
@agents_only
async def edit_customer(request: Request, customer_id: int, me: Account) -> HTTPResponse:
    data = read_json(request)
    allowed = ("name", "email", "phone", "notes") + (("tier",) if me.role == "supervisor" else ())
    unknown = sorted(set(data) - set(allowed))
    if unknown or not data:
        raise ApiError(400 if me.role == "supervisor" or "tier" not in unknown else 403,
                       f"you may change {', '.join(allowed)}" + (f"; not {', '.join(unknown)}" if unknown else ""))
    for key, value in data.items():
        if not isinstance(value, str) or any(c in CONTROL for c in value) or (key != "notes" and "\n" in value):
            raise ApiError(400, f"'{key}' must be text without control characters" + (" or line breaks" if key != "notes" else ""))
    await _customer(request, customer_id)
    try:
        customer = await _store(request).update(customer_id, **data)
    except CustomerError as exc:
        raise ApiError(exc.status, str(exc)) from None
    await request.app.ctx.bus.publish("agents", {"type": "customer_updated", "customer_id": customer.id})
    return json(await _view(request, customer))


@bp.post("/customers/merge")
@agents_only
async def merge_customers(request: Request, me: Account) -> HTTPResponse:
    """Two records of one person become one: identities, conversations, cases and tickets follow."""
    data = read_json(request)
    keep_id, absorb_id = id_value(data.get("keep_id"), "keep_id"), id_value(data.get("absorb_id"), "absorb_id")
    for customer_id in (keep_id, absorb_id):
        await _customer(request, customer_id)  # 404 for a record that does not exist
    store = _store(request)
    try:
        customer = await store.merge(keep_id, absorb_id)
    except CustomerError as exc:
        raise ApiError(exc.status, str(exc)) from None
    await request.app.ctx.bus.publish("agents", {"type": "customer_updated", "customer_id": customer.id, "merged": absorb_id})
    return json(await _view(request, customer))
