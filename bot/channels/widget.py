"""The embeddable web chat widget: a session endpoint, a websocket, and the static files.

    GET  /widget/tandem-widget.js, /widget/widget.css    the widget itself (no build step)
    GET  /demo                                           the demo host page (the demo business of tandem.yml)
    POST /widget/session   {site_key, token?}            -> {conversation_id, token, mode, resumed}
    WS   /widget/ws?token=<token>&after=<last id>        history since `after`, then live messages

The adapter only translates: websocket frames become Router calls, and whatever the router
publishes on `conversation:<id>` (the customer's own message included) goes out as frames.
The browser de-duplicates by message id, so a message that arrives both in the history and
live, or both live and in an ack, is shown once.

Nothing typed is lost on a bad connection: each customer message carries a `client_id`; the
widget keeps it (sessionStorage) until the server has stored it (its echo, an ack, or a
"received" frame) and sends it again after reconnecting; the database keeps one copy per
client id (conversations/store.py). Pings are answered while a turn is still running, so the
widget can tell a slow answer from a dead connection. Error frames carry a `code`: invalid
(fix the message), rate_limited (resend after `retry_after` seconds), server (offer a retry).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any, Awaitable, TypeVar

from sanic import Blueprint, Request
from sanic.exceptions import WebsocketClosed
from sanic.response import HTTPResponse, file, json as json_response
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.exceptions import ConnectionClosed
from websockets.typing import Data

from core import tokens
from core.persona import public_view
from conversations.store import Conversation, UnknownConversation
from bot.port import ChannelPort
from bot.turns import CLIENT_ID, ClientIdReused, InvalidMessage, Turn, TurnIncomplete
from core.language import normalise_tag
from core.http import ApiError, BadJson, database_unavailable, error_response, int_arg, parse_json, read_json
from core.ratelimit import Throttled, client_address, limiter
from core.websocket import receive

log = logging.getLogger(__name__)
T = TypeVar("T")

CHANNEL = "widget"
STATIC = Path(__file__).resolve().parents[1] / "static"
WIDGET_FILES = {
    "tandem-widget.js": "application/javascript; charset=utf-8",
    "widget.css": "text/css; charset=utf-8",
}
# A frame bigger than this is refused with an error frame; the socket stays open. (Sanic's
# own WEBSOCKET_MAX_SIZE, 1 MiB, still closes the connection for anything larger.)
MAX_FRAME_BYTES = 16 * 1024
MAX_QUEUED_FRAMES = 20  # frames read but not yet handled, per connection
HISTORY_PAGE = 500
# The host page lives on another origin: the session endpoint is a plain CORS JSON API
# (no cookies; the token travels in the body), so any origin may call it.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Expose-Headers": "Retry-After",
    "Access-Control-Max-Age": "600",
}

bp = Blueprint("widget_channel")


class FrameError(ValueError):
    """A client frame that cannot be accepted; the text is sent back in an error frame."""


def _router(request: Request) -> ChannelPort:
    """The router, as a channel sees it (bot/port.py)."""
    port: ChannelPort = request.app.ctx.router
    return port


def allowed_site_keys(request: Request) -> set[str]:
    raw: str = request.app.ctx.settings.widget_site_keys
    return {key.strip() for key in raw.split(",") if key.strip()}


# -- static files ---------------------------------------------------------------------------
@bp.get("/widget/<name:str>")
async def widget_file(request: Request, name: str) -> HTTPResponse:
    """Only the widget's own files; no directory listing, no path traversal."""
    if name not in WIDGET_FILES:
        raise ApiError(404, f"no widget file '{name}'")
    headers = {"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"}
    return await file(STATIC / "widget" / name, mime_type=WIDGET_FILES[name], headers=headers)


