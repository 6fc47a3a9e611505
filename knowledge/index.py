"""A FAISS index over FAQ texts that can change one entry at a time.

Each FAQ contributes one vector per text (question and paraphrases). Vectors live in an
IndexIDMap2, so an edit removes the entry's old vectors and adds its new ones: no rebuild.
A search looks at the nearest vectors and scores each entry from its best texts
(knowledge/scoring.py: the best cosine, as shipped).
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from knowledge.embedder import DIMENSION
from knowledge import scoring
from knowledge.scoring import TOP, entry_score


@dataclass(frozen=True)
class Hit:
    """An FAQ entry and how close the query came to its best-matching text."""

    faq_id: str
    score: float
    matched_text: str


class IndexCorrupt(Exception):
    """The saved index cannot be read; the caller rebuilds it from the store."""


# `auto` (the default): exact flat search while it is fast, an inverted file (IVF) from this many
# vectors on, where a flat scan of 384-d vectors takes several milliseconds (docs/knowledge.md,
# "Scale"). IVF deletes for real and takes live additions into its trained lists.
IVF_FROM_VECTORS = 20_000
IVF_PROBE_SHARE = 1 / 16  # lists visited per query: recall@1 >= 0.99 against exact at 50,000 entries


def _new_ivf(vectors: np.ndarray) -> faiss.Index:
    """An IVF over these vectors' clusters (trained on them), with ids and reconstruct by id."""
    nlist = max(16, int(4 * np.sqrt(len(vectors))))
    quantizer = faiss.IndexFlatIP(DIMENSION)
    index = faiss.IndexIVFFlat(quantizer, DIMENSION, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = 1234  # the same clusters for the same vectors
    index.train(np.ascontiguousarray(vectors, dtype=np.float32))
    index.set_direct_map_type(faiss.DirectMap.Hashtable)  # remove_ids and reconstruct(id) for arbitrary ids
    index.nprobe = max(8, int(nlist * IVF_PROBE_SHARE))
    return index


def _new_faiss(kind: str) -> faiss.Index:
    if kind == "hnsw":
        base = faiss.IndexHNSWFlat(DIMENSION, 32, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efSearch = 64
        base.hnsw.efConstruction = 80
        return faiss.IndexIDMap2(base)
    return faiss.IndexIDMap2(faiss.IndexFlatIP(DIMENSION))


class FaqIndex:
    """Thread-safe: searches and updates come from different threads of the same process."""

    def __init__(self, kind: str = "auto") -> None:
        self.kind = kind
        self._index = _new_faiss(kind)
        self._vector_owner: dict[int, tuple[str, str]] = {}  # vector id -> (faq id, text)
        self._faq_vectors: dict[str, list[int]] = {}
        self._next_id = 1
        self.revision = 0
        self.encoder = ""  # which sentence encoder made the vectors (knowledge/models.py); "" for old files
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._faq_vectors)

    @property
    def vector_count(self) -> int:
        return int(self._index.ntotal)

    def upsert(self, faq_id: str, texts: list[str], vectors: np.ndarray) -> None:
        """Replace the entry's vectors (or add them for a new entry)."""
        with self._lock:
            self.remove(faq_id)
            ids = np.arange(self._next_id, self._next_id + len(texts), dtype=np.int64)
            self._next_id += len(texts)
            if len(texts):
                self._index.add_with_ids(vectors, ids)
            for vid, text in zip(ids.tolist(), texts):
                self._vector_owner[vid] = (faq_id, text)
            self._faq_vectors[faq_id] = ids.tolist()

    def remove(self, faq_id: str) -> None:
        with self._lock:
            ids = self._faq_vectors.pop(faq_id, None)
            if not ids:
                return
            if self.kind == "hnsw":
                # HNSW cannot delete; its vectors stay but stop counting (dropped at next rebuild).
                pass
            else:
                self._index.remove_ids(np.array(ids, dtype=np.int64))
            for vid in ids:
                self._vector_owner.pop(vid, None)

    def add_bulk(self, entries: list[tuple[str, list[str]]], vectors: np.ndarray) -> None:
        """Add many new entries at once (rebuilds): one FAISS call instead of thousands."""
        with self._lock:
            count = sum(len(texts) for _, texts in entries)
            if self.kind == "auto" and not isinstance(self._index, faiss.IndexIVF) and self._index.ntotal + count >= IVF_FROM_VECTORS:
                self._to_ivf(vectors)
            ids = np.arange(self._next_id, self._next_id + count, dtype=np.int64)
            self._next_id += count
            if count:
                self._index.add_with_ids(vectors, ids)
            position = 0
            for faq_id, texts in entries:
                own = ids[position : position + len(texts)].tolist()
                position += len(texts)
                for vid, text in zip(own, texts):
                    self._vector_owner[vid] = (faq_id, text)
                self._faq_vectors[faq_id] = own

    def _to_ivf(self, more: np.ndarray) -> None:
        """Move to an IVF trained on what is indexed plus `more` (the vectors about to be added)."""
        held, _owners = self.matrix()
        index = _new_ivf(np.vstack([held, more]) if len(held) else more)
        if len(held):
            index.add_with_ids(held, np.array(list(self._vector_owner), dtype=np.int64))
        self._index = index

    @property
    def structure(self) -> str:
        """What answers searches now: flat, ivf<lists>/<probes> or hnsw."""
        if isinstance(self._index, faiss.IndexIVF):
            return f"ivf{self._index.nlist}/{self._index.nprobe}"
        return "hnsw" if self.kind == "hnsw" else "flat"

    def search(self, query: np.ndarray, k: int = 5) -> list[Hit]:
        """The k best entries for one query vector, best first."""
        with self._lock:
            if self._index.ntotal == 0:
                return []
            fetch = min(int(self._index.ntotal), max(k * 8 * TOP, 96))
            scores, ids = self._index.search(query.reshape(1, -1).astype(np.float32), fetch)
            found: dict[str, list[float]] = {}
            best_text: dict[str, str] = {}
            best_only = scoring.BEST_WEIGHT == 1.0  # an entry scores its first (best) text: k entries suffice
            for score, vid in zip(scores[0].tolist(), ids[0].tolist()):  # best first
                owner = self._vector_owner.get(vid)
                if owner is None:
                    continue
                faq_id, text = owner
                if faq_id not in found:
                    if best_only and len(found) == k:
                        break
                    found[faq_id] = []
                    best_text[faq_id] = text
                found[faq_id].append(float(score))
        hits = [Hit(faq_id, entry_score(values), best_text[faq_id]) for faq_id, values in found.items()]
        return sorted(hits, key=lambda h: h.score, reverse=True)[:k]

    def matrix(self) -> tuple[np.ndarray, list[str]]:
        """Every live vector and its entry id (self-calibration works on these, no re-embedding)."""
        vectors, owners, _texts = self.rows()
        return vectors, owners

    def rows(self) -> tuple[np.ndarray, list[str], list[str]]:
        """Every live vector, its entry id and its text."""
        with self._lock:
            rows = list(self._vector_owner.items())
            if not rows:
                return np.zeros((0, DIMENSION), dtype=np.float32), [], []
            vectors = np.vstack([self._index.reconstruct(int(vid)) for vid, _ in rows]).astype(np.float32)
        return vectors, [owner[0] for _, owner in rows], [owner[1] for _, owner in rows]

    # -- persistence -----------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write atomically (temp files, then rename), so a crash never leaves half an index."""
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            meta = {
                "kind": self.kind,
                "revision": self.revision,
                "encoder": self.encoder,
                "next_id": self._next_id,
                "owners": {str(k): v for k, v in self._vector_owner.items()},
                "faqs": {k: list(v) for k, v in self._faq_vectors.items()},  # a copy: dumped outside the lock
            }
            fd, tmp_index = tempfile.mkstemp(dir=folder, suffix=".faiss.tmp")
            os.close(fd)
            faiss.write_index(self._index, tmp_index)
        fd, tmp_meta = tempfile.mkstemp(dir=folder, suffix=".json.tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(meta, handle)
        os.replace(tmp_index, folder / "faq.faiss")
        os.replace(tmp_meta, folder / "faq.json")

    @classmethod
    def load(cls, folder: Path) -> "FaqIndex":
        index_file, meta_file = folder / "faq.faiss", folder / "faq.json"
        if not index_file.exists() or not meta_file.exists():
            raise IndexCorrupt(f"no index in {folder}")
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            raw = faiss.read_index(str(index_file))
            self = cls(meta["kind"])
            self._index = raw
            self._vector_owner = {int(k): (v[0], v[1]) for k, v in meta["owners"].items()}
            self._faq_vectors = {k: list(v) for k, v in meta["faqs"].items()}
            self._next_id = int(meta["next_id"])
            self.revision = int(meta["revision"])
            self.encoder = str(meta.get("encoder") or "")
        except Exception as exc:  # any damage at all means: rebuild
            raise IndexCorrupt(f"index in {folder} is unreadable: {exc}") from exc
        if self._index.ntotal < len(self._vector_owner) or self._index.d != DIMENSION:
            raise IndexCorrupt(f"index in {folder} does not match its metadata")
        return self
