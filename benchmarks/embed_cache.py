"""Embeddings of benchmark texts, cached on disk by (model, texts) so reruns cost nothing.

Only benchmarks use this; the product embeds through knowledge/embedder.py (the same model).
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CACHE = Path(os.environ.get("TANDEM_BENCH_CACHE", "/tmp/tandem-cache/embeddings"))
_embedders: dict[str, object] = {}


def embedder(model: str = "minilm"):  # type: ignore[no-untyped-def]
    """minilm: knowledge/embedder.py; e5: multilingual-e5-small (the product's choice for Chinese)."""
    if model not in _embedders:
        from knowledge.models import E5, MINILM, encoder

        _embedders[model] = encoder(E5 if model == "e5" else MINILM)
    return _embedders[model]


def embed(texts: Sequence[str], model: str = "minilm") -> np.ndarray:
    key = hashlib.sha1((model + "\x00" + "\x01".join(texts)).encode()).hexdigest()
    path = CACHE / f"{model}-{key}.npy"
    if path.exists():
        return np.load(path)
    vectors = embedder(model).encode(list(texts), batch_size=128)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors
