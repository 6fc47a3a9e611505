"""KnowledgeBase: the store, the embedder and the index working together.

Every process that answers questions holds one. A background thread (started by the first
search) and every search check (at most every `refresh_interval` seconds, one cheap query)
whether the store's revision moved, and if so re-embed only the changed entries. So a published edit is live in every process, on every
machine sharing the database, within about a second, with no retraining and no restart.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import yaml

from core.settings import Settings
from knowledge.adaptation import Adaptation, AdaptedMiniLM, text_key, unpack, worth_training as worth_adapting
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
ROOT = Path(__file__).resolve().parents[1]
CALIBRATIONS_READ = 8  # newest calibration rows read to find this process's encoder's (a swap in progress writes both kinds)


@dataclass(frozen=True)
class AdaptPolicy:
    """Whether this process uses (and trains) the knowledge base's own encoder (knowledge/adaptation.py)."""

    use: bool = False  # load the newest adaptation and answer with it
    train: bool = False  # start the training child process (the web process; needs TANDEM_CONFIG)
    delay_s: float = 30.0  # quiet time after the last change before training
    interval_s: float = 600.0  # at most one training started per this many seconds
    steps: int = 200
    threads: int = 1
    log_file: Path | None = None
    poll_s: float = 2.0  # how often the store is asked for a newer adaptation

    @classmethod
    def from_settings(cls, settings: Settings, train: bool) -> "AdaptPolicy":
        return cls(use=settings.faq_adaptation, train=train and settings.faq_adaptation, delay_s=settings.adapt_delay_s,
                   interval_s=settings.adapt_interval_s, steps=settings.adapt_steps, threads=settings.adapt_threads,
                   log_file=settings.var_dir / "logs" / "adaptation.log")


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
        adapt: AdaptPolicy | None = None,
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
        self._base_name = self.encoder_name  # the encoder choose() picked; encoder_name may be its adaptation
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
        # The knowledge base's own encoder (knowledge/adaptation.py).
        self.adapt = adapt or AdaptPolicy()
        self._adaptation: Adaptation | None = None  # in force
        self._adaptation_seen: Adaptation | None = None  # the newest row acted on (accepted or not)
        self._adapt_polled = 0.0
        self._adapt_loading: threading.Thread | None = None
        self._adapt_failed: set[int] = set()
        self._adapt_swap_s = 0.0  # how long the last swap (re-embedding everything) took
        self._trainer: subprocess.Popen[bytes] | None = None
        self._adapt_skipped = -1  # the revision found not worth adapting

    # -- lifecycle -------------------------------------------------------------------------
    def open(self, progress: Progress | None = None) -> None:
        """Load the saved index (rebuilding it if missing or damaged), then catch up."""
        with self._lock:
            self._adopt_saved_adaptation()  # first: a missing index is then built once, with it
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
            self.index = self._build(self.embedder, self.encoder_name, live, revision, progress, batch)
            self._entries = {f.id: f for f in live}
            self.index.save(self.index_dir)
            self._last_check = self._last_save = time.monotonic()
            return len(live)

    def _build(self, embedder: Encoder, name: str, live: list[Faq], revision: int,
               progress: Progress | None = None, batch: int = 512) -> FaqIndex:
        """A new index of these entries embedded by `embedder` (on every core: nothing is served from it yet)."""
        index = FaqIndex(self.index_kind)
        index.encoder = name
        total, done = len(live), 0
        if progress:
            progress(0, total)
        grouped: list[tuple[str, list[str]]] = []
        parts: list[np.ndarray] = []
        for start in range(0, total, batch):
            chunk = live[start : start + batch]
            texts = [f.texts() for f in chunk]
            parts.append(encode_bulk(embedder, [t for group in texts for t in group]))
            grouped += [(f.id, t) for f, t in zip(chunk, texts)]
            done += len(chunk)
            if progress:
                progress(done, total)
        # One add of everything: a large index trains its IVF lists on all of its vectors.
        index.add_bulk(grouped, np.vstack(parts) if parts else np.zeros((0, DIMENSION), dtype=np.float32))
        index.revision = revision
        return index

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
        if name == self._base_name:
            return False
        log.info("knowledge base encoder: %s -> %s (knowledge_language=%s)", self.encoder_name, name, self.language)
        self.embedder, self.encoder_name, self._base_name = encoder(name), name, name
        self._adaptation = None  # adaptations are of MiniLM; a new base starts without one
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
                    kb.adapt_if_due()
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
        self.close_adaptation()
        with self._lock:
            self.save_if_due(0.0)

    # -- self-calibration ------------------------------------------------------------------
    def calibration(self) -> Calibration | None:
        """The newest stored calibration (re-read when the index moved past the one we hold)."""
        if self._calibration is None or self._calibration.revision < self.index.revision:
            if time.monotonic() - self._calibration_read_at >= self.refresh_interval:
                rows = self.store.latest_calibrations(CALIBRATIONS_READ)
                self._calibration_read_at = time.monotonic()
                for row in rows:
                    try:
                        found = Calibration.from_json(row[1])
                    except (ValueError, TypeError, KeyError) as exc:
                        log.warning("unreadable calibration row: %s", exc)
                        continue
                    # Scores of another encoder are on another scale (E5's are compressed, an
                    # adapted MiniLM's higher): its thresholds would be wrong. The newest of this one's.
                    if (found.encoder or MINILM) == self.encoder_name:
                        if self._calibration is None or found.revision >= self._calibration.revision:
                            self._calibration = found
                        break
        return self._calibration

    def calibrate_now(self, sample: int = 1000) -> Calibration:
        """Compute the calibration for the current index and store it (a worker thread calls this)."""
        with self._lock:
            vectors, owners, texts = self.index.rows()
            revision = self.index.revision
            embedder, name = self.embedder, self.encoder_name
            offtopic = self._offtopic
        if offtopic is None:
            offtopic = embedder.encode(offtopic_for(name == E5))
            if self.encoder_name == name:
                self._offtopic = offtopic
        unseen = unlearnt = left_out = None
        if isinstance(embedder, AdaptedMiniLM):  # hold out only what the encoder did not learn
            trained = embedder.adaptation.trained
            unseen = np.array([text_key(o, t) not in trained for o, t in zip(owners, texts)], dtype=bool)
            # it learnt every entry as a cluster: uncovered topics are as its probe measured them
            unlearnt = np.zeros(len(owners), dtype=bool)
            left_out = np.array(embedder.adaptation.left_out, dtype=np.float32)
        result = compute(vectors, owners, offtopic, revision, sample=sample, encoder=name, stretch=score_stretch(name),
                         unseen=unseen, unlearnt=unlearnt, left_out=left_out)
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

    # -- the knowledge base's own encoder (knowledge/adaptation.py) ---------------------------
    def adaptation(self) -> Adaptation | None:
        """The adaptation this process answers with (None: the shipped encoder)."""
        return self._adaptation

    def adaptation_state(self) -> dict[str, object]:
        """What the editor is told: off, waiting, training, loading, in force (and of which revision)."""
        current, seen = self._adaptation, self._adaptation_seen
        if not self.adapt.use or self._base_name != MINILM:
            state = "off"
        elif self._trainer is not None and self._trainer.poll() is None:
            state = "training"
        elif self._adapt_loading is not None and self._adapt_loading.is_alive():
            state = "loading"
        elif current is not None:
            state = "in force"
        elif seen is not None and not seen.accepted:
            state = "shipped encoder kept"
        else:
            state = "waiting" if worth_adapting(self._groups()) else "not enough paraphrases"
        return {"state": state, "encoder": self.encoder_name, "revision": seen.revision if seen else None,
                "summary": seen.summary() if seen else "", "swap_seconds": round(self._adapt_swap_s, 1)}

    def _groups(self) -> list[tuple[str, list[str]]]:
        return [(f.id, f.texts()) for f in list(self._entries.values())]

    def _latest_adaptation(self) -> Adaptation | None:
        row = self.store.latest_adaptation()
        if row is None:
            return None
        try:
            return Adaptation.from_meta(*row)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("unreadable adaptation row %d: %s", row[0], exc)
            return None

    def _adapted_encoder(self, found: Adaptation) -> AdaptedMiniLM:
        return AdaptedMiniLM(found, unpack(self.store.adaptation_weights(found.id)))

    def _adopt_saved_adaptation(self) -> None:
        """At open(): answer with the newest adaptation at once (the saved index was likely made by it)."""
        if not self.adapt.use or self._base_name != MINILM:
            return
        found = self._latest_adaptation()
        if found is None or found.base != MINILM:
            return
        self._adaptation_seen = found
        if not found.accepted:
            return
        try:
            self.embedder, self.encoder_name, self._adaptation = self._adapted_encoder(found), found.name, found
        except Exception as exc:  # noqa: BLE001 - the shipped encoder still answers
            log.warning("adaptation %d could not be loaded: %s", found.id, exc)
            self._adapt_failed.add(found.id)

    def adapt_now(self, found: Adaptation) -> None:
        """Re-embed the knowledge base with an adaptation (or, when it was rejected, with the shipped
        encoder, if another adaptation was in force) and swap encoder and index at once."""
        embedder: Encoder = self._adapted_encoder(found) if found.accepted else encoder(MINILM)
        name = found.name if found.accepted else MINILM
        if name == self.encoder_name:
            self._adaptation_seen = found
            return
        with self._lock:
            live, revision, base = list(self._entries.values()), self.index.revision, self._base_name
        started = time.monotonic()
        index = self._build(embedder, name, live, revision)  # minutes at most; search goes on meanwhile
        with self._lock:
            if self._base_name != base:  # the knowledge base changed encoder meanwhile: this one is stale
                return
            self.embedder, self.encoder_name, self.index = embedder, name, index
            self._adaptation, self._adaptation_seen = (found if found.accepted else None), found
            self._offtopic, self._calibration, self._head, self._head_tried = None, None, None, -1
            self.apply(self.store.changed_since(revision))  # edits made while embedding, on the new encoder
            self._dirty, self._last_change = True, time.monotonic()
        self.save_if_due(0.0)
        self._adapt_swap_s = time.monotonic() - started
        log.info("adaptation %d (revision %d) in force: %d entries re-embedded in %.1fs",
                 found.id, found.revision, len(live), self._adapt_swap_s)

    def adapt_if_due(self) -> None:
        """Start the training child when due (the training process only), and swap in a newer adaptation."""
        if not self.adapt.use or self._base_name != MINILM:
            return
        now = time.monotonic()
        if self.adapt.train:
            self._train_if_due(now)
        if now - self._adapt_polled < self.adapt.poll_s or (self._adapt_loading is not None and self._adapt_loading.is_alive()):
            return
        self._adapt_polled = now
        found = self._latest_adaptation()
        if found is None or found.base != MINILM or found.id in self._adapt_failed:
            return
        if self._adaptation_seen is not None and found.id <= self._adaptation_seen.id:
            return

        def run() -> None:
            try:
                self.adapt_now(found)
            except Exception:  # noqa: BLE001 - keep answering with the encoder in force
                self._adapt_failed.add(found.id)
                log.exception("loading adaptation %d failed", found.id)

        self._adapt_loading = threading.Thread(target=run, name="knowledge-adapt", daemon=True)
        self._adapt_loading.start()

    def _train_if_due(self, now: float) -> None:
        if self._trainer is not None:
            if self._trainer.poll() is None:
                return
            if self._trainer.returncode:
                log.warning("adaptation training exited with %s (see %s)", self._trainer.returncode, self.adapt.log_file)
            self._trainer = None
        revision = self.index.revision
        if revision == 0 or now - self._last_change < self.adapt.delay_s:
            return
        if self._adaptation_seen is not None and self._adaptation_seen.revision >= revision:
            return
        if self._adapt_skipped == revision:
            return
        if not worth_adapting(self._groups()):
            self._adapt_skipped = revision  # asked again only once the knowledge base changes
            return
        claim = self.store.last_adaptation_claim()
        if claim is not None and (claim[0] >= revision or time.time() - claim[1] < self.adapt.interval_s):
            return
        if self.adapt.log_file:
            self.adapt.log_file.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.adapt.log_file, "ab") if self.adapt.log_file else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
        try:
            self._trainer = subprocess.Popen(
                [sys.executable, "-m", "knowledge.adaptation", "--revision", str(revision), "--steps", str(self.adapt.steps),
                 "--threads", str(self.adapt.threads)],
                cwd=str(ROOT), env=dict(os.environ), stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        log.info("adapting the encoder to revision %d (pid %d)", revision, self._trainer.pid)

    def close_adaptation(self) -> None:
        """Stop a training child (the process is shutting down)."""
        trainer, self._trainer = self._trainer, None
        if trainer is not None and trainer.poll() is None:
            trainer.terminate()
            try:
                trainer.wait(5)
            except subprocess.TimeoutExpired:
                trainer.kill()

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
