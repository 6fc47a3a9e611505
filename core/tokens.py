"""Signed conversation tokens: a customer proves which conversation is theirs.

The token is `<conversation id>.<HMAC-SHA256>`; ids alone are never accepted, so a guessed or
forged id gets a 401/403, not someone else's chat.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Any

from core.http import ApiError, bearer_token


def sign(secret: bytes, conversation_id: str) -> str:
    mac = hmac.new(secret, conversation_id.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{conversation_id}.{mac}"


def verify(secret: bytes, token: str) -> str | None:
    """The conversation id if the token is genuine, else None."""
    if not isinstance(token, str) or not token.isascii() or token.count(".") != 1:
        return None  # compare_digest refuses non-ASCII str (a TypeError, once a 500)
    conversation_id, _ = token.split(".")
    if not conversation_id or len(conversation_id) > 64:
        return None
    return conversation_id if hmac.compare_digest(sign(secret, conversation_id).encode(), token.encode()) else None


def require(request: Any, secret: bytes, conversation_id: str) -> None:
    """The request's bearer token must be this conversation's: 401 without or forged, 403 another's."""
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, "missing conversation token (Authorization: Bearer <token>)")
    owner = verify(secret, token)
    if owner is None:
        raise ApiError(401, "invalid conversation token")
    if owner != conversation_id:
        raise ApiError(403, "this token belongs to another conversation")
