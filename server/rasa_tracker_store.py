"""Rasa's SQL tracker store on the embedded SQLite file, set up the way Tandem's own SQLite is.

Rasa's SQLTrackerStore opens a SQLite file with SQLAlchemy's defaults: a new connection for every
session, and SQLite's rollback journal with a full sync on every commit. Rasa reads and writes the
tracker on every message (17 % of Rasa's CPU in a profile of benchmarks/latency.py), so the
embedded default names this subclass in endpoints.yml (server/processes.py): the same tables, rows
and queries, on a pooled engine in WAL mode with synchronous=NORMAL and the busy timeout of
core/db.py (several processes share the file: Rasa instances, the data-rights eraser). PostgreSQL
keeps Rasa's own class.

Rasa silently falls back to an in-memory tracker store when it cannot import a custom class, so
tests/test_rasa_tracker_store.py checks which store a running Rasa has.
"""
from __future__ import annotations

from typing import Any, Optional

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain

from core.db import sqlite_pragmas


class SQLiteTrackerStore(SQLTrackerStore):
    """`type: server.rasa_tracker_store.SQLiteTrackerStore`, `db: <path>` in endpoints.yml."""

    def __init__(self, domain: Optional[Domain] = None, db: str = "rasa.db", busy_timeout_s: float = 10.0,
                 event_broker: Optional[EventBroker] = None, **kwargs: Any) -> None:
        kwargs.pop("dialect", None)
        kwargs.pop("host", None)
        super().__init__(domain=domain, dialect="sqlite", db=db, event_broker=event_broker, **kwargs)
        url = self.engine.url
        self.engine.dispose()
        # Rasa runs its tracker store on the event loop's thread; the pool keeps its connection open.
        self.engine = sa.create_engine(url, poolclass=sa.pool.QueuePool, pool_size=2, max_overflow=4,
                                       connect_args={"check_same_thread": False, "timeout": busy_timeout_s})
        sa.event.listen(self.engine, "connect", sqlite_pragmas(busy_timeout_s))
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
