"""A customer message's sentence embedding as it travels between processes (issue 13).

Rasa embeds the customer's text once (nlu/embedding.py) and the vector rides in the parse data to
the action server, which searches with it instead of embedding the same text again, when the
knowledge base's encoder made it (KnowledgeBase.search_with). Kept here, free of Rasa, because
the search library owns what a query vector is and the action server should not import Rasa's
engine to read one.

The vector is written as base64 of its little-endian float32 bytes: exact (no rounding), 2.1 kB
of JSON for 384 dimensions where the same numbers as JSON floats take 8.4 kB (3.2 kB rounded to
4 decimals, which would no longer be the same vector; docs/performance.md).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np

EMBEDDING = "text_embedding"  # the key in Rasa's parse data


@dataclass(frozen=True)
class QueryVector:
    """One message's sentence embedding and the encoder that made it."""

    encoder: str
    vector: np.ndarray  # float32, L2-normalised

    def to_dict(self) -> dict[str, Any]:
        data = np.ascontiguousarray(self.vector, dtype="<f4").tobytes()
        return {"encoder": self.encoder, "dim": int(self.vector.shape[0]), "f32": base64.b64encode(data).decode("ascii")}

    @classmethod
    def from_parse(cls, parse: Mapping[str, Any] | None) -> Optional["QueryVector"]:
        """The vector a parse result carries; None when it has none or it is malformed."""
        found = (parse or {}).get(EMBEDDING)
        if not isinstance(found, Mapping):
            return None
        try:
            vector = np.frombuffer(base64.b64decode(str(found["f32"]), validate=True), dtype="<f4").astype(np.float32)
            if vector.shape[0] != int(found["dim"]) or vector.shape[0] == 0 or not np.all(np.isfinite(vector)):
                return None
            return cls(str(found["encoder"]), vector)
        except (KeyError, ValueError, TypeError):
            return None
