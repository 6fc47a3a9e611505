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
message. Closing the cursor where it was used, also on failure, removes the hazard; pooling is
then safe (core/db.py).
"""
from __future__ import annotations

import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite import aiosqlite as sa_aiosqlite
from sqlalchemy.util import await_only


class ClosingCursor(sa_aiosqlite.AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's adapter cursor, but the driver cursor is closed whether the statement worked."""

    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> None:
        cursor = self.await_(self._connection.cursor())
        try:
            if parameters is None:
                self.await_(cursor.execute(operation))
            else:
                self.await_(cursor.execute(operation, parameters))
            if cursor.description:
                self.description = cursor.description
                self.lastrowid = self.rowcount = -1
                self._rows = self.await_(cursor.fetchall())
            else:
                self.description = None
                self.lastrowid = cursor.lastrowid
                self.rowcount = cursor.rowcount
        except Exception as error:  # noqa: BLE001 - re-raised by the adapter, as SQLAlchemy's does
            self._close(cursor)
            self._adapt_connection._handle_exception(error)
        except BaseException:  # cancelled: the cursor is still closed on its own thread
            self._close(cursor)
            raise
        self.await_(cursor.close())

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        cursor = self.await_(self._connection.cursor())
        try:
            self.await_(cursor.executemany(operation, seq_of_parameters))
            self.description = None
            self.lastrowid = cursor.lastrowid
            self.rowcount = cursor.rowcount
        except Exception as error:  # noqa: BLE001 - re-raised by the adapter
            self._close(cursor)
            self._adapt_connection._handle_exception(error)
        except BaseException:
            self._close(cursor)
            raise
        self.await_(cursor.close())

    def _close(self, cursor: aiosqlite.Cursor) -> None:
        """On the failure path: the statement's own error is the one worth raising."""
        try:
            self.await_(cursor.close())
        except BaseException:  # noqa: BLE001 - e.g. the connection is gone; nothing left to reset
            pass


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
