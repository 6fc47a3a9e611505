"""Rasa's server as Tandem runs it: `python -m server.rasa_server <rasa run options>`.

Rasa's HTTP API (trackers, pause/resume, trigger_intent, model) and its REST channel both demand
Tandem's Rasa token (`Settings.rasa_token()`, derived from Tandem's secret). The token is added
to Rasa's arguments here, inside the process, so it never appears in `ps` output; the REST
channel is replaced by `TokenRestInput` (var/credentials.yml), because Rasa's own leaves the
webhook open to anyone who can reach the port.
"""
from __future__ import annotations

import hmac
import sys
from typing import Any, Awaitable, Callable

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from core.settings import load_settings


def _provided_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.args.get("token", "")


class TokenRestInput(RestInput):
    """Rasa's REST channel (same URL, /webhooks/rest/webhook) that refuses calls without the token."""

    def __init__(self, token: str) -> None:
        self._token = token

    @classmethod
    def name(cls) -> str:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> "TokenRestInput":
        return cls(load_settings().rasa_token())

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(on_new_message)

        @webhook.middleware("request")
        async def require_token(request: Request) -> HTTPResponse | None:
            if not hmac.compare_digest(_provided_token(request).encode(), self._token.encode()):
                return json({"error": "NotAuthenticated", "message": "Tandem's Rasa token required"}, status=401)
            return None

        return webhook


def main(argv: list[str]) -> None:
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", "run", *argv, "--auth-token", load_settings().rasa_token()]
    rasa_main()


if __name__ == "__main__":
    main(sys.argv[1:])