@bp.get("/demo")
async def demo_page(request: Request) -> HTTPResponse:
    """The demo shop that embeds the widget; only when the "demo" site key is allowed."""
    if "demo" not in allowed_site_keys(request):
        raise ApiError(404, "the demo page is disabled (site key 'demo' is not allowed)")
    return await file(STATIC / "demo.html", mime_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


# -- session --------------------------------------------------------------------------------
@bp.route("/widget/session", methods=["OPTIONS"])
async def session_preflight(request: Request) -> HTTPResponse:
    return HTTPResponse(status=204, headers=CORS_HEADERS)


@bp.on_response
async def session_cors(request: Request, response: HTTPResponse) -> None:
    """Every answer of /widget/session carries CORS headers, 5xx and 503 included: the host
    page must be able to read what went wrong (and a Retry-After), not see an opaque failure."""
    if request.path == "/widget/session":
        response.headers.update(CORS_HEADERS)


@bp.post("/widget/session")
async def session(request: Request) -> HTTPResponse:
    """Errors carry the CORS headers too: a host page on another origin must be able to read
    a 401 (and start afresh) or a 403, not just see an opaque network failure."""
    try:
        return await _session(request)
    except ApiError as exc:
        return error_response(exc.status_code, exc.message, {**exc.extra_headers, **CORS_HEADERS}, **exc.extra)


async def _session(request: Request) -> HTTPResponse:
    """Start a conversation, or resume the one a genuine token belongs to."""
    data = read_json(request, max_bytes=4096)
    site_key = data.get("site_key")
    if not isinstance(site_key, str) or site_key not in allowed_site_keys(request):
        raise ApiError(403, "unknown site key; this site is not allowed to embed the chat")
    token = data.get("token")
    router = _router(request)
    if token is not None:
        conversation = await _conversation_of(request, token)
        if conversation.profile.get("site_key") != site_key:
            raise ApiError(403, "this conversation belongs to another site")
        if not await _link_identity(request, conversation.id, site_key, data.get("identity"), conversation.profile):
            raise ApiError(401, "this conversation belongs to another signed-in customer; start a new one")
        body = {"conversation_id": conversation.id, "token": token, "mode": conversation.mode, "resumed": True,
                "business": await _business(request, str(conversation.profile.get("lang") or "en"))}
        return json_response(body, headers=CORS_HEADERS)
    await limiter(request).enforce("new conversations", *limiter(request).conversation(client_address(request)))
    conversation = await router.start_conversation(CHANNEL)
    # The host page's (or browser's) language is the conversation's until the customer writes (core/language.py).
    lang = normalise_tag(data.get("lang") if isinstance(data.get("lang"), str) else None) or "en"
    await router.note_profile(conversation.id, site_key=site_key, lang=lang)
    await _link_identity(request, conversation.id, site_key, data.get("identity"))
    token = tokens.sign(request.app.ctx.settings.secret(), conversation.id)
    body = {"conversation_id": conversation.id, "token": token, "mode": conversation.mode, "resumed": False,
            "business": await _business(request, lang)}
    return json_response(body, status=201, headers=CORS_HEADERS)


async def _link_identity(request: Request, conversation_id: str, site_key: str, identity: Any,
                         profile: dict[str, Any] | None = None) -> bool:
    """The host page's signed identity (docs/customers.md) links the conversation to the customer;
    unsigned, forged or expired ones are ignored and the chat works as an anonymous one.

    False when a conversation that a signed-in customer had is resumed by anyone else (another
    user, or nobody signed in, on a shared browser): the widget then starts a new conversation.
    """
    from customers.identity import verify_identity
    from customers.linking import link_site_identity
    from handoff.care import care

    settings, store = request.app.ctx.settings.customers, care(request.app).customers
    verified = verify_identity(site_key, identity.get("payload"), identity.get("signature"), time.time(), settings=settings) \
        if isinstance(identity, dict) else None
    owner = (profile or {}).get("signed_in_customer")
    if owner is not None:
        found = None if verified is None else await store.find_by_identity(verified.channel, verified.user_id)
        return found is not None and found.id == owner
    if verified is None:
        return True
    customer = await link_site_identity(store, request.app.ctx.conversations, settings, conversation_id, site_key, identity, time.time())
    if customer is not None:
        await _router(request).note_profile(conversation_id, signed_in_customer=customer.id)
    return True


async def _business(request: Request, lang: str = "en") -> dict[str, str]:
    """The name (widget header) and greeting from settings + editors' overrides (core/persona.py)."""

    return public_view(await request.app.ctx.persona.current(), lang)


async def _conversation_of(request: Request, token: Any) -> Conversation:
    """The widget conversation a token proves; 401 for anything forged or unknown."""
    if not isinstance(token, str):
        raise ApiError(401, "'token' must be a string")
    conversation_id = tokens.verify(request.app.ctx.settings.secret(), token)
    if conversation_id is None:
        raise ApiError(401, "invalid conversation token")
    try:
        conversation = await _router(request).conversation(conversation_id)
    except UnknownConversation:
        raise ApiError(401, "this conversation no longer exists; start a new one") from None
    if conversation.channel != CHANNEL:
        raise ApiError(401, "this token does not belong to a web widget conversation")
    return conversation


@bp.on_request
async def authorise_websocket(request: Request) -> None:
    """Check the websocket's token BEFORE the handshake, so a forged one gets a plain HTTP 401."""
    if request.path != "/widget/ws":
        return
    conversation = await _conversation_of(request, request.args.get("token"))
    after = int_arg(request, "after", 0)
    request.ctx.conversation_id = conversation.id
    request.ctx.after = after
    request.ctx.address = client_address(request)


# -- websocket ------------------------------------------------------------------------------
@bp.websocket("/widget/ws")
async def websocket(request: Request, ws: WebsocketImplProtocol) -> None:
    """History since the client's cursor, then live messages; client frames go to the router."""
    conversation_id: str = request.ctx.conversation_id
    router = _router(request)
    # Follow before reading the history, so nothing said in between is missed.
    updates = router.follow(conversation_id)
    pusher: asyncio.Task[None] | None = None
    try:
        shown = await _send_history(request, ws, conversation_id, request.ctx.after)
        pusher = asyncio.create_task(_push_updates(ws, updates, shown))
        await _serve_client(request, ws, conversation_id)
    except (ConnectionClosed, WebsocketClosed):
        pass  # the customer went away (page closed, network gone): the widget reconnects
    finally:
        router.unfollow(conversation_id, updates)
        if pusher is not None:
            pusher.cancel()
            await asyncio.gather(pusher, return_exceptions=True)


async def _send(ws: WebsocketImplProtocol, frame: dict[str, Any]) -> None:
    await ws.send(json.dumps(frame, default=str))


async def _send_history(request: Request, ws: WebsocketImplProtocol, conversation_id: str, after: int) -> int:
    """Everything after `after`, page by page; returns the last id sent."""
    router = _router(request)
    messages: list[dict[str, Any]] = []
    cursor = after
    while True:
        page = await router.history(conversation_id, cursor, limit=HISTORY_PAGE)
        messages += [m.to_dict() for m in page]
        if len(page) < HISTORY_PAGE:
            break
        cursor = page[-1].id
    conversation = await router.conversation(conversation_id)
    last = messages[-1]["id"] if messages else after
    await _send(ws, {"type": "history", "messages": messages, "mode": conversation.mode, "cursor": last})
    return last


async def _push_updates(ws: WebsocketImplProtocol, updates: asyncio.Queue[dict[str, Any]], shown: int) -> None:
    """Bus -> browser. Messages already in the history frame are skipped."""
    while True:
        event = await updates.get()
        if event.get("type") == "message":
            message = event.get("message") or {}
            if isinstance(message.get("id"), int) and message["id"] <= shown:
                continue
            await _send(ws, {"type": "message", "message": message})
        elif event.get("type") == "typing":
            await _send(ws, {"type": "typing", "typing": bool(event.get("typing")), "agent_name": event.get("agent_name")})


async def _serve_client(request: Request, ws: WebsocketImplProtocol, conversation_id: str) -> None:
    """Client -> router. Frames are handled (throttled, routed) one at a time by a worker, so a
    customer's messages keep their order; this reader answers pings and bad frames at once,
    even mid-turn."""
    work: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    _keep_running(_work_through(request, ws, conversation_id, work))
    try:
        while True:
            raw = await receive(ws)
            if raw is None:
                return
            ref: Any = None
            frame: dict[str, Any] | None = None
            try:
                frame = parse_frame(raw)
                ref = frame.get("ref")
                if frame["type"] == "ping":
                    await _send(ws, {"type": "pong", "ref": ref})
                    continue
                if work.qsize() >= MAX_QUEUED_FRAMES:
                    raise Throttled(2.0, "messages at once")
                # No await between reading a frame and queueing it: Sanic cancels this reader
                # when the connection drops, and a frame already read must not be lost.
                work.put_nowait(frame)
            except FrameError as exc:
                await _send(ws, _error(exc, "invalid", frame=None, ref=ref))
            except Throttled as exc:
                await _send(ws, _throttled(exc, frame, ref))
    finally:
        work.put_nowait(None)  # the worker finishes what was read, then stops


def _throttled(exc: Throttled, frame: dict[str, Any] | None, ref: Any) -> dict[str, Any]:
    return {**_error(exc, "rate_limited", frame, ref), "retry_after": exc.retry_after}


def _error(exc: Exception, code: str, frame: dict[str, Any] | None, ref: Any) -> dict[str, Any]:
    message = exc.message if isinstance(exc, ApiError) else str(exc)
    error: dict[str, Any] = {"type": "error", "error": message, "code": code, "ref": ref}
    if frame and frame.get("client_id") is not None:
        error["client_id"] = frame["client_id"]
    return error


async def _work_through(request: Request, ws: WebsocketImplProtocol, conversation_id: str, work: asyncio.Queue[Any]) -> None:
    """Handle frames in order until the reader is done; a received frame is handled even if the
    customer has gone meanwhile (its answer waits in the history for the next visit)."""
    while True:
        frame = await work.get()
        if frame is None:
            return
        ref = frame.get("ref")
        try:
            if frame["type"] in ("message", "button"):
                rates = limiter(request)
                await rates.enforce("messages", *rates.message(conversation_id, request.ctx.address))
            reply = await _handle(request, conversation_id, frame)
        except Throttled as exc:
            reply = _throttled(exc, frame, ref)
        except ClientIdReused as exc:
            reply = _error(exc, "conflict", frame, ref)
        except (FrameError, InvalidMessage) as exc:
            reply = _error(exc, "invalid", frame, ref)
        except TurnIncomplete as exc:  # stored, not answered: say so, so it is not sent twice
            log.warning("widget conversation %s: %s", conversation_id, exc)
            reply = {**_error(Exception("your message was saved, but the reply could not be made right now; please ask again in a moment"),
                              "server", frame, ref), "saved": True, "message_id": exc.message.id}
        except Exception as exc:  # noqa: BLE001 - one bad turn must not cost the customer the connection
            if database_unavailable(exc):  # NOT stored: the widget sends it again after retry_after
                reply = {**_error(Exception("we are busy: your message was not saved yet; it is sent again in a few seconds"),
                                  "rate_limited", frame, ref), "retry_after": 5, "saved": False}
            else:
                log.exception("widget conversation %s: frame failed", conversation_id)
                reply = _error(Exception("something went wrong on our side; please try again"), "server", frame, ref)
        if reply is None:
            continue
        try:
            await _send(ws, {**reply, "ref": ref})
        except (ConnectionClosed, WebsocketClosed):
            pass  # gone: the history has it when the widget comes back


_turns_in_flight: set[asyncio.Task[Any]] = set()


def _keep_running(work: Awaitable[T]) -> asyncio.Future[T]:
    """Not a child of the handler: Sanic cancels that when the connection drops."""
    task = asyncio.ensure_future(work)
    _turns_in_flight.add(task)
    task.add_done_callback(_turns_in_flight.discard)
    return task


def parse_frame(raw: Data) -> dict[str, Any]:
    """A client frame as a dict with a known `type`, or FrameError saying what is wrong."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raise FrameError("binary frames are not accepted; send JSON text")
    if len(raw.encode("utf-8", errors="replace")) > MAX_FRAME_BYTES:
        raise FrameError(f"frame too large (limit {MAX_FRAME_BYTES} bytes)")
    try:
        frame = parse_json(raw)
    except json.JSONDecodeError as exc:
        raise FrameError(f"frame is not valid JSON: {exc.msg}") from None
    except BadJson as exc:
        raise FrameError(f"frame refused: {exc}") from None
    if not isinstance(frame, dict):
        raise FrameError("frame must be a JSON object")
    if frame.get("type") not in ("message", "button", "typing", "feedback", "ping"):
        raise FrameError("frame 'type' must be one of message, button, typing, feedback, ping")
    ref = frame.get("ref")
    if ref is not None and not (isinstance(ref, (str, int)) and len(str(ref)) <= 64):
        raise FrameError("'ref' must be a short string or number")
    client_id = frame.get("client_id")
    if client_id is not None and not (isinstance(client_id, str) and CLIENT_ID.fullmatch(client_id)):
        raise FrameError("'client_id' must be 1-64 characters of letters, digits and _ . : -")
    return frame


async def _handle(request: Request, conversation_id: str, frame: dict[str, Any]) -> dict[str, Any] | None:
    """Route one valid frame; returns the acknowledgement frame to send back, if any."""
    router = _router(request)
    kind = frame["type"]
    if kind == "message":
        turn = await router.customer_turn(conversation_id, frame.get("text"), client_id=frame.get("client_id"))
        return await _ack(router, conversation_id, turn)
    if kind == "button":
        title, payload = frame.get("title"), frame.get("payload")
        if not isinstance(payload, str) or not payload.strip():
            raise InvalidMessage("a button frame needs a non-empty string 'payload'")
        if not isinstance(title, str) or not title.strip():
            title = payload
        turn = await router.customer_turn(conversation_id, title, payload, client_id=frame.get("client_id"))
        return await _ack(router, conversation_id, turn)
    if kind == "typing":
        if not isinstance(frame.get("typing"), bool):
            raise InvalidMessage("'typing' must be true or false")
        await router.customer_typing(conversation_id, frame["typing"])
        return None
    if kind == "feedback":
        message_id, helpful = frame.get("message_id"), frame.get("helpful")
        if not isinstance(message_id, int) or isinstance(message_id, bool) or not 0 < message_id < 2**63 or not isinstance(helpful, bool):
            raise FrameError("feedback needs an integer 'message_id' and a boolean 'helpful'")
        await router.feedback(conversation_id, message_id, helpful)
        return {"type": "feedback_recorded", "message_id": message_id, "helpful": helpful}
    return {"type": "pong"}


async def _ack(router: ChannelPort, conversation_id: str, turn: Turn) -> dict[str, Any]:
    """The turn is done: its replies (also published live) and who has the floor now. A resent
    message still being answered (another connection or instance has it) is only "received"."""
    client_id = turn.message.data.get("client_id")
    if turn.replayed and turn.mode is None:
        return {"type": "received", "client_id": client_id, "message": turn.message.to_dict()}
    conversation = await router.conversation(conversation_id)
    return {"type": "ack", "mode": conversation.mode, "messages": [m.to_dict() for m in turn.replies],
            "message": turn.message.to_dict(), "client_id": client_id, "replayed": turn.replayed}
