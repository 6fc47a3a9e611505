"""Staff accounts with bcrypt-hashed passwords, and expiring bearer-token sessions.

Only a SHA-256 of each session token is stored, so a leaked database cannot be replayed
as a login.
"""
from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass

import bcrypt
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.schema import accounts, sessions

ROLES = ("agent", "supervisor", "editor", "manager")


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    display_name: str
    role: str


class AuthError(Exception):
    """Wrong credentials or a missing/expired session."""


def _account(row: dict) -> Account:
    return Account(row["id"], row["username"], row["display_name"], row["role"])


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def session_key(token: str) -> str:
    """What identifies a session on the bus (its stored hash, never the token itself)."""
    return _token_hash(token)


BCRYPT_ROUNDS = 10


def _secret(password: str) -> bytes:
    """bcrypt reads 72 bytes; bcrypt 5 refuses longer ones (a ValueError), older ones cut them."""
    return password.encode("utf-8", "surrogateescape")[:72]


class Accounts:
    def __init__(self, engine: AsyncEngine, session_hours: float) -> None:
        self._engine = engine
        self._session_seconds = session_hours * 3600
        self._dummy_hash: bytes | None = None

    async def _unknown_user_hash(self) -> bytes:
        """A hash of the same cost as a real one, so an unknown name takes as long to refuse as a
        wrong password (made once per process, not per attempt)."""
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(bcrypt.hashpw, secrets.token_bytes(16), bcrypt.gensalt(rounds=BCRYPT_ROUNDS))
        return self._dummy_hash

    async def create(self, username: str, password: str, role: str, display_name: str = "") -> Account:
        """Create or reset an account (the CLI's `create-user`)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if not username.strip() or len(password) < 4:
            raise ValueError("username required; password of at least 4 characters")
        hashed = await asyncio.to_thread(bcrypt.hashpw, _secret(password), bcrypt.gensalt(rounds=BCRYPT_ROUNDS))
        values = {"display_name": display_name or username, "password_hash": hashed.decode(), "role": role}
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(accounts.c.id).where(accounts.c.username == username))).first()
            if row:
                await conn.execute(accounts.update().where(accounts.c.id == row[0]).values(**values))
            else:
                await conn.execute(accounts.insert().values(username=username, created_at=time.time(), **values))
        found = await self.by_username(username)
        assert found is not None
        return found

    async def by_username(self, username: str) -> Account | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(accounts).where(accounts.c.username == username))).mappings().first()
        return None if row is None else _account(row)

    async def by_id(self, account_id: int) -> Account | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(accounts).where(accounts.c.id == account_id))).mappings().first()
        return None if row is None else _account(row)

    async def list(self) -> list[Account]:
        async with self._engine.connect() as conn:
            return [_account(r) for r in (await conn.execute(sa.select(accounts).order_by(accounts.c.id))).mappings()]

    async def login(self, username: str, password: str) -> tuple[str, Account, float]:
        """Check the password (bcrypt, in a thread) and open a session; returns (token, account, expiry)."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(accounts).where(accounts.c.username == username))).mappings().first()
        stored = row["password_hash"].encode() if row else await self._unknown_user_hash()
        ok = await asyncio.to_thread(bcrypt.checkpw, _secret(password), stored)
        if row is None or not ok:
            raise AuthError("wrong username or password")
        token = secrets.token_urlsafe(32)
        expires = time.time() + self._session_seconds
        async with self._engine.begin() as conn:
            await conn.execute(sessions.delete().where(sessions.c.expires_at < time.time()))
            await conn.execute(sessions.insert().values(token_hash=_token_hash(token), account_id=row["id"], expires_at=expires))
        return token, _account(row), expires

    async def authenticate(self, token: str) -> Account:
        query = (
            sa.select(accounts, sessions.c.expires_at)
            .join(sessions, sessions.c.account_id == accounts.c.id)
            .where(sessions.c.token_hash == _token_hash(token))
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            raise AuthError("unknown session; log in again")
        if row["expires_at"] < time.time():
            raise AuthError("session expired; log in again")
        return _account(row)

    async def logout(self, token: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(sessions.delete().where(sessions.c.token_hash == _token_hash(token)))
