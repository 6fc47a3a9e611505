"""Every route of the real app x every role, against an expected rule table (tests/hostile.py).

The route list comes from the Sanic app itself: a new route without a rule in RULES fails here,
so nobody adds an endpoint without deciding who may call it.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatusCode

from tests.conftest import Stack
from tests.hostile import RULES, ROLES, STAFF, WEBSOCKETS, Credentials, Route, app_routes, real_path

BODY = b'{"text": "hello", "title": "t", "note": "n", "status": "away"}'


def test_every_route_has_a_rule(hostile: tuple[Stack, Credentials]) -> None:
    stack, _ = hostile
    served = {r.key for r in app_routes(stack.settings)}
    assert served - set(RULES) == set(), "routes without an authorization rule in tests/hostile.py RULES"
    assert set(RULES) - served == set(), "rules for routes the app no longer has"
    assert {r.key for r in app_routes(stack.settings) if r.websocket} == WEBSOCKETS


def _request(http: httpx.Client, creds: Credentials, route: Route, role: str) -> httpx.Response:
    headers = creds.fresh_headers(http, role) if route.key == "POST /api/agent/logout" else creds.headers(role)
    if route.method in ("POST", "PUT"):
        headers = {**headers, "Content-Type": "application/json"}
    body = BODY if route.method in ("POST", "PUT") else None
    return http.request(route.method, real_path(route, creds), headers=headers, content=body)


def _expect(rule: Any, role: str, status: int, key: str) -> None:
    where = f"{key} as {role}: HTTP {status}"
    assert status < 500, where
    if rule == "public":  # who gets in is decided by the body (credentials, site key), not a role
        return
    if rule == "telegram":  # no role is the webhook's secret
        assert status in (401, 404), where
        return
    if rule == "customer":
        assert (status not in (401, 403)) if role == "customer" else status in (401, 403), where
        return
    allowed = role in rule
    if allowed:
        assert status not in (401, 403), where
    elif role in STAFF:
        assert status == 403, where
    else:
        assert status == 401, where


def test_http_routes_by_role(hostile: tuple[Stack, Credentials]) -> None:
    stack, creds = hostile
    checked = 0
    for route in app_routes(stack.settings):
        if route.websocket:
            continue
        for role in ROLES:
            _expect(RULES[route.key], role, _request(stack.http, creds, route, role).status_code, route.key)
            checked += 1
    assert checked == (len(RULES) - len(WEBSOCKETS)) * len(ROLES)


async def _console(url: str, headers: dict[str, str]) -> tuple[str, int | None]:
    async with websockets.connect(url, extra_headers=headers) as ws:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if frame["type"] == "hello":
            return "hello", None
        await asyncio.wait_for(ws.wait_closed(), 30)
        return frame["type"], ws.close_code


@pytest.mark.parametrize("role, expected", [("anonymous", ("error", 4401)), ("customer", ("error", 4401)),
                                            ("agent", ("hello", None)), ("supervisor", ("hello", None)), ("editor", ("error", 4403))])
def test_console_socket_by_role(hostile: tuple[Stack, Credentials], role: str, expected: tuple[str, int | None]) -> None:
    stack, creds = hostile
    url = stack.settings.web_url.replace("http://", "ws://") + "/api/agent/ws"
    assert asyncio.run(_console(url, creds.headers(role))) == expected


@pytest.mark.parametrize("role", ROLES)
def test_widget_socket_by_role(hostile: tuple[Stack, Credentials], role: str) -> None:
    """Only a widget conversation's own token opens its socket; staff and REST tokens do not."""
    stack, creds = hostile
    token = creds.widget_token if role == "customer" else (creds.staff_tokens[role] if role in STAFF else "")
    url = stack.settings.web_url.replace("http://", "ws://") + f"/widget/ws?token={token}"

    async def connect() -> str:
        try:
            async with websockets.connect(url) as ws:
                return json.loads(await asyncio.wait_for(ws.recv(), 30))["type"]
        except InvalidStatusCode as exc:
            return f"HTTP {exc.status_code}"

    assert asyncio.run(connect()) == ("history" if role == "customer" else "HTTP 401")
    rest = stack.settings.web_url.replace("http://", "ws://") + f"/widget/ws?token={creds.customer_token}"

    async def rest_token() -> str:
        try:
            async with websockets.connect(rest):
                return "open"
        except InvalidStatusCode as exc:
            return f"HTTP {exc.status_code}"

    assert asyncio.run(rest_token()) == "HTTP 401"  # a REST conversation's token is not a widget's
