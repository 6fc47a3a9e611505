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

    The token comes from `Authorization: Bearer <token>` only: never from the query string,
    where server logs, proxies and Referer headers would keep it. The session is handed to the
    handler in `request.ctx.staff_token`, so logout ends exactly the session that asked.
    """

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
            token = bearer_token(request)
            if not token:
                raise ApiError(401, "missing staff token (Authorization: Bearer <token>)")
            try:
                me = await request.app.ctx.accounts.authenticate(token)
            except Exception as exc:  # AuthError: unknown or expired session
                raise ApiError(401, str(exc)) from None
            request.ctx.staff_token = token
            if me.role not in roles:
                raise ApiError(403, f"a {me.role} account cannot do this")
            return await handler(request, *args, me=me, **kwargs)

        return wrapper

    return decorate
