"""Throttling (core/ratelimit.py) on every store: in memory, SQL (SQLite and PostgreSQL) and a
real Redis; then through the web process: 429 + Retry-After on login, conversation creation
and messages (REST and widget), with no difference between known and unknown accounts."""
from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets

from server.cli import prepare
from server.processes import Supervisor
from core.db import async_engine
from server.schema import create_schema
from core.ratelimit import Limit, MemoryStore, RateLimiter, RedisStore, SqlStore, Store
from core.settings import load_settings
from tests.conftest import Stack, postgres_url, redis_url, stack_settings


class Clock:
    """A clock the test moves by hand, so "after the window" needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture(params=["memory", "sqlite", "postgresql", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    kind = request.param
    if kind == "memory":
        yield MemoryStore()
        return
    if kind == "redis":
        import redis.asyncio as redis

        client = redis.from_url(redis_url())
        async for key in client.scan_iter("tandem:ratelimit:*"):  # only our keys: others share this db
            await client.delete(key)
        await client.close()
        redis_store = RedisStore(redis_url())
        yield redis_store
        await redis_store.close()
        return
    database = postgres_url("tandem_ratelimit") if kind == "postgresql" else ""
    settings = load_settings(var_dir=tmp_path, database_url=database)
    await asyncio.to_thread(create_schema, settings)
    engine = async_engine(settings)
    yield SqlStore(engine)
    await engine.dispose()


def limiter(store: Store, clock: Clock, **limits: Any) -> RateLimiter:
    settings = load_settings(
        rate_login_per_account=3, rate_login_per_address=5, rate_login_window_s=60,
        rate_messages_per_conversation=4, rate_messages_per_address=6, rate_messages_window_s=20, **limits,
    )
    return RateLimiter(settings, store, clock)


@pytest.mark.asyncio
async def test_burst_then_refused_with_the_exact_wait_then_reset(store: Store) -> None:
    clock = Clock()
    rates = limiter(store, clock)
    checks = rates.message("conversation-a", "10.0.0.1")
    assert [await rates.hit(*checks) for _ in range(4)] == [0.0] * 4
    wait = await rates.hit(*checks)
    assert wait == pytest.approx(5.0, abs=0.01)  # 4 per 20 s: one back every 5 s
    assert await rates.hit(*rates.message("conversation-b", "10.0.0.2")) == 0.0, "another customer is unaffected"
    clock.now += wait
    assert await rates.hit(*checks) == 0.0  # exactly one came back
    assert await rates.hit(*checks) > 0
    clock.now += 20.0  # a whole window: the whole burst is back
    assert [await rates.hit(*checks) for _ in range(4)] == [0.0] * 4


@pytest.mark.asyncio
async def test_a_refused_check_consumes_nothing_of_the_others(store: Store) -> None:
    clock = Clock()
    rates = limiter(store, clock)
    for n in range(6):  # six conversations behind one address use up the address
        assert await rates.hit(*rates.message(f"c{n}", "10.0.0.9")) == 0.0
    assert await rates.hit(*rates.message("c-new", "10.0.0.9")) > 0
    # c-new's own bucket was given back: from another address it still has all four
    assert [await rates.hit(*rates.message("c-new", "10.0.0.10")) for _ in range(4)] == [0.0] * 4


@pytest.mark.asyncio
async def test_refund_gives_one_back(store: Store) -> None:
    clock = Clock()
    rates = limiter(store, clock)
    checks = rates.login("Alice", "10.0.0.3")
    for _ in range(3):
        assert await rates.hit(*checks) == 0.0
    assert await rates.hit(*checks) > 0
    await rates.refund(*checks)
    assert await rates.hit(*checks) == 0.0


@pytest.mark.asyncio
async def test_parallel_hits_never_exceed_the_limit(store: Store) -> None:
    """The store's check-and-consume is atomic: 20 at once, exactly 4 get through."""
    clock = Clock()
    rates = limiter(store, clock)
    results = await asyncio.gather(*(rates.hit(*rates.message("busy", "10.0.0.4")) for _ in range(20)))
    assert sum(1 for wait in results if wait == 0.0) == 4


@pytest.mark.asyncio
async def test_disabled_limits_let_everything_through() -> None:
    rates = limiter(MemoryStore(), Clock(), rate_limits=False)
    assert all([await rates.hit(*rates.message("c", "a")) == 0.0 for _ in range(50)])


