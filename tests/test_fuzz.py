"""Property-based fuzzing (hypothesis): generated bodies, headers, ids, query arguments and
websocket frames to every route of the real app, as every role. The property: no answer is a
5xx, and no websocket frame ends in the generic "something went wrong" or a dropped socket.

Bounded for CI (FUZZ_EXAMPLES per route, derandomized so a failure reproduces); the long,
random run is benchmarks/fuzz_long.py (figures in docs/security.md).
"""
from __future__ import annotations

import asyncio
import json
import os

import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Stack
from tests.hostile import FRAMES, GENERIC_FAILURE, Credentials, Route, app_routes, draw_attempt, send
from core.settings import load_settings

FUZZ_EXAMPLES = int(os.environ.get("TANDEM_FUZZ_EXAMPLES", "12"))
FRAME_EXAMPLES = int(os.environ.get("TANDEM_FUZZ_FRAMES", "60"))
HTTP_ROUTES = [r for r in app_routes(load_settings(secret_key="routes-only")) if not r.websocket]
CI = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("route", HTTP_ROUTES, ids=lambda r: r.key)
def test_no_route_answers_5xx(hostile: tuple[Stack, Credentials], route: Route) -> None:
    stack, creds = hostile

    @CI
    @given(st.data())
    def property_(data: st.DataObject) -> None:
        attempt = draw_attempt(data, route, creds, stack.http)
        response = send(stack.http, attempt)
        assert response.status_code < 500, f"{response.status_code} {response.text[:300]} for {attempt.describe()}"
        if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
            assert response.json().get("error"), attempt.describe()  # every error says what is wrong

    property_()


async def _frames(url: str, headers: dict[str, str], frames: list[str | bytes], first: str | None) -> list[dict]:
    """Send every frame on one connection, then a ping: the socket must still answer."""
    got: list[dict] = []
    async with websockets.connect(url, extra_headers=headers, max_size=None) as ws:
        if first:
            await ws.send(first)
        json.loads(await asyncio.wait_for(ws.recv(), 30))  # hello / history
        for frame in frames:
            await ws.send(frame)
        await ws.send(json.dumps({"type": "ping"}))
        while True:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 60))
            got.append(reply)
            if reply.get("type") == "pong":
                return got


@pytest.mark.parametrize("socket", ["widget", "console"])
def test_websocket_frames_never_break_the_socket(hostile: tuple[Stack, Credentials], socket: str) -> None:
    stack, creds = hostile
    base = stack.settings.web_url.replace("http://", "ws://")
    drawn: list[str | bytes] = []

    @settings(max_examples=FRAME_EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(FRAMES)
    def collect(frame: str | bytes) -> None:
        drawn.append(frame)

    collect()
    if socket == "widget":
        got = asyncio.run(_frames(f"{base}/widget/ws?token={creds.widget_token}", {}, drawn, None))
    else:
        got = asyncio.run(_frames(f"{base}/api/agent/ws", creds.headers("agent"), drawn, None))
    failures = [g for g in got if g.get("type") == "error" and GENERIC_FAILURE in str(g.get("error"))]
    assert failures == [], failures[:3]
    assert all(g.get("status", 400) < 500 for g in got if g.get("type") == "error")
