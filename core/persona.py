"""The business's texts as every process sees them: tandem.yml's `business:` plus editors' overrides.

Settings are read once per process, but editors change texts at run time, so the overrides live
in one small table (`persona_texts`, one row per overridden text) in the shared database. Each
reader checks a cheap fingerprint of the table (max/sum of the revisions and the row count) at
most once a second, the same idea as knowledge/base.py's revision check: a saved text reaches the
action server (bot replies), the widget header and Telegram's /start within about a second, on
every machine sharing the database, with no retraining and no restart.

An override of None (or a reset) returns that text to its tandem.yml value.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import metadata
from core.settings import PLACEHOLDERS, Business

persona_texts = sa.Table(
    "persona_texts",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=True),  # NULL: back to the tandem.yml value
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False, default=""),
    sa.Column("updated_at", sa.Float, nullable=False),
)
# name, covers and every text; the Chinese variants (Business.zh) come from tandem.yml only, for now
EDITABLE = tuple(f.name for f in dataclasses.fields(Business) if f.name != "zh")
MAX_CHARS = {"name": 120, "covers": 500}
DEFAULT_MAX_CHARS = 1000
_FINGERPRINT = sa.select(sa.func.max(persona_texts.c.revision), sa.func.sum(persona_texts.c.revision), sa.func.count())


class PersonaError(ValueError):
    """An override that cannot be saved (unknown key, wrong type, empty, too long, bad placeholder)."""


def validate(changes: Any) -> dict[str, str | None]:
    """Editors' changes -> {key: text or None}; a clear message for anything else."""
    if not isinstance(changes, Mapping) or not changes:
        raise PersonaError("expected a JSON object of texts, e.g. {\"greeting\": \"Hi! ...\"}")
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise PersonaError(f"unknown text(s): {', '.join(unknown)}; editable: {', '.join(EDITABLE)}")
    clean: dict[str, str | None] = {}
    for key, value in changes.items():
        if value is None:
            clean[key] = None
            continue
        if not isinstance(value, str):
            raise PersonaError(f"'{key}' must be a string (or null to return to the configured text)")
        value = value.strip()
        if not value:
            raise PersonaError(f"'{key}' must not be empty (send null to return to the configured text)")
        limit = MAX_CHARS.get(key, DEFAULT_MAX_CHARS)
        if len(value) > limit:
            raise PersonaError(f"'{key}' is {len(value)} characters; at most {limit}")
        rest = value
        for name in PLACEHOLDERS:
            rest = rest.replace("{" + name + "}", "")
        if "{" in rest or "}" in rest:
            raise PersonaError(f"'{key}': the only placeholders are {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
        if key in ("name", "covers") and "{" in value:
            raise PersonaError(f"'{key}' cannot contain placeholders")
        clean[key] = value
    return clean


def apply(defaults: Business, overrides: Mapping[str, str | None]) -> Business:
    return dataclasses.replace(defaults, **{k: v for k, v in overrides.items() if v is not None and k in EDITABLE})


def _rows_to_overrides(rows: Any) -> dict[str, str | None]:
    return {r.key: r.value for r in rows}


def _write(conn: sa.engine.Connection, changes: Mapping[str, str | None], by: str) -> None:
    revision = (conn.execute(sa.select(sa.func.max(persona_texts.c.revision))).scalar() or 0) + 1
    now = time.time()
    for key, value in changes.items():
        updated = conn.execute(persona_texts.update().where(persona_texts.c.key == key).values(
            value=value, revision=revision, updated_by=by, updated_at=now))
        if not updated.rowcount:
            conn.execute(persona_texts.insert().values(key=key, value=value, revision=revision, updated_by=by, updated_at=now))


class PersonaSource:
    """Sync reader for the action server and the CLI; thread-safe, checks at most every `refresh_interval` s."""

    def __init__(self, engine: sa.engine.Engine, defaults: Business, refresh_interval: float = 1.0) -> None:
        self.engine = engine
        self.defaults = defaults
        self.refresh_interval = refresh_interval
        self._lock = threading.Lock()
        self._checked = 0.0
        self._fingerprint: tuple[Any, ...] | None = None
        self._current = defaults

    def current(self) -> Business:
        with self._lock:
            if time.monotonic() - self._checked < self.refresh_interval:
                return self._current
            self._checked = time.monotonic()
            try:
                with self.engine.connect() as conn:
                    fingerprint = tuple(conn.execute(_FINGERPRINT).one())
                    if fingerprint != self._fingerprint:
                        overrides = _rows_to_overrides(conn.execute(sa.select(persona_texts.c.key, persona_texts.c.value)))
                        self._current = apply(self.defaults, overrides)
                        self._fingerprint = fingerprint
            except sa.exc.SQLAlchemyError:  # no table yet / database briefly away: keep the last texts
                pass
            return self._current

    def save(self, changes: Mapping[str, Any], by: str = "") -> Business:
        clean = validate(changes)
        with self.engine.begin() as conn:
            _write(conn, clean, by)
        with self._lock:
            self._checked = 0.0
        return self.current()


class AsyncPersona:
    """The web process's reader and writer (async engine; never blocks the loop)."""

    def __init__(self, engine: AsyncEngine, defaults: Business, refresh_interval: float = 1.0) -> None:
        self.engine = engine
        self.defaults = defaults
        self.refresh_interval = refresh_interval
        self._checked = 0.0
        self._fingerprint: tuple[Any, ...] | None = None
        self._overrides: dict[str, str | None] = {}

    async def overrides(self) -> dict[str, str | None]:
        if time.monotonic() - self._checked >= self.refresh_interval:
            self._checked = time.monotonic()
            async with self.engine.connect() as conn:
                fingerprint = tuple((await conn.execute(_FINGERPRINT)).one())
                if fingerprint != self._fingerprint:
                    rows = await conn.execute(sa.select(persona_texts.c.key, persona_texts.c.value))
                    self._overrides = _rows_to_overrides(rows)
                    self._fingerprint = fingerprint
        return dict(self._overrides)

    async def current(self) -> Business:
        return apply(self.defaults, await self.overrides())

    async def save(self, changes: Mapping[str, Any], by: str) -> Business:
        clean = validate(changes)
        async with self.engine.begin() as conn:
            await conn.run_sync(lambda sync_conn: _write(sync_conn, clean, by))
        self._checked = 0.0
        return await self.current()


def public_view(business: Business, lang: str = "en") -> dict[str, str]:
    """What a channel shows before the first message: the business's name and greeting, in `lang`."""
    return {"name": business.text("name", lang) if lang == "zh" else business.name, "greeting": business.text("greeting", lang),
            "lang": lang}
