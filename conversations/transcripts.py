"""Read-only access to the conversation log and transcripts, for the editor and the reports.

Sync engine (the editor's analyses run in worker threads): call from a worker thread.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

import sqlalchemy as sa

from conversations.events import conversation_events
from conversations.store import messages

@dataclass(frozen=True)
class Event:
    id: int
    conversation_id: str
    kind: str
    data: dict[str, Any]
    at: float


@dataclass(frozen=True)
class Line:
    """One transcript message."""

    id: int
    sender: str
    text: str
    at: float


def events(engine: sa.engine.Engine, kinds: Iterable[str], limit: int | None = None, newest_first: bool = True) -> list[Event]:
    table = conversation_events
    order = table.c.id.desc() if newest_first else table.c.id
    query = sa.select(table).where(table.c.kind.in_(list(kinds))).order_by(order)
    if limit:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    found = []
    for row in rows:
        try:
            data = json.loads(row["data"] or "{}")
        except ValueError:
            data = {}
        found.append(Event(row["id"], row["conversation_id"], row["kind"], data if isinstance(data, dict) else {}, row["at"]))
    return found


def transcripts(engine: sa.engine.Engine, conversation_ids: Iterable[str]) -> dict[str, list[Line]]:
    """Every message of these conversations, in order, one query."""
    ids = sorted(set(conversation_ids))
    found: dict[str, list[Line]] = {cid: [] for cid in ids}
    if not ids:
        return found
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            query = (
                sa.select(messages.c.id, messages.c.conversation_id, messages.c.sender, messages.c.text, messages.c.created_at)
                .where(messages.c.conversation_id.in_(ids[start : start + 500]))
                .order_by(messages.c.id)
            )
            for row in conn.execute(query):
                found[row[1]].append(Line(row[0], row[2], row[3] or "", row[4]))
    return found


def is_question_like(text: str) -> bool:
    """A customer line worth turning into an FAQ question: not a button payload, not 'ok'."""
    text = text.strip()
    return bool(text) and not text.startswith("/") and (len(text.split()) >= 3 or text.endswith("?"))
