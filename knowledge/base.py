"""KnowledgeBase: the store, the embedder and the index working together.

Every process that answers questions holds one. A background thread (started by the first
search) and every search check (at most every `refresh_interval` seconds, one cheap query)
whether the store's revision moved, and if so re-embed only the changed entries. So a published edit is live in every process, on every
machine sharing the database, within about a second, with no retraining and no restart.
"""
from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import yaml

from knowledge.embedder import DIMENSION
from knowledge.entry_head import EntryHead
from knowledge.index import FaqIndex, Hit, IndexCorrupt
from knowledge.models import E5, MINILM, Encoder, choose, encode_bulk, encode_query, encoder, encoder_name, score_stretch
from knowledge.query_vector import QueryVector
from knowledge.scoring import stretch
from knowledge.selfcalibration import Calibration, compute, offtopic_for
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
    rank_score: float | None = None  # cosine + the knowledge base's head (knowledge/entry_head.py); None: no head

    @property
    def rank(self) -> float:
        """What orders the matches: the rank score when a head is in force, else the cosine."""
        return self.score if self.rank_score is None else self.rank_score


class KnowledgeBase:
    """Search and keep the index in step with the store. Sync; thread-safe."""

    def __init__(
        self,
        store: FaqStore,
        index_dir: Path,
        embedder: Encoder | None = None,
        refresh_interval: float = 0.5,
        index_kind: str = "auto",
        auto_calibrate: bool = False,
        language: str = "auto",
        head: bool = True,
    ) -> None:
        self.store = store
        self.index_dir = index_dir
        # The encoder is the knowledge base's choice (knowledge/models.py, setting
        # `knowledge_language`), re-decided by open(), rebuild() and every applied change, unless
        # the caller passes one (tests, benchmarks): then it is fixed.
        self.language = language
        self._fixed_encoder = embedder is not None
        self.embedder: Encoder = embedder or encoder(choose(language, ()))
        self.encoder_name = encoder_name(self.embedder)
        self.refresh_interval = refresh_interval
        self.index_kind = index_kind
        self.index = FaqIndex(index_kind)
        self._entries: dict[str, Faq] = {}
        self._last_check = 0.0
        self._lock = threading.RLock()
        self._watcher: threading.Thread | None = None
        self._closed = threading.Event()
        self.save_interval = 30.0
        self._dirty = False
        self._last_save = 0.0
        # Self-calibration: one process (the web process) computes it in a background thread after
        # the knowledge base changed and has been quiet for `calibrate_delay` seconds; every
        # process reads the newest row from the store.
        self.auto_calibrate = auto_calibrate
        self.calibrate_delay = 1.0
        self._calibration: Calibration | None = None
        self._calibration_read_at = 0.0
        self._calibrating: threading.Thread | None = None
        self._last_change = 0.0
        self._offtopic: np.ndarray | None = None
        # The knowledge base's own head (knowledge/entry_head.py): every answering process trains
        # it in a background thread after the knowledge base changed and is quiet; search uses it
        # only for the revision and encoder it was trained on.
        self.use_head = head
        self._head: EntryHead | None = None
        self._head_training: threading.Thread | None = None
        self._head_tried = -1  # the last revision a fit was started for (worth it or not)

    # -- lifecycle -------------------------------------------------------------------------
    def open(self, progress: Progress | None = None) -> None:
        """Load the saved index (rebuilding it if missing or damaged), then catch up."""
        with self._lock:
            try:
                self.index = FaqIndex.load(self.index_dir)
                self._last_save = time.monotonic()  # the file on disk is this index
            except IndexCorrupt as exc:
                log.warning("%s; rebuilding from the store", exc)
                self.rebuild(progress)
                return
            self._entries = {f.id: f for f in self.store.iter_all() if f.status == "published" and not f.deleted}
            self._decide(self._entries.values())
            if (self.index.encoder or MINILM) != self.encoder_name:
                log.warning("saved index was made by %s, the knowledge base now uses %s; rebuilding",
                            self.index.encoder or MINILM, self.encoder_name)
                self.rebuild(progress)
                return
            self.refresh(force=True)
            if set(self._entries) != set(self.index._faq_vectors):  # noqa: SLF001 - self-check
                log.warning("saved index disagrees with the store; rebuilding")
                self.rebuild(progress)

    def rebuild(self, progress: Progress | None = None, batch: int = 512) -> int:
        """Embed every published entry afresh and save; returns the number of entries."""
        with self._lock:
            revision = self.store.revision()
            live = [f for f in self.store.iter_all() if f.status == "published" and not f.deleted]
            self._decide(live)
            index = FaqIndex(self.index_kind)
            index.encoder = self.encoder_name
            total = len(live)
            done = 0
            if progress:
                progress(0, total)
            grouped: list[tuple[str, list[str]]] = []
            parts: list[np.ndarray] = []
            for start in range(0, total, batch):
                chunk = live[start : start + batch]
                texts = [f.texts() for f in chunk]
                flat = [t for group in texts for t in group]
                parts.append(encode_bulk(self.embedder, flat))  # every core: nothing is served from this index yet
                grouped += [(f.id, t) for f, t in zip(chunk, texts)]
                done += len(chunk)
                if progress:
                    progress(done, total)
            # One add of everything: a large index trains its IVF lists on all of its vectors.
            index.add_bulk(grouped, np.vstack(parts) if parts else np.zeros((0, DIMENSION), dtype=np.float32))
            index.revision = revision
            self.index = index
            self._entries = {f.id: f for f in live}
            self.index.save(self.index_dir)
            self._last_check = self._last_save = time.monotonic()
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
            self._dirty = True
            self._last_change = time.monotonic()
        if self._watcher is None:
            self.save_if_due(0.0)  # no background thread: save now, as before
        return len(changed)

    def save_if_due(self, min_interval: float | None = None) -> bool:
        """Save the index if it changed and the last save is `min_interval` seconds old.

        The saved file is only a cache of the store (open() catches up from its revision), so a
        watching instance saves at most every `save_interval` seconds instead of after every
        edit: at 50,000 entries writing the index takes seconds, which must not delay an edit
        going live.
        """
        wait = self.save_interval if min_interval is None else min_interval
        with self._lock:  # a consistent picture: no refresh half-applied while writing
            if not self._dirty or time.monotonic() - self._last_save < wait:
                return False
            self._dirty = False
            self._last_save = time.monotonic()
            self.index.save(self.index_dir)
            return True

    def _decide(self, entries: Iterable[Faq]) -> bool:
        """Choose the encoder for these entries; True when it changed (the caller rebuilds)."""
        if self._fixed_encoder:
            return False
        name = choose(self.language, (f.question for f in entries))
        if name == self.encoder_name:
            return False
        log.info("knowledge base encoder: %s -> %s (knowledge_language=%s)", self.encoder_name, name, self.language)
        self.embedder, self.encoder_name = encoder(name), name
        self._offtopic = None
        self._calibration = None
        return True

    def apply(self, changed: Iterable[Faq]) -> None:
        """Update the index for these entries (embedding only the ones that stay live)."""
        with self._lock:
            changed = list(changed)
            live = [f for f in changed if f.status == "published" and not f.deleted]
            live_ids = {f.id for f in live}
            if not self._fixed_encoder:
                after = {k: v for k, v in self._entries.items() if k not in {f.id for f in changed}}
                after.update({f.id: f for f in live})
                if self._decide(after.values()):  # e.g. a Chinese FAQ imported: re-embed everything
                    self.rebuild()
                    return
            for faq in changed:
                if faq.id not in live_ids:
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

    def watch(self) -> None:
        """Poll the store every `refresh_interval` in a background thread and apply changes there.

        An edit is then embedded and indexed before the next customer asks, instead of on that
        customer's time. Started by the first search(), so only instances that answer watch;
        the thread holds only a weak reference and ends when the instance is closed or dropped.
        """
        if self._watcher is not None:
            return
        ref = weakref.ref(self)
        interval = max(self.refresh_interval, 0.1)
        closed = self._closed

        def loop() -> None:
            failures = 0
            while not closed.wait(interval):
                kb = ref()
                if kb is None:
                    return
                try:
                    kb.refresh(force=True)
                    kb.save_if_due()
                    kb.calibrate_if_due()
                    kb.train_head_if_due()
                    failures = 0
                except Exception as exc:  # noqa: BLE001 - the database may be restarting; keep trying
                    failures += 1
                    if failures in (1, 10) or failures % 100 == 0:
                        log.warning("knowledge base refresh failed (%d in a row): %s", failures, exc)
                del kb

        self._watcher = threading.Thread(target=loop, name="knowledge-watch", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        """Stop the background watcher and save unsaved changes (searching still works)."""
        self._closed.set()
        with self._lock:
            self.save_if_due(0.0)

    # -- self-calibration ------------------------------------------------------------------
    def calibration(self) -> Calibration | None:
        """The newest stored calibration (re-read when the index moved past the one we hold)."""
        if self._calibration is None or self._calibration.revision < self.index.revision:
            if time.monotonic() - self._calibration_read_at >= self.refresh_interval:
                row = self.store.latest_calibration()
                self._calibration_read_at = time.monotonic()
                if row is not None:
                    try:
                        found = Calibration.from_json(row[1])
                    except (ValueError, TypeError, KeyError) as exc:
                        log.warning("unreadable calibration row: %s", exc)
                    else:
                        # Scores of another encoder are on another scale (E5's are compressed):
                        # its thresholds would be wrong, so wait for this encoder's calibration.
                        if (found.encoder or MINILM) == self.encoder_name:
                            self._calibration = found
        return self._calibration

    def calibrate_now(self, sample: int = 1000) -> Calibration:
        """Compute the calibration for the current index and store it (a worker thread calls this)."""
        with self._lock:
            vectors, owners = self.index.matrix()
            revision = self.index.revision
            embedder, name = self.embedder, self.encoder_name
            offtopic = self._offtopic
        if offtopic is None:
            offtopic = embedder.encode(offtopic_for(name == E5))
            if self.encoder_name == name:
                self._offtopic = offtopic
        result = compute(vectors, owners, offtopic, revision, sample=sample, encoder=name, stretch=score_stretch(name))
        self.store.save_calibration(revision, result.to_json())
        self._calibration = result
        log.info("self-calibration for revision %d: %s (%.2fs)", revision, result.summary, result.seconds)
        return result

    def calibrate_if_due(self) -> bool:
        """Start a background calibration when the index changed since the stored one and is quiet."""
        if not self.auto_calibrate or (self._calibrating is not None and self._calibrating.is_alive()):
            return False
        if self.index.revision == 0 or time.monotonic() - self._last_change < self.calibrate_delay:
            return False
        current = self.calibration()
        if current is not None and current.revision >= self.index.revision:
            return False

        def run() -> None:
            try:
                self.calibrate_now()
            except Exception:  # noqa: BLE001 - a failed calibration keeps the previous thresholds
                log.exception("self-calibration failed")

        self._calibrating = threading.Thread(target=run, name="knowledge-calibrate", daemon=True)
        self._calibrating.start()
        return True

    # -- the knowledge base's own head ------------------------------------------------------
    def head(self) -> EntryHead | None:
        """The head in force: trained on exactly the index's current revision and encoder."""
        head = self._head
        if head is None or head.revision != self.index.revision or head.encoder != self.encoder_name:
            return None
        return head

    def head_pending(self) -> bool:
        """A fit for the current revision is still to come (the editor's "re-ranking: training ...")."""
        return self.use_head and self.index.revision > 0 and (self._head_tried < self.index.revision or
                                                              bool(self._head_training and self._head_training.is_alive()))

    def train_head_now(self) -> EntryHead | None:
        """Fit the head on the current index and swap it in (None: not worth it for this knowledge base)."""
        with self._lock:
            vectors, owners = self.index.matrix()
            revision, name = self.index.revision, self.encoder_name
        self._head_tried = revision
        head = EntryHead.train(vectors, owners, revision, name)
        if head is not None:
            self._head = head
            log.info("knowledge head for revision %d: %d entries, %.2fs", revision, len(head.entries), head.seconds)
        return head

    def train_head_if_due(self) -> bool:
        """Start a background fit when the index moved past the last one tried and is quiet."""
        if not self.use_head or (self._head_training is not None and self._head_training.is_alive()):
            return False
        if self.index.revision in (0, self._head_tried) or time.monotonic() - self._last_change < self.calibrate_delay:
            return False

        def run() -> None:
            try:
                self.train_head_now()
            except Exception:  # noqa: BLE001 - without a head, search is the plain cosine
                log.exception("training the knowledge head failed")

        self._head_training = threading.Thread(target=run, name="knowledge-head", daemon=True)
        self._head_training.start()
        return True

    # -- answering -------------------------------------------------------------------------
    def search(self, text: str, k: int = 5) -> list[Match]:
        """The k best published entries for a customer's text, best first."""
        if self._watcher is None and not self._closed.is_set():
            self.watch()
        self.refresh()
        vector = encode_query(self.embedder, text)
        return self.search_vector(vector, k)

    def search_with(self, text: str, carried: QueryVector | None, k: int = 5) -> list[Match]:
        """search(text), reusing a vector the text was already embedded to (Rasa's parse data,
        nlu/embedding.py) when this knowledge base's encoder made it; else embedding as search() does."""
        if carried is None or carried.encoder != self.encoder_name or carried.vector.shape[0] != DIMENSION:
            return self.search(text, k)
        if self._watcher is None and not self._closed.is_set():
            self.watch()
        self.refresh()
        return self.search_vector(carried.vector, k)

    def search_vector(self, vector: np.ndarray, k: int = 5) -> list[Match]:
        """The k best entries for a query vector: by cosine, re-ranked by the head when one is in force."""
        head = self.head()
        hits: list[Hit] = self.index.search(vector, max(k, 10) if head else k)
        factor = score_stretch(self.encoder_name)  # one score scale for every encoder (knowledge/scoring.stretch)
        matches = []
        for hit in hits:
            entry = self._entries.get(hit.faq_id)
            if entry is None:
                continue
            score = float(stretch(np.array([hit.score], dtype=np.float32), factor)[0])
            matches.append(Match(hit.faq_id, score, entry.question, entry.answer, entry.category, hit.matched_text))
        if head is not None and matches:
            ranks = head.rank_scores(vector, [m.faq_id for m in matches], [m.score for m in matches])
            matches = sorted((replace(m, rank_score=r) for m, r in zip(matches, ranks)), key=lambda m: m.rank, reverse=True)
        return matches[:k]

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
