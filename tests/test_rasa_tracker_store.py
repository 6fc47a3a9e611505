"""Rasa's tracker store on the embedded SQLite file (server/rasa_tracker_store.py).

Rasa falls back to an in-memory tracker store, with only a warning, when it cannot import a custom
class: the stack test checks that the running Rasa wrote the conversation to var/rasa-tracker.db,
in WAL mode (Rasa's own SQLTrackerStore leaves SQLite's rollback journal).
"""
from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered

from server.rasa_tracker_store import SQLiteTrackerStore
from tests.conftest import Stack


def test_the_running_rasa_keeps_trackers_in_the_wal_sqlite_file(stack: Stack) -> None:
    customer = stack.new_conversation()
    assert customer.say("how can I track my order?")["replies"]
    with sqlite3.connect(stack.settings.var_dir / "rasa-tracker.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        texts = [row[0] for row in db.execute(
            "SELECT json_extract(data, '$.text') FROM events WHERE sender_id = ? AND type_name = 'user'", (customer.conversation_id,))]
    assert texts == ["how can I track my order?"]


def test_same_rows_as_rasas_own_store(tmp_path: Path) -> None:
    """A tracker saved by either class reads back the same from the other: one table, one format."""
    domain = Domain.empty()

    async def run() -> None:
        ours = SQLiteTrackerStore(domain, db=str(tmp_path / "t.db"), busy_timeout_s=2.0)
        assert isinstance(ours.engine.pool, sa.pool.QueuePool)
        tracker = await ours.get_or_create_tracker("c1")
        tracker.update(UserUttered("hello", {"intent": {"name": "greet", "confidence": 0.9}, "entities": []}))
        tracker.update(ActionExecuted("utter_greet"))
        await ours.save(tracker)
        tracker.update(UserUttered("and again", {"intent": {"name": "nlu_fallback", "confidence": 0.3}, "entities": []}))
        await ours.save(tracker)  # only the new events are added
        theirs = SQLTrackerStore(domain, dialect="sqlite", db=str(tmp_path / "t.db"))
        loaded = await theirs.retrieve("c1")
        assert loaded is not None
        assert [e.as_dict() for e in loaded.events] == [e.as_dict() for e in tracker.events]
        reloaded = await ours.retrieve("c1")
        assert reloaded is not None and len(reloaded.events) == len(tracker.events)

    asyncio.run(run())
    with sqlite3.connect(tmp_path / "t.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM events WHERE sender_id = 'c1'").fetchone()[0] == 4
