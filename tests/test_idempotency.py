"""A customer message sent twice is stored and answered once: the client id's receipt is
enforced by the database (SQLite and PostgreSQL, under races), and the REST channel's
Idempotency-Key / client_id returns the original result to a retry."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa

from conversations.store import ConversationStore, DuplicateMessage, message_receipts, messages
from core.db import async_engine
from server.schema import create_schema
from core.settings import load_settings
from tests.conftest import Customer, Stack, postgres_url

TRACK_QUESTION = "How can I track my order?"


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ConversationStore]:
    database = postgres_url("tandem_idempotency") if request.param == "postgresql" else ""
    settings = load_settings(var_dir=tmp_path, database_url=database)
    await asyncio.to_thread(create_schema, settings)
    engines = [async_engine(settings) for _ in range(3)]  # three "instances" on one database
    store = ConversationStore(engines[0])
    store.others = [ConversationStore(e) for e in engines[1:]]  # type: ignore[attr-defined]
    yield store
    for engine in engines:
        await engine.dispose()


async def _count(store: ConversationStore, conversation_id: str) -> int:
    async with store._engine.connect() as conn:  # noqa: SLF001 - the test reads the table itself
        return int((await conn.execute(
            sa.select(sa.func.count()).select_from(messages).where(messages.c.conversation_id == conversation_id)
        )).scalar_one())


@pytest.mark.asyncio
async def test_second_copy_is_refused_by_the_database(store: ConversationStore) -> None:
    conversation = await store.create("widget")
    first = await store.add_message(conversation.id, "customer", "hello", client_id="w-1")
    with pytest.raises(DuplicateMessage) as duplicate:
        await store.add_message(conversation.id, "customer", "hello", client_id="w-1")
    assert duplicate.value.receipt.message_id == first.id and duplicate.value.receipt.status == "answering"
    await store.add_message(conversation.id, "customer", "hello", client_id="w-2")  # another id: another message
    other = await store.create("widget")
    await store.add_message(other.id, "customer", "hello", client_id="w-1")  # unique per conversation only
    await store.add_message(conversation.id, "customer", "no id, no receipt")
    await store.add_message(conversation.id, "customer", "no id, no receipt")
    assert await _count(store, conversation.id) == 4
    await store.finish_receipt(conversation.id, "w-1", [7, 8], "bot")
    receipt = await store.receipt(conversation.id, "w-1")
    assert receipt is not None and (receipt.status, receipt.reply_ids, receipt.mode) == ("answered", [7, 8], "bot")


@pytest.mark.asyncio
async def test_racing_copies_across_instances_store_one(store: ConversationStore) -> None:
    """Twelve copies at once through three engines (as three web processes): exactly one wins."""
    conversation = await store.create("rest")
    stores = [store, *store.others]  # type: ignore[attr-defined]

    async def attempt(n: int) -> str:
        try:
            await stores[n % 3].add_message(conversation.id, "customer", "same words", client_id="race-1")
            return "stored"
        except DuplicateMessage:
            return "duplicate"

    results = await asyncio.gather(*(attempt(n) for n in range(12)))
    assert sorted(results) == ["duplicate"] * 11 + ["stored"]
    assert await _count(store, conversation.id) == 1
    async with store._engine.connect() as conn:  # noqa: SLF001
        receipts = (await conn.execute(sa.select(sa.func.count()).select_from(message_receipts))).scalar_one()
    assert receipts == 1


# -- the REST channel against the real stack ------------------------------------------------------
def _post(customer: Customer, body: dict, key: str | None = None) -> httpx.Response:
    headers = dict(customer.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return customer.stack.http.post(f"/api/conversations/{customer.conversation_id}/messages", json=body, headers=headers)


def test_rest_retry_returns_the_original_result(stack: Stack) -> None:
    customer = stack.new_conversation()
    key = f"rest-{uuid.uuid4().hex}"
    first = _post(customer, {"text": TRACK_QUESTION}, key)
    assert first.status_code == 200, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = _post(customer, {"text": TRACK_QUESTION}, key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()  # the very same replies (same ids), nothing new
    by_field = _post(customer, {"text": TRACK_QUESTION, "client_id": key})
    assert by_field.json() == first.json()
    stored = customer.messages()
    assert [m["sender"] for m in stored].count("customer") == 1
    assert stored[0]["client_id"] == key

    assert _post(customer, {"text": "something else"}, key).status_code == 409  # a reused id is a bug, not a retry
    assert _post(customer, {"text": "x", "client_id": "a"}, "b").status_code == 400
    assert _post(customer, {"text": "x"}, "not valid!").status_code == 400
    assert _post(customer, {"text": "x", "client_id": 5}).status_code == 400
    assert [m["sender"] for m in customer.messages()].count("customer") == 1


def test_rest_retries_racing_the_original_get_its_result(stack: Stack) -> None:
    """A client that times out and retries while the first request is still being answered."""
    customer = stack.new_conversation()
    key = f"race-{uuid.uuid4().hex}"
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: _post(customer, {"text": TRACK_QUESTION}, key), range(4)))
    assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
    bodies = [r.json() for r in responses]
    assert all(body["replies"] == bodies[0]["replies"] for body in bodies) and bodies[0]["replies"]
    assert sum(1 for r in responses if r.headers.get("Idempotent-Replayed") == "true") == 3
    stored = customer.messages()
    assert [m["sender"] for m in stored].count("customer") == 1
    assert [m for m in stored if m.get("faq_id")].__len__() == 1, "answered once"


# -- inbound updates (Telegram update_id) ---------------------------------------------------------
@pytest.mark.asyncio
async def test_update_ledger_claims_once_and_takes_over_a_dead_claim(store: ConversationStore) -> None:
    import time

    from bot.channels import updates
    from bot.channels.updates import UpdateLedger

    engines = [store._engine, *(s._engine for s in store.others)]  # type: ignore[attr-defined]  # noqa: SLF001
    ledgers = [UpdateLedger(e, "telegram", "123") for e in engines]
    claims = await asyncio.gather(*(ledgers[n % 3].claim(555) for n in range(9)))
    assert sorted(claims) == [False] * 8 + [True]
    assert await UpdateLedger(engines[0], "telegram", "other-bot").claim(555), "another bot's ids are its own"
    await ledgers[0].handled(555)
    assert not await ledgers[1].claim(555)
    # a claim left "handling" by a process that died is taken over once it is stale
    assert await ledgers[0].claim(556)
    async with engines[0].begin() as conn:
        await conn.execute(updates.inbound_updates.update().where(updates.inbound_updates.c.update_id == 556)
                           .values(claimed_at=time.time() - updates.STALE_AFTER_S - 1))
    taken = await asyncio.gather(*(ledgers[n].claim(556) for n in range(3)))
    assert sorted(taken) == [False, False, True]
