"""KnowledgeBase: the store, the embedder and the index working together.

Every process that answers questions holds one. Before a search it checks (at most every
`refresh_interval` seconds, one cheap query) whether the store's revision moved, and if so
re-embeds only the changed entries. So a published edit is live in every process, on every
machine sharing the database, within about a second, with no retraining and no restart.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import yaml

from knowledge.embedder import Embedder
from knowledge.index import FaqIndex, Hit, IndexCorrupt
from knowledge.store import Faq, FaqStore, NotFound

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Match:
    """A search result with what a caller needs to answer or to explain."""

    faq_id: str
    score: float
    question: str
    answer: str
    category: str
    matched_text: str


class KnowledgeBase:
    """Search and keep the index in step with the store. Sync; thread-safe."""

    def __init__(
        self,
        store: FaqStore,
        index_dir: Path,
        embedder: Embedder | None = None,
        refresh_interval: float = 0.5,
        index_kind: str = "flat",
    ) -> None:
        self.store = store
        self.index_dir = index_dir
        self.embedder = embedder or Embedder()
        self.refresh_interval = refresh_interval
        self.index_kind = index_kind
        self.index = FaqIndex(index_kind)
        self._entries: dict[str, Faq] = {}
        self._last_check = 0.0
        self._lock = threading.RLock()

    # -- lifecycle -------------------------------------------------------------------------
    def open(self, progress: Progress | None = None) -> None:
        """Load the saved index (rebuilding it if missing or damaged), then catch up."""
        with self._lock:
            try:
                self.index = FaqIndex.load(self.index_dir)
            except IndexCorrupt as exc:
                log.warning("%s; rebuilding from the store", exc)
                self.rebuild(progress)
                return
            self._entries = {f.id: f for f in self.store.iter_all() if f.status == "published" and not f.deleted}
            self.refresh(force=True)
            if set(self._entries) != set(self.index._faq_vectors):  # noqa: SLF001 - self-check
                log.warning("saved index disagrees with the store; rebuilding")
                self.rebuild(progress)

    def rebuild(self, progress: Progress | None = None, batch: int = 512) -> int:
        """Embed every published entry afresh and save; returns the number of entries."""
        with self._lock:
            revision = self.store.revision()
            live = [f for f in self.store.iter_all() if f.status == "published" and not f.deleted]
            index = FaqIndex(self.index_kind)
            total = len(live)
            done = 0
            if progress:
                progress(0, total)
            for start in range(0, total, batch):
                chunk = live[start : start + batch]
                texts = [f.texts() for f in chunk]
                flat = [t for group in texts for t in group]
                vectors = self.embedder.encode(flat)
                index.add_bulk([(f.id, t) for f, t in zip(chunk, texts)], vectors)
                done += len(chunk)
                if progress:
                    progress(done, total)
            index.revision = revision
            self.index = index
            self._entries = {f.id: f for f in live}
            self.index.save(self.index_dir)
            self._last_check = time.monotonic()
            return total

    # -- staying current -------------------------------------------------------------------
    def refresh(self, force: bool = False) -> int:
        """Apply store changes since the index's revision; returns how many entries changed."""
        now = time.monotonic()
        if not force and now - self._last_check < self.refresh_interval:
            return 0
        with self._lock:
            self._last_check = now
            if self.store.revision() <= self.index.revision:
                return 0
            changed = self.store.changed_since(self.index.revision)
            self.apply(changed)
            self.index.save(self.index_dir)
            return len(changed)

    def apply(self, changed: Iterable[Faq]) -> None:
        """Update the index for these entries (embedding only the ones that stay live)."""
        with self._lock:
            changed = list(changed)
            live = [f for f in changed if f.status == "published" and not f.deleted]
            for faq in changed:
                if faq not in live:
                    self.index.remove(faq.id)
                    self._entries.pop(faq.id, None)
            texts = [f.texts() for f in live]
            vectors = self.embedder.encode([t for group in texts for t in group])
            position = 0
            for faq, group in zip(live, texts):
                self.index.upsert(faq.id, group, vectors[position : position + len(group)])
                position += len(group)
                self._entries[faq.id] = faq
            if changed:
                self.index.revision = max(self.index.revision, max(f.revision for f in changed))

    # -- answering -------------------------------------------------------------------------
    def search(self, text: str, k: int = 5) -> list[Match]:
        """The k best published entries for a customer's text, best first."""
        self.refresh()
        vector = self.embedder.encode([text])[0]
        return self.search_vector(vector, k)

    def search_vector(self, vector: np.ndarray, k: int = 5) -> list[Match]:
        hits: list[Hit] = self.index.search(vector, k)
        matches = []
        for hit in hits:
            entry = self._entries.get(hit.faq_id)
            if entry is None:
                continue
            matches.append(Match(hit.faq_id, hit.score, entry.question, entry.answer, entry.category, hit.matched_text))
        return matches

    def entry(self, faq_id: str) -> Faq:
        found = self._entries.get(faq_id)
        if found is None:
            raise NotFound(f"no published FAQ entry '{faq_id}'")
        return found


def load_faq_file(path: Path) -> list[dict]:
    """Read the demo/seed knowledge base (data/faq.yml)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = data.get("faqs") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a top-level 'faqs' list")
    return [{**e, "status": e.get("status", "published")} for e in entries]


def seed_if_empty(store: FaqStore, path: Path) -> int:
    """Load the demo knowledge base into an empty store; returns entries added (0 if not empty)."""
    if store.revision() > 0:
        return 0
    return store.upsert_many(load_faq_file(path), author="seed")