def test_keys_are_bounded_whatever_the_subject() -> None:
    limit = Limit("login-account", 3, 60)
    assert len(limit.key("x" * 10_000)) == len(limit.key("\udcff")) == len(limit.key(""))


# -- through the web process ----------------------------------------------------------------------
@pytest.fixture(scope="module", params=["sql", "redis"])
def tight(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, stack: Stack) -> Iterator[Stack]:
    """A web process with small limits on its own database, sharing the suite's Rasa, behind one
    trusted proxy (so each test is its own client address): limits in the database (the
    embedded default, SQLite) or in Redis."""
    extra: dict[str, Any] = {"redis_url": redis_url()} if request.param == "redis" else {}
    settings = stack_settings(
        tmp_path_factory.mktemp(f"tandem-ratelimit-{request.param}"), proxies_count=1,
        rate_login_per_account=3, rate_login_per_address=6, rate_login_window_s=120.0,
        rate_conversations_per_address=3, rate_conversations_window_s=60.0,
        rate_messages_per_conversation=2, rate_messages_per_address=8, rate_messages_window_s=30.0,
        **extra,
    ).replace(rasa_port=stack.settings.rasa_port, action_port=stack.settings.action_port)
    if request.param == "redis":
        import redis

        client = redis.from_url(settings.redis_url)
        for key in client.scan_iter("tandem:ratelimit:*"):
            client.delete(key)
    prepare(settings, train=False)
    supervisor = Supervisor(settings)
    supervisor.start(only=("web",))
    client = httpx.Client(base_url=settings.web_url, timeout=60)
    try:
        yield Stack(settings, supervisor, client)
    finally:
        client.close()
        supervisor.stop()


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def _retry_after(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    value = int(response.headers["Retry-After"])
    assert value >= 1
    return value


def _login(stack: Stack, username: str, password: str, address: str, door: str = "agent") -> httpx.Response:
    return stack.http.post(f"/api/{door}/login", json={"username": username, "password": password}, headers=_from(address))


def test_logins_throttled_alike_for_known_and_unknown_accounts(tight: Stack) -> None:
    here = "10.1.0.1"
    known = [_login(tight, "agent", "wrong", here) for _ in range(4)]
    unknown = [_login(tight, "nobody-at-all", "wrong", here) for _ in range(4)]
    assert [r.status_code for r in known] == [401, 401, 401, 429]
    assert [r.status_code for r in unknown] == [401, 401, 401, 429]
    def shape(response: httpx.Response) -> str:  # the seconds to wait may differ by a tick
        return re.sub(r"\d+", "N", response.text)

    assert shape(known[-1]) == shape(unknown[-1])  # the same words: nothing tells them apart
    assert sorted(known[-1].headers.keys()) == sorted(unknown[-1].headers.keys())
    _retry_after(known[-1])
    # the right password does not get in while the account is throttled (else guessing goes on),
    # from anywhere; and the editor's door shares the count
    assert _login(tight, "agent", "agent", "10.1.0.2").status_code == 429
    assert _login(tight, "agent", "x", "10.1.0.2", door="editor").status_code == 429
    # this address has spent its 6 attempts: another account from here waits as well ...
    _retry_after(_login(tight, "supervisor", "wrong", here))
    # ... while another customer of the service, elsewhere, is unaffected
    assert _login(tight, "supervisor", "supervisor", "10.1.0.3").status_code == 200


def test_right_passwords_never_lock_anyone_out(tight: Stack) -> None:
    for _ in range(8):  # more than the account's 3: each right password gives its hit back
        response = _login(tight, "editor", "editor", "10.1.0.4")
        assert response.status_code == 200, response.text


def test_conversation_creation_throttled_per_address(tight: Stack) -> None:
    here = _from("10.2.0.1")
    made = [tight.http.post("/api/conversations", headers=here) for _ in range(3)]
    assert [r.status_code for r in made] == [201, 201, 201]
    _retry_after(tight.http.post("/api/conversations", headers=here))
    refused = tight.http.post("/widget/session", json={"site_key": "demo"}, headers=here)  # the widget's door counts too
    _retry_after(refused)
    assert refused.headers["Access-Control-Allow-Origin"] == "*"  # a host page can read why
    assert tight.http.post("/api/conversations", headers=_from("10.2.0.2")).status_code == 201  # someone else can

    # resuming an existing widget conversation is not creating one
    elsewhere = _from("10.2.0.3")
    token = tight.http.post("/widget/session", json={"site_key": "demo"}, headers=elsewhere).json()["token"]
    for _ in range(4):
        resumed = tight.http.post("/widget/session", json={"site_key": "demo", "token": token}, headers=elsewhere)
        assert resumed.status_code == 200, resumed.text


def _conversation(stack: Stack, address: str) -> dict[str, Any]:
    response = stack.http.post("/api/conversations", headers=_from(address))
    assert response.status_code == 201, response.text
    return response.json()


def test_messages_throttled_per_conversation_then_open_again(tight: Stack) -> None:
    here = "10.3.0.1"
    flooder, neighbour = _conversation(tight, here), _conversation(tight, "10.3.0.2")
    path = f"/api/conversations/{flooder['conversation_id']}/messages"
    headers = {"Authorization": f"Bearer {flooder['token']}", **_from(here)}
    # even refused input counts (it costs work): two empty messages, then the limit
    sent = [tight.http.post(path, json={"text": " "}, headers=headers) for _ in range(3)]
    assert [r.status_code for r in sent] == [400, 400, 429]
    wait = _retry_after(sent[-1])
    other = tight.http.post(
        f"/api/conversations/{neighbour['conversation_id']}/messages", json={"text": "hello"},
        headers={"Authorization": f"Bearer {neighbour['token']}", **_from("10.3.0.2")},
    )
    assert other.status_code == 200 and other.json()["replies"], "another customer is served meanwhile"
    import time

    time.sleep(wait + 0.2)  # Retry-After was true to its word
    again = tight.http.post(path, json={"text": "hello again"}, headers=headers)
    assert again.status_code == 200, again.text


def test_messages_throttled_per_address_across_conversations(tight: Stack) -> None:
    here = "10.4.0.1"
    conversations = [_conversation(tight, here) for _ in range(3)]
    statuses = []
    for conversation in conversations:  # 2 each would be 6, but only after 8 from this address ...
        for _ in range(2):
            statuses.append(tight.http.post(
                f"/api/conversations/{conversation['conversation_id']}/messages", json={"text": ""},
                headers={"Authorization": f"Bearer {conversation['token']}", **_from(here)},
            ).status_code)
    assert statuses == [400] * 6
    tight.http.post("/api/conversations", headers=_from("10.4.0.2"))  # unrelated traffic
    fourth = _conversation(tight, "10.4.0.3")
    codes = [tight.http.post(
        f"/api/conversations/{fourth['conversation_id']}/messages", json={"text": ""},
        headers={"Authorization": f"Bearer {fourth['token']}", **_from(here)},
    ).status_code for _ in range(2)]
    assert codes == [400, 400]
    last = tight.http.post(
        f"/api/conversations/{conversations[0]['conversation_id']}/messages", json={"text": ""},
        headers={"Authorization": f"Bearer {conversations[0]['token']}", **_from(here)},
    )
    _retry_after(last)


def test_widget_frames_throttled_with_a_retry_after(tight: Stack) -> None:
    here = _from("10.5.0.1")
    session = tight.http.post("/widget/session", json={"site_key": "demo"}, headers=here).json()
    url = tight.settings.web_url.replace("http://", "ws://") + f"/widget/ws?token={session['token']}"

    async def scenario() -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        async with websockets.connect(url, extra_headers=here) as ws:
            json.loads(await ws.recv())  # history
            for n in range(3):
                await ws.send(json.dumps({"type": "message", "text": f"hi {n}", "ref": f"r{n}", "client_id": f"c{n}"}))
            while len([f for f in frames if f["type"] in ("ack", "error")]) < 3:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
        return frames

    frames = asyncio.run(scenario())
    refused = [f for f in frames if f["type"] == "error"]
    assert len(refused) == 1 and refused[0]["code"] == "rate_limited" and refused[0]["client_id"] == "c2"
    assert math.isfinite(refused[0]["retry_after"]) and refused[0]["retry_after"] >= 1
    assert sorted(f["client_id"] for f in frames if f["type"] == "ack") == ["c0", "c1"]
