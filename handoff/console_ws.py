"""The agent console: its page (/console) and its live websocket (/api/agent/ws).

The socket authenticates with `Authorization: Bearer <token>` (non-browser clients) or, from a
browser, which cannot set headers, with a first frame {"type": "auth", "token": ...}: a staff
token never travels in a URL (where logs and Referer headers keep it).

The websocket pushes the bus's `agents` topic (new, claimed, transferred, closed and cancelled
cases, messages of conversations with a person, typing, presence) and receives typing and
presence check-ins. Actions (claim, reply, close, transfer) stay plain HTTP calls: each is
stored before it is published, so a console that reconnects after a restart reloads the state
from the API and misses nothing.

The session is checked on connect and again at every check-in; an expired session closes
the socket with code 4401, and a logout (on any instance: the bus's `sessions` topic) closes
every socket of that session at once.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from core.pages import SCRIPT, STYLE, StaffPage
from core.http import ApiError, bearer_token, parse_json
from core.websocket import receive
from handoff.accounts import Account, AuthError, session_key
from handoff.console_api import bp as console_api_bp
from handoff.presence import STAFF_ROLES, PresenceError
from handoff.services import services

log = logging.getLogger(__name__)
PAGE = StaffPage(Path(__file__).parent / "static" / "console", "console.html", {"console.js": SCRIPT, "console.css": STYLE}, "console")
CHECK_IN_S = 15.0  # the page pings this often; presence_timeout_s should be a few times larger
AUTH_FRAME_S = 10.0  # a browser has this long to send its {"type": "auth"} frame

page_bp = Blueprint("agent_console_page")
ws_bp = Blueprint("agent_console_ws", url_prefix="/api/agent")


@page_bp.get("/console")
async def console_page(request: Request) -> HTTPResponse:
    """The page itself is public; everything it shows needs a staff login."""
    return await PAGE.html()


@page_bp.get("/console/static/<name:str>")
async def console_file(request: Request, name: str) -> HTTPResponse:
    """Only the console's own files (a directory or any other name is a 404, not a crash)."""
    return await PAGE.asset(name)


async def _snapshot(request: Request, me: Account) -> dict[str, Any]:
    svc = services(request.app)
    queue = request.app.ctx.queue
    positions = await queue.positions()
    waiting = [{**c.to_dict(), "position": positions.get(c.id, 0)} for c in await queue.list("waiting")]
    assigned = [c.to_dict() for c in await queue.list("assigned")]
    return {
        "type": "hello",
        "me": me.__dict__,
        "presence": (await svc.presence.get(me.id)).to_dict(),
        "teams": svc.rules.team_names(),
        "waiting": waiting,
        "assigned": assigned,
        "tickets_pending": len(await svc.tickets.list("pending")),
        "check_in_s": CHECK_IN_S,
    }


async def _first_frame_token(ws: Any) -> str:
    """A browser's token, from its first frame; AuthError if it does not come in time."""
    async def give_up() -> bool:
        return False

    raw = await receive(ws, AUTH_FRAME_S, give_up)
    try:
        frame = parse_json(raw) if isinstance(raw, str) else None
    except ValueError:
        frame = None
    token = frame.get("token") if isinstance(frame, dict) and frame.get("type") == "auth" else None
    if not isinstance(token, str) or not token or not token.isascii():
        raise AuthError('send {"type": "auth", "token": "<session token>"} first')
    return token


async def _authenticate(request: Request, token: str) -> Account:
    account = await request.app.ctx.accounts.authenticate(token)  # AuthError if unknown/expired
    if account.role not in STAFF_ROLES:
        raise PermissionError(f"a {account.role} account cannot use the agent console")
    return account


def _sockets(request: Request) -> Counter[int]:
    if not hasattr(request.app.ctx, "console_sockets"):
        request.app.ctx.console_sockets = Counter()
    return request.app.ctx.console_sockets


