"""The REST channel: start a conversation, send a message, read replies since a cursor.

    POST /api/conversations                      -> {conversation_id, token}
    POST /api/conversations/<id>/messages        {text, payload?, client_id?}  (Authorization: Bearer <token>)
    GET  /api/conversations/<id>/messages?after=<cursor>
Replies to a message come back in the POST's response; agent messages arrive later, so a
client polls GET with the last id it saw as the cursor.

A client that may retry a POST gives the message an id (`Idempotency-Key` header or
`client_id` field): a retry stores and answers nothing new and returns the original result
(header `Idempotent-Replayed: true`). Both routes are throttled per address, messages also
per conversation (429 + Retry-After; core/ratelimit.py).
"""
from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from core import tokens
from conversations.store import UnknownConversation
from bot.port import ChannelPort
from bot.turns import ClientIdReused, InvalidMessage, Turn, TurnIncomplete, turn_incomplete_error
from core.http import ApiError, database_unavailable, int_arg, read_json, unavailable
from core.ratelimit import client_address, limiter

bp = Blueprint("rest_channel", url_prefix="/api/conversations")


def _router(request: Request) -> ChannelPort:
    """The router, as a channel sees it (bot/port.py)."""
    port: ChannelPort = request.app.ctx.router
    return port


async def _authorised(request: Request, conversation_id: str) -> str:
    """The conversation id, if the bearer token is genuine and the conversation exists."""
    tokens.require(request, request.app.ctx.settings.secret(), conversation_id)
    try:
        await _router(request).conversation(conversation_id)
    except UnknownConversation:
        raise ApiError(404, f"unknown conversation '{conversation_id}'") from None
    return conversation_id


@bp.post("")
async def start(request: Request) -> HTTPResponse:
    data = read_json(request) if request.body and request.body.strip() else {}
    name = data.get("name", "")
    if not isinstance(name, str) or len(name) > 120:
        raise ApiError(400, "'name' must be a string of at most 120 characters")
    await limiter(request).enforce("new conversations", *limiter(request).conversation(client_address(request)))
    conversation = await _router(request).start_conversation("rest", customer_name=name)
    token = tokens.sign(request.app.ctx.settings.secret(), conversation.id)
    return json({"conversation_id": conversation.id, "token": token}, status=201)


@bp.post("/<conversation_id:str>/messages")
async def send(request: Request, conversation_id: str) -> HTTPResponse:
    await _authorised(request, conversation_id)
    data = read_json(request)
    client_id = _client_id(request, data)
    rates = limiter(request)
    await rates.enforce("messages", *rates.message(conversation_id, client_address(request)))
    router = _router(request)
    try:
        turn = await router.customer_turn(conversation_id, data.get("text"), data.get("payload"), client_id)
    except ClientIdReused as exc:
        raise ApiError(409, str(exc)) from None
    except InvalidMessage as exc:
        raise ApiError(400, str(exc)) from None
    except TurnIncomplete as exc:
        raise turn_incomplete_error(exc) from None
    except Exception as exc:
        if database_unavailable(exc):  # the message's own insert failed: say so, truthfully
            raise unavailable("the database is busy; your message was NOT saved: send it again in a few seconds", saved=False) from None
        raise
    if turn.replayed and turn.mode is None and client_id:  # the original is still being answered
        turn = await router.replayed_turn(conversation_id, client_id, request.app.ctx.settings.rasa_timeout_s + 5) or turn
    return _turn_response(turn, await router.conversation(conversation_id))


def _client_id(request: Request, data: dict) -> str | None:
    header, field = request.headers.get("idempotency-key"), data.get("client_id")
    if header is not None and field is not None and header != field:
        raise ApiError(400, "the Idempotency-Key header and 'client_id' differ; send one of them")
    value = header if header is not None else field
    if value is not None and not (isinstance(value, str) and value):
        raise ApiError(400, "'client_id' must be a non-empty string")
    return value


def _turn_response(turn: Turn, conversation: object) -> HTTPResponse:
    mode = turn.mode or getattr(conversation, "mode")
    body = {"replies": [m.to_dict() for m in turn.replies], "mode": mode, "message": turn.message.to_dict()}
    if turn.handled_in is not None:
        body["handled_in"] = turn.handled_in
    return json(body, headers={"Idempotent-Replayed": "true"} if turn.replayed else None)


@bp.get("/<conversation_id:str>/messages")
async def history(request: Request, conversation_id: str) -> HTTPResponse:
    await _authorised(request, conversation_id)
    after = int_arg(request, "after", 0)
    router = _router(request)
    messages = await router.history(conversation_id, after)
    conversation = await router.conversation(conversation_id)
    cursor = messages[-1].id if messages else after
    return json({"messages": [m.to_dict() for m in messages], "cursor": cursor, "mode": conversation.mode})
