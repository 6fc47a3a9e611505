"""SQL that reads the same on SQLite and PostgreSQL: UTC day numbers and JSON fields.

Shared by the figures (metrics.py) and their pre-aggregation (rollup.py), so both count a day
and read an event's JSON exactly alike.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

DAY = 86400.0


def day(column: Any, dialect: str) -> Any:
    """UTC day number of an epoch-seconds column (CAST rounds on PostgreSQL, so floor there)."""
    if dialect == "postgresql":
        return sa.cast(sa.func.floor(column / DAY), sa.Integer)
    return sa.cast(column / DAY, sa.Integer)


def json_text(column: Any, key: str, dialect: str) -> Any:
    if dialect == "postgresql":
        return sa.func.json_extract_path_text(sa.cast(column, sa.JSON), key)
    return sa.func.json_extract(column, f"$.{key}")


def json_true(column: Any, key: str, dialect: str) -> Any:
    if dialect == "postgresql":
        return sa.func.json_extract_path_text(sa.cast(column, sa.JSON), key) == "true"
    return sa.func.json_type(column, f"$.{key}") == "true"
