"""The pooled async SQLite engine: a failed statement's cursor cannot stall another connection.

The deadlock core/sqlite_async.py removes, replayed step by step on core.db.async_engine: a
statement fails on connection A (its driver cursor becomes garbage in a reference cycle), B takes
the write lock, A waits for it in SQLite's busy handler (holding A's mutex), and the cycle
collector runs in B's worker thread. With SQLAlchemy's own adapter the collector finalises A's
cursor there, blocks on A's mutex, and A fails with "database is locked" once its busy timeout is
over, although B was about to commit.
"""
from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.db import async_engine
from core.settings import load_settings

BUSY_S = 1.5


async def _scenario(tmp_path: Path) -> float:
    engine = async_engine(load_settings(var_dir=tmp_path, secret_key="test", db_busy_timeout_s=BUSY_S))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE claims (id INTEGER PRIMARY KEY)"))
            await conn.execute(sa.text("INSERT INTO claims VALUES (1)"))
        async with engine.connect() as a, engine.connect() as b:
            try:  # a compare-and-set insert that loses: IntegrityError
                await a.execute(sa.text("INSERT INTO claims VALUES (1)"))
            except sa.exc.IntegrityError:
                pass
            await a.rollback()
            await b.execute(sa.text("INSERT INTO claims VALUES (2)"))  # b holds the write lock

            async def a_writes() -> None:
                await a.execute(sa.text("INSERT INTO claims VALUES (3)"))
                await a.commit()

            waiting = asyncio.create_task(a_writes())
            await asyncio.sleep(0.3)  # a is in the busy handler now
            worker = (await b.get_raw_connection()).dbapi_connection._connection  # b's aiosqlite.Connection
            started = time.monotonic()
            await worker._execute(gc.collect)  # the cycle collector, in b's worker thread
            collected_in = time.monotonic() - started
            await b.commit()
            await waiting  # with SQLAlchemy's adapter: OperationalError, database is locked
        async with engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT COUNT(*) FROM claims"))).scalar() == 3
        return collected_in
    finally:
        await engine.dispose()


def test_a_failed_statement_does_not_stall_a_pooled_writer(tmp_path: Path) -> None:
    gc.disable()  # only the collection the test runs, in the thread it chooses
    try:
        collected_in = asyncio.run(_scenario(tmp_path))
    finally:
        gc.enable()
    assert collected_in < BUSY_S / 2


def test_the_async_sqlite_engine_is_pooled(tmp_path: Path) -> None:
    engine = async_engine(load_settings(var_dir=tmp_path, secret_key="test"))
    try:
        assert isinstance(engine.sync_engine.pool, sa.pool.AsyncAdaptedQueuePool)
    finally:
        asyncio.run(engine.dispose())

