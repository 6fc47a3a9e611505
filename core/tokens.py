"""Signed conversation tokens: a customer proves which conversation is theirs.

The token is `<conversation id>.<HMAC-SHA256>`; ids alone are never accepted, so a guessed or
forged id gets a 401/403, not someone else's chat.
"""
from __future__ import annotations

import hashlib
import hmac


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
