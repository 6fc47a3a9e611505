"""Small HTTP helpers every blueprint shares: strict JSON bodies and uniform JSON errors."""
from __future__ import annotations

import json
from typing import Any

from sanic import Request
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse
from sanic.response import json as json_response


class ApiError(SanicException):
    """Raised anywhere in a handler; rendered as {"error": message} with the given status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, status_code=status)
        self.message = message
        self.headers = headers or {}  # e.g. Retry-After on a 429


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> HTTPResponse:
    return json_response({"error": message, "status": status}, status=status, headers=headers)


def read_json(request: Request, max_bytes: int = 256 * 1024) -> dict[str, Any]:
    """The body as a JSON object, or a 4xx ApiError saying exactly what is wrong with it."""
    body = request.body or b""
    if len(body) > max_bytes:
        raise ApiError(413, f"request body too large ({len(body)} bytes; limit {max_bytes})")
    if not body.strip():
        raise ApiError(400, "request body is empty; expected a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not valid UTF-8") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object")
    return data


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def install_error_handler(app: Any) -> None:
    """Every error, including Sanic's own 404/405 and crashes, becomes a JSON body."""

    @app.exception(Exception)
    async def _handle(request: Request, exc: Exception) -> HTTPResponse:
        if isinstance(exc, ApiError):
            return error_response(exc.status_code, exc.message, exc.headers)
        if isinstance(exc, SanicException):
            return error_response(getattr(exc, "status_code", 500) or 500, str(exc) or exc.__class__.__name__)
        app.ctx.log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error; nothing you sent was lost, please retry")