@ws_bp.websocket("/ws")
async def console_socket(request: Request, ws: Any) -> None:
    try:
        token = bearer_token(request) or await _first_frame_token(ws)
        me = await _authenticate(request, token)
    except (AuthError, ApiError) as exc:
        await ws.send(json.dumps({"type": "error", "status": 401, "error": str(exc)}))
        await ws.close(code=4401, reason="log in again")
        return
    except PermissionError as exc:
        await ws.send(json.dumps({"type": "error", "status": 403, "error": str(exc)}))
        await ws.close(code=4403, reason="forbidden")
        return
    svc = services(request.app)
    bus = request.app.ctx.bus
    events = bus.subscribe("agents")
    ended = bus.subscribe("sessions")
    session_id = session_key(token)
    sockets = _sockets(request)
    sockets[me.id] += 1
    await svc.presence.heartbeat(me.id)
    await bus.publish("agents", {"type": "presence", "agent": (await svc.presence.get(me.id)).to_dict()})
    send_lock = asyncio.Lock()

    async def send(payload: dict[str, Any]) -> None:
        async with send_lock:
            await ws.send(json.dumps(payload, default=str))

    async def forward() -> None:
        while True:
            await send(await events.get())

    async def watch_logout() -> None:
        """Logged out (here or on another instance): nothing more streams to this socket."""
        while True:
            event = await ended.get()
            if event.get("type") == "session_ended" and event.get("session") == session_id:
                await send({"type": "error", "status": 401, "error": "logged out"})
                await ws.close(code=4401, reason="logged out")
                return

    pump: asyncio.Task[None] | None = None
    watcher: asyncio.Task[None] | None = None
    try:
        watcher = asyncio.create_task(watch_logout())
        await send(await _snapshot(request, me))
        pump = asyncio.create_task(forward())
        async def still_valid() -> bool:
            """Sessions expire while a console stays open: re-check on every quiet period too."""
            try:
                await _authenticate(request, token)
                return True
            except (AuthError, PermissionError) as exc:
                await send({"type": "error", "status": 401, "error": str(exc)})
                await ws.close(code=4401, reason="session expired")
                return False

        while True:
            raw = await receive(ws, CHECK_IN_S * 2, still_valid)
            if raw is None or not await still_valid():
                return  # closed, or the session ended
            await _handle(request, me, raw, send)
    except Exception as exc:  # noqa: BLE001 - ConnectionClosed / CancelledError: the console went away
        if not isinstance(exc, asyncio.CancelledError) and exc.__class__.__name__ not in ("ConnectionClosedOK", "ConnectionClosedError", "ConnectionClosed"):
            log.exception("console socket of %s failed", me.username)
    finally:
        for task in (pump, watcher):
            if task is not None:
                task.cancel()
        bus.unsubscribe("agents", events)
        bus.unsubscribe("sessions", ended)
        sockets[me.id] -= 1
        if sockets[me.id] <= 0:
            # Last console of this agent in this process closed: not present until it returns.
            asyncio.create_task(_gone(request, me.id))


async def _gone(request: Request, account_id: int) -> None:
    svc = services(request.app)
    with contextlib.suppress(Exception):
        await svc.presence.went_away(account_id)
        await request.app.ctx.bus.publish("agents", {"type": "presence", "agent": (await svc.presence.get(account_id)).to_dict()})


async def _handle(request: Request, me: Account, raw: Any, send: Any) -> None:
    """Client -> server: check-ins, presence changes and the agent's typing indicator."""
    try:
        message = parse_json(raw)
        kind = message.get("type")
    except (ValueError, AttributeError, TypeError):
        await send({"type": "error", "status": 400, "error": "send JSON objects with a 'type'"})
        return
    svc = services(request.app)
    if kind == "ping":
        await svc.presence.heartbeat(me.id)
        await send({"type": "pong"})
    elif kind == "presence":
        try:
            state = await svc.presence.set_status(me.id, message.get("status"))
        except PresenceError as exc:
            await send({"type": "error", "status": 400, "error": str(exc)})
            return
        await request.app.ctx.bus.publish("agents", {"type": "presence", "agent": state.to_dict()})
    elif kind == "typing":
        case_id = message.get("case_id")
        if not isinstance(case_id, int) or isinstance(case_id, bool) or not 0 < case_id < 2**63:
            return
        try:
            case = await request.app.ctx.queue.require_owner(case_id, me.id)
        except Exception:  # noqa: BLE001 - not (or no longer) theirs: ignore a stale indicator
            return
        await request.app.ctx.control.agent_typing(case, me, bool(message.get("typing")))
    else:
        await send({"type": "error", "status": 400, "error": f"unknown message type {kind!r}"})


bp = Blueprint.group(page_bp, ws_bp, console_api_bp)
