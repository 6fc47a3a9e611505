"""aiosqlite for the web process's async engine, with every driver cursor closed on its own thread.

SQLAlchemy 1.4's aiosqlite adapter leaves the driver's cursor open when a statement fails (the
IntegrityError of a compare-and-set insert, a busy timeout, a cancelled task). The exception's
traceback keeps that cursor in a reference cycle, and the cycle collector later finalises it in
whichever thread happens to allocate: often another connection's worker thread, in the middle of
its own write transaction. Finalising resets the statement, which takes the owning connection's
mutex; when that connection is itself waiting for the write lock the collecting thread holds,
both wait out the busy timeout and fail with "database is locked" (found with gdb on
tests/test_csat_prompt.py's two concurrent sweeps: `delete_garbage -> cursor_clear ->
sqlite3_reset` blocked on a mutex; sqlalchemy#5182 and aiosqlite#55 are the same family). With
NullPool every connection closed after use, which hid it, at a third of the web process's CPU per
message. Here a statement runs whole on its connection's thread and closes its cursor there, also
on failure, so pooling is safe (core/db.py); and it is one thread hop per statement, not four.
"""
from __future__ import annotations

import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite import aiosqlite as sa_aiosqlite
from sqlalchemy.util import await_only


def _run(connection: aiosqlite.Connection, operation: Any, parameters: Any, many: bool) -> tuple[Any, int, int, list[Any]]:
    """One statement, whole, on the connection's worker thread: its cursor is closed there, also
    when the statement fails, and the event loop waits for one hop instead of four."""
    cursor = connection._conn.cursor()  # the sqlite3 connection; raises ValueError once closed
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        if cursor.description:
            return cursor.description, -1, -1, cursor.fetchall()
        return None, cursor.lastrowid, cursor.rowcount, []
    finally:
        cursor.close()


class ClosingCursor(sa_aiosqlite.AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's adapter cursor, each statement run by `_run` in a single call to the worker."""

    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._apply(operation, parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        self._apply(operation, seq_of_parameters, many=True)

    def _apply(self, operation: Any, parameters: Any, many: bool) -> None:
        connection = self._connection
        try:
            # aiosqlite's own queue (Connection._execute), as its Cursor methods use it.
            description, lastrowid, rowcount, rows = self.await_(connection._execute(_run, connection, operation, parameters, many))
        except Exception as error:  # noqa: BLE001 - re-raised by the adapter, as SQLAlchemy's does
            self._adapt_connection._handle_exception(error)
        self.description, self.lastrowid, self.rowcount, self._rows = description, lastrowid, rowcount, rows


class ClosingConnection(sa_aiosqlite.AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    def cursor(self, server_side: bool = False) -> Any:
        if server_side:  # a stream closes its cursor itself (SQLAlchemy's ss cursor)
            return super().cursor(server_side=True)
        return ClosingCursor(self)


class ClosingDBAPI(sa_aiosqlite.AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module to hand to create_async_engine(module=...)."""

    def connect(self, *args: Any, **kwargs: Any) -> ClosingConnection:
        kwargs.pop("async_fallback", None)
        kwargs["check_same_thread"] = False  # every call goes through the connection's one worker thread
        connection = self.aiosqlite.connect(*args, **kwargs)
        connection.daemon = True  # a pooled connection never keeps the interpreter from exiting
        return ClosingConnection(self, await_only(connection))


def dbapi() -> ClosingDBAPI:
    return ClosingDBAPI(aiosqlite, sqlite3)
