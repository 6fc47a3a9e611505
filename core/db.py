"""Database engines and the one MetaData that every room's tables register on.

The web process uses the async engine (aiosqlite or asyncpg); the knowledge store, the action
server and the CLI use the sync engine from worker threads. SQLite runs in WAL mode with a busy
timeout so that these processes can share one file. The sync engine pools its SQLite connections
like PostgreSQL's (SQLAlchemy 1.4's default for a SQLite file is a new connection per transaction,
and the knowledge base's revision poll alone opens two a second in every process); so does the
async engine, through core/sqlite_async's driver adapter.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core import sqlite_async
from core.settings import Settings

metadata = sa.MetaData()


def sqlite_pragmas(busy_timeout_s: float) -> Any:
    """WAL, a busy timeout, synchronous=NORMAL and foreign keys on every new SQLite connection."""

    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return _sqlite_pragmas


def sync_engine(settings: Settings) -> sa.engine.Engine:
    """A thread-safe sync engine; creates var/ for the SQLite default."""
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, future=True, poolclass=sa.pool.QueuePool, pool_size=5, max_overflow=10,
                                  connect_args={"check_same_thread": False, "timeout": settings.db_busy_timeout_s})
        sa.event.listen(engine, "connect", sqlite_pragmas(settings.db_busy_timeout_s))
        return engine
    return sa.create_engine(url, future=True, pool_pre_ping=True, pool_size=5, max_overflow=10)


def async_engine(settings: Settings) -> AsyncEngine:
    """The web process's engine: never blocks the event loop."""
    url = settings.async_sqlalchemy_url
    if url.startswith("sqlite"):
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        # Pooled (SQLAlchemy's default for a SQLite file is a new connection, and a new thread, per
        # transaction: a third of the web process's CPU per message). core/sqlite_async closes
        # every driver cursor where it was used: SQLAlchemy's adapter leaves a failed statement's
        # cursor to the garbage collector, which deadlocked pooled connections until the busy timeout.
        engine = create_async_engine(url, future=True, module=sqlite_async.dbapi(), poolclass=sa.pool.AsyncAdaptedQueuePool,
                                     pool_size=5, max_overflow=10, connect_args={"timeout": settings.db_busy_timeout_s})
        sa.event.listen(engine.sync_engine, "connect", sqlite_pragmas(settings.db_busy_timeout_s))
        return engine
    return create_async_engine(url, future=True, pool_pre_ping=True, pool_size=10, max_overflow=20)
