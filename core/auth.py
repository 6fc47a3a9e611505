"""Role checks for staff endpoints (agents, supervisors, editors, managers), shared by every room's API.

The accounts service itself lives in handoff/accounts.py and is reached through
app.ctx.accounts, so knowledge/ can protect its editor API without importing handoff/.
"""
from __future__ import annotations

import functools
from typing import Any, Awaitable, Callable

from sanic import Request
from sanic.response import HTTPResponse

from core.http import ApiError, bearer_token

Handler = Callable[..., Awaitable[HTTPResponse]]


def staff(*roles: str) -> Callable[[Handler], Handler]:
    """Require a live session whose role is one of `roles`; the account is passed as `me`.

    The token comes from `Authorization: Bearer <token>`, or for websockets and pages from
    the `token` query parameter.
    """

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
            token = bearer_token(request) or request.args.get("token")
            if not token:
                raise ApiError(401, "missing staff token (Authorization: Bearer <token>)")
            try:
                me = await request.app.ctx.accounts.authenticate(token)
            except Exception as exc:  # AuthError: unknown or expired session
                raise ApiError(401, str(exc)) from None
            if me.role not in roles:
                raise ApiError(403, f"a {me.role} account cannot do this")
            return await handler(request, *args, me=me, **kwargs)

        return wrapper

    return decorate
