"""Rasa's server as Tandem runs it: `python -m server.rasa_server <rasa run options>`.

Rasa's HTTP API (trackers, pause/resume, trigger_intent, model) and its REST channel both demand
Tandem's Rasa token (`Settings.rasa_token()`, derived from Tandem's secret). The token is added
to Rasa's arguments here, inside the process, so it never appears in `ps` output; the REST
channel is replaced by `TokenRestInput` (var/credentials.yml), because Rasa's own leaves the
webhook open to anyone who can reach the port.

Each JSON schema Rasa validates with is checked against its metaschema once per process, not on
every call (`check_schemas_once`): jsonschema.validate() re-checks the schema each time, and for
the action server's response format that was 43 ms of CPU per custom action call, most of Rasa's
cost per message (docs/performance.md section 5).
"""
from __future__ import annotations

import functools
import hmac
import sys
from json import dumps as json_dumps, loads as json_loads
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


def check_schemas_once() -> None:
    """Replaces jsonschema.validate (looked up at call time by Rasa's RemoteAction, HTTP API and
    NLG callback) with one that builds a validator once per distinct schema: the same errors
    (best_match of the same validator class), without re-checking a constant schema per call."""
    import jsonschema
    from jsonschema import exceptions, validators

    original = jsonschema.validate
    if getattr(original, "tandem_cached", False):
        return

    @functools.lru_cache(maxsize=64)
    def validator_for(canonical: str) -> Any:
        schema = json_loads(canonical)
        cls = validators.validator_for(schema)
        cls.check_schema(schema)
        return cls(schema)

    def validate(instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
        if cls is not None or args or kwargs:
            return original(instance, schema, cls, *args, **kwargs)
        try:
            canonical = json_dumps(schema, sort_keys=True)
        except (TypeError, ValueError):
            return original(instance, schema)
        error = exceptions.best_match(validator_for(canonical).iter_errors(instance))
        if error is not None:
            raise error

    validate.tandem_cached = True  # type: ignore[attr-defined]
    jsonschema.validate = validate


def main(argv: list[str]) -> None:
    from rasa.__main__ import main as rasa_main

    check_schemas_once()
    sys.argv = ["rasa", "run", *argv, "--auth-token", load_settings().rasa_token()]
    rasa_main()


if __name__ == "__main__":
    main(sys.argv[1:])
