"""A turn that fails after the customer's message was stored says so: "saved", with its id.

Real SQLite and a real lock taken by another connection the moment the message is committed
(the hook is the only test device: it decides *when* the lock is taken)."""
from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from conversations.store import ConversationStore
from bot.rasa_client import RasaClient
from bot.router import Router
from bot.turns import TurnIncomplete, turn_incomplete_error
from core.bus import Bus
from core.db import async_engine
from server.schema import create_schema
from conversations.events import EventLog
from core.http import database_unavailable
from core.settings import load_settings
from handoff.queue import CaseQueue
from handoff.services import WaitingRoom


def test_lock_after_the_message_is_stored_answers_saved(tmp_path: Path) -> None:
    settings = load_settings(var_dir=tmp_path, secret_key="t", db_busy_timeout_s=0.3)
    create_schema(settings)

    async def scenario() -> tuple[TurnIncomplete, list[str]]:
        engine = async_engine(settings)
        store = ConversationStore(engine)
        rasa = RasaClient("http://127.0.0.1:9", 1.0, "test-token")
        router = Router(settings, store, CaseQueue(engine, 1.0), rasa, EventLog(engine), Bus(), WaitingRoom.build(engine, settings))
        conversation = await router.start_conversation("rest")
        locker = sqlite3.connect(tmp_path / "tandem.db", timeout=5, isolation_level=None)
        stored_then_lock = store.add_message

        async def add_message(*args, **kwargs):  # type: ignore[no-untyped-def]
            message = await stored_then_lock(*args, **kwargs)
            locker.execute("BEGIN EXCLUSIVE")  # the next write (the event log) must wait, then fail
            return message

        store.add_message = add_message  # type: ignore[method-assign]
        try:
            try:
                await router.customer_message(conversation.id, "where is my parcel?")
            except TurnIncomplete as exc:
                failure = exc
            else:
                raise AssertionError("the turn should have failed on the lock")
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        texts = [m.text for m in await store.messages_since(conversation.id)]
        await rasa.close()
        await engine.dispose()
        return failure, texts

    failure, texts = asyncio.run(scenario())
    assert database_unavailable(failure.cause)
    assert texts == ["where is my parcel?"]  # it was kept ...
    error = turn_incomplete_error(failure)
    assert error.status_code == 503 and error.extra_headers["Retry-After"]
    assert error.extra["saved"] is True and error.extra["message_id"] == failure.message.id
    assert "saved" in error.message and "no need to send it again" in error.message  # ... and the answer says so
