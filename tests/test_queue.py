"""The case queue on both databases Tandem supports: SQLite (default) and PostgreSQL."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from core.db import async_engine

from server.schema import create_schema
from handoff.accounts import Accounts, AuthError
from handoff.queue import CaseConflict, CaseQueue, UnknownCase
from tests.conftest import postgres_url, stack_settings


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple]:
    overrides = {"database_url": postgres_url("tandem_test_queue")} if request.param == "postgresql" else {}
    settings = stack_settings(tmp_path, **overrides)
    await asyncio.to_thread(create_schema, settings)
    engine = async_engine(settings)
    accounts = Accounts(engine, session_hours=8)
    ada = await accounts.create("ada", "pw-ada", "agent", "Ada")
    bob = await accounts.create("bob", "pw-bob", "agent", "Bob")
    try:
        yield settings, engine, CaseQueue(engine), accounts, ada, bob
    finally:
        await engine.dispose()


@pytest.mark.asyncio
async def test_open_list_position_claim_close(db: tuple) -> None:
    settings, engine, queue, accounts, ada, bob = db
    first = await queue.open_case("c1", "rest", "customer_request", "asked for a person")
    second = await queue.open_case("c2", "telegram", "complaint", priority=0)
    urgent = await queue.open_case("c3", "rest", "complaint", priority=5)
    assert await queue.open_case("c1", "rest", "customer_request") == first  # one open case per conversation
    waiting = await queue.list("waiting")
    assert [c.id for c in waiting] == [urgent.id, first.id, second.id]
    assert [await queue.position(c.id) for c in waiting] == [1, 2, 3]

    claimed = await queue.claim(first.id, ada.id)
    assert claimed.status == "assigned" and claimed.agent_name == "Ada"
    with pytest.raises(CaseConflict, match="already assigned by Ada"):
        await queue.claim(first.id, bob.id)
    with pytest.raises(CaseConflict):
        await queue.require_owner(first.id, bob.id)
    assert await queue.position(second.id) == 2
    with pytest.raises(CaseConflict):
        await queue.close(first.id, bob.id, "resolved")
    closed = await queue.close(first.id, ada.id, "resolved")
    assert closed.status == "closed" and closed.resolution == "resolved"
    with pytest.raises(UnknownCase):
        await queue.claim(987654, ada.id)


@pytest.mark.asyncio
async def test_queue_survives_a_new_engine(db: tuple) -> None:
    """What is committed is there for the next process (a restart is a new engine)."""
    settings, engine, queue, accounts, ada, bob = db
    case = await queue.open_case("persist", "rest", "low_faq_confidence", "best FAQ score 0.31 < 0.55", {"candidates": [{"faq_id": "x", "score": 0.31}]})
    fresh = async_engine(settings)
    try:
        again = await CaseQueue(fresh).get(case.id)
    finally:
        await fresh.dispose()
    assert again.reason == "low_faq_confidence" and again.signals["candidates"][0]["faq_id"] == "x"


@pytest.mark.asyncio
async def test_sessions_and_passwords(db: tuple) -> None:
    settings, engine, queue, accounts, ada, bob = db
    token, account, expires = await accounts.login("ada", "pw-ada")
    assert (await accounts.authenticate(token)).username == "ada"
    with pytest.raises(AuthError):
        await accounts.login("ada", "wrong")
    with pytest.raises(AuthError):
        await accounts.login("nobody", "pw")
    await accounts.logout(token)
    with pytest.raises(AuthError):
        await accounts.authenticate(token)
    expired = Accounts(engine, session_hours=-1)
    old, _, _ = await expired.login("bob", "pw-bob")
    with pytest.raises(AuthError, match="expired"):
        await accounts.authenticate(old)
