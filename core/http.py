"""Small HTTP helpers every blueprint shares: strict JSON, bounded numbers, uniform JSON errors.

Hostile input must end as a clear 4xx, never a 500: every body and websocket frame goes through
`parse_json` (depth, finite numbers, 64-bit integers, no lone surrogates), every numeric query
argument through `int_arg`, every path id through the bound check in `install_error_handler`.
"""
from __future__ import annotations

import json
import math
from typing import Any

import sqlalchemy as sa
from sanic import Request
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse
from sanic.response import json as json_response

MAX_INT = 2**31 - 1  # ids and cursors are INTEGER columns: 32 bits on PostgreSQL, so larger cannot exist
MAX_JSON_INT = 2**63 - 1  # any JSON integer beyond 64 bits is refused outright
MAX_DEPTH = 32  # no Tandem body nests deeper; deeper is an attack (RecursionError at ~1000)
RETRY_AFTER_S = 5


class ApiError(SanicException):
    """Raised anywhere in a handler; rendered as {"error": message, **extra} with the given status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message, status_code=status)
        self.message = message
        self.extra_headers = headers or {}
        self.extra = extra


class BadJson(ValueError):
    """A JSON text that parses but cannot be accepted (too deep, huge numbers, surrogates)."""


def error_response(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> HTTPResponse:
    return json_response({"error": message, "status": status, **extra}, status=status, headers=headers)


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 19:
        raise BadJson("integers must fit in 64 bits")
    value = int(text)
    if not -MAX_JSON_INT - 1 <= value <= MAX_JSON_INT:
        raise BadJson("integers must fit in 64 bits")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJson("numbers must be finite")
    return value


def _no_constants(name: str) -> Any:
    raise BadJson(f"{name} is not a number JSON allows")


def has_surrogates(text: str) -> bool:
    """Lone surrogates (JSON "\\ud800", or undecodable header bytes) cannot be stored or encoded."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check(value: Any) -> None:
    """Depth and strings, without recursion (so the check itself cannot blow the stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise BadJson(f"nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    if has_surrogates(key):
                        raise BadJson("text contains invalid Unicode (a lone surrogate)")
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str) and has_surrogates(item):
            raise BadJson("text contains invalid Unicode (a lone surrogate)")


def parse_json(text: str) -> Any:
    """json.loads that refuses what Tandem cannot store: raises BadJson/JSONDecodeError (ValueError)."""
    try:
        data = json.loads(text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constants)
    except RecursionError:
        raise BadJson(f"nested deeper than {MAX_DEPTH} levels") from None
    _check(data)
    return data


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
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc.msg}") from None
    except BadJson as exc:
        raise ApiError(400, f"request body refused: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object")
    return data


def int_arg(request: Request, name: str, default: int, minimum: int = 0) -> int:
    """An integer query argument (a cursor, an id) within what the database can hold."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = _bounded_int(raw.strip())
    except (ValueError, BadJson):
        raise ApiError(400, f"'{name}' must be a whole number from {minimum} to {MAX_INT}") from None
    if not minimum <= value <= MAX_INT:
        raise ApiError(400, f"'{name}' must be a whole number from {minimum} to {MAX_INT}")
    return value


def id_value(value: Any, name: str) -> int:
    """An integer id from a JSON body: a real int (not a bool) in 0..2^63-1."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT:
        raise ApiError(400, f"'{name}' must be a whole number from 0 to {MAX_INT}")
    return value


def bearer_token(request: Request) -> str | None:
    """The `Authorization: Bearer` token; tokens are printable ASCII, anything else is a 401."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    token = header[7:].strip()
    if not token:
        return None
    if not token.isascii() or not token.isprintable() or len(token) > 512:
        raise ApiError(401, "malformed bearer token (tokens are short printable ASCII)")
    return token


def database_unavailable(exc: BaseException) -> bool:
    """The database is locked, gone or out of connections: retrying later can succeed."""
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.TimeoutError, ConnectionRefusedError)):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and bool(exc.connection_invalidated)


def unavailable(message: str, **extra: Any) -> ApiError:
    """503 with Retry-After: the client may retry, and the message says what was (not) kept."""
    return ApiError(503, message, headers={"Retry-After": str(RETRY_AFTER_S)}, retry_after=RETRY_AFTER_S, **extra)


def install_error_handler(app: Any) -> None:
    """Every error, including Sanic's own 404/405 and crashes, becomes a JSON body; path ids
    beyond 64 bits are refused before any handler runs."""

    @app.on_request
    async def _bounded_path_ids(request: Request) -> None:
        # Sanic re-runs app request middleware while rendering an error: check only once.
        if getattr(request.ctx, "ids_checked", False):
            return
        request.ctx.ids_checked = True
        for name, value in (request.match_info or {}).items():
            if isinstance(value, int) and not 0 <= value <= MAX_INT:
                raise ApiError(404, f"no such {name.replace('_', ' ')} ({value} is out of range)")

    @app.exception(Exception)
    async def _handle(request: Request, exc: Exception) -> HTTPResponse:
        if isinstance(exc, ApiError):
            return error_response(exc.status_code, exc.message, exc.extra_headers, **exc.extra)
        if isinstance(exc, SanicException):
            return error_response(getattr(exc, "status_code", 500) or 500, str(exc) or exc.__class__.__name__)
        if database_unavailable(exc):
            app.ctx.log.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
            error = unavailable("the database is busy or unreachable; the request may not have completed: check, then retry")
            return error_response(error.status_code, error.message, error.extra_headers, **error.extra)
        app.ctx.log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal error (logged); the request may not have completed: check, then retry")
