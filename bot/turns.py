"""What a customer turn is: the input a channel may hand the router, and what comes back.

The channels (bot/channels/) and the router share these: the router's reserved payloads and
buttons, the checks every customer text and client id pass, the `Turn` it returns, and the
truthful error for a message that was stored although its answer failed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from conversations.store import Conversation, Message
from core import texts
from core.http import ApiError, database_unavailable, has_surrogates, unavailable

REQUEST_HUMAN = "/request_human"
LEAVE_QUEUE = "/leave_queue"
LEAVE_MESSAGE = "/ticket"
BACK_TO_BOT = {"title": "Back to the assistant", "payload": LEAVE_QUEUE}
LEAVE_MESSAGE_BUTTON = {"title": "Leave a message", "payload": LEAVE_MESSAGE}
TALK_TO_PERSON = {"title": "Talk to a person", "payload": REQUEST_HUMAN}
def language_of(conversation: Conversation) -> str:
    """The customer's language: that of their latest message (or the widget's / Telegram's)."""
    return str(conversation.profile.get("lang") or "en")


def localised_buttons(buttons: list[dict[str, str]], lang: str) -> list[dict[str, str]]:
    """The router's buttons with their titles in the customer's language (payloads unchanged)."""
    if lang == "en":
        return buttons
    keys = {LEAVE_QUEUE: "button_back_to_bot", LEAVE_MESSAGE: "button_leave_message", REQUEST_HUMAN: "button_talk_to_person"}
    return [{**b, "title": texts.notice(keys[b["payload"]], lang)} if b.get("payload") in keys else b for b in buttons]


class InvalidMessage(ValueError):
    """A customer or agent message that cannot be accepted; the text says why."""


class ClientIdReused(InvalidMessage):
    """The client id of an earlier, different message: a client bug, never a retry."""


CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def clean_client_id(value: Any) -> str | None:
    """A customer message's own id (widget, REST Idempotency-Key): short and printable, or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not CLIENT_ID.fullmatch(value):
        raise InvalidMessage("'client_id' must be 1-64 characters of letters, digits and _ . : -")
    return value


@dataclass
class Turn:
    """One customer message and what it produced.

    `replayed`: the message was already stored under its client id, so nothing new was stored
    or answered; `replies` and `mode` are then the original turn's (empty and None while
    that turn is still being answered, e.g. on another instance).
    `handled_in`: who had the floor when the message was handled (bot | waiting | human): a
    message to a person gets no bot reply, even if the bot has the floor again by the time the
    answer is sent (an agent handed back meanwhile). Stored with the message, so a replay has it too.
    """

    message: Message
    replies: list[Message]
    mode: str | None
    replayed: bool = False
    handled_in: str | None = None


class TurnIncomplete(Exception):
    """The customer's message IS stored, but the turn failed after that (database busy, a bug).

    Channels must tell the customer the truth: kept, so do not send it again.
    """

    def __init__(self, message: Message, cause: BaseException) -> None:
        super().__init__(f"message {message.id} stored; the turn failed: {cause!r}")
        self.message = message
        self.cause = cause


def turn_incomplete_error(exc: TurnIncomplete) -> ApiError:
    """The HTTP answer for a stored message whose turn failed: 503 + Retry-After if the database
    was busy, else 500; both say that the message was kept and carry its id."""
    text = ("your message was saved (no need to send it again), but the reply could not be made "
            "right now; ask again or check for replies in a few seconds")
    if database_unavailable(exc.cause):
        return unavailable(text, saved=True, message_id=exc.message.id)
    return ApiError(500, text, saved=True, message_id=exc.message.id)


def clean_text(text: Any, limit: int) -> str:
    """Accept printable text only: not empty, not binary, not longer than `limit` characters."""
    if not isinstance(text, str):
        raise InvalidMessage("'text' must be a string")
    if "\x00" in text or any(ord(c) < 32 and c not in "\n\r\t" for c in text):
        raise InvalidMessage("message contains binary data")
    if has_surrogates(text):
        raise InvalidMessage("message contains invalid Unicode (a lone surrogate)")
    stripped = text.strip()
    if not stripped:
        raise InvalidMessage("message is empty")
    if len(stripped) > limit:
        raise InvalidMessage(f"message is too long ({len(stripped)} characters; the limit is {limit})")
    return stripped
