"""Differences between two versions of an FAQ entry, field by field, for the history view."""
from __future__ import annotations

import difflib
from typing import Any

FIELDS = ("question", "answer", "category", "paraphrases", "tags", "status")


def _lines(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value or "").splitlines() or [""]


def diff_snapshots(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Changed fields only: each with before/after values and a unified line diff."""
    changes = []
    for name in FIELDS:
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        lines = list(difflib.unified_diff(_lines(before), _lines(after), "before", "after", lineterm="", n=2))[2:]
        changes.append({"field": name, "before": before, "after": after, "diff": lines})
    return changes
