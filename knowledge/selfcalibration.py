"""Thresholds from the knowledge base itself: no labelled test set needed.

A business imports its FAQ; nobody has labelled its customers' questions. What the knowledge base
does have is several wordings per entry. So, on the index's own vectors (nothing is re-embedded):

* **held-out paraphrases**: each sampled text is asked against the rest of the knowledge base with
  that one text removed. Its own entry should win: these play the answerable customers.
* **left-out entries** ("siblings"): an entry's text asked with its whole entry removed. The best
  score is then another, related entry of the same business: these play the customers asking
  something close to, but not in, the knowledge base (the hardest out-of-scope case). Only
  entries the encoder never trained on say that honestly: an adapted encoder (knowledge/
  adaptation.py) has learnt every trained entry as a cluster, so its left-out entries score low
  whatever a real uncovered topic would score.
* **off-topic questions** Tandem ships (knowledge/offtopic.txt: trivia, maths, weather, recipes,
  sport, chit-chat), off-topic for any business.

The answer threshold is the score that `heldout_target` (90 %) of the rightly ranked held-out
paraphrases reach, but never below the score that refuses `offtopic_target` (95 %) of the off-topic
questions. (Maximising held-out answered + left-out refused was tried too: on the demo held-out set it chose
0.78 and answered 5 % of real questions; see docs/evaluation.md.) It is never stricter than the
"topic floor" either: the score that refuses `topic_target` (95 %) of the texts of entries the
encoder never learnt, asked with their entry left out (knowledge bases of `TOPIC_MIN_ENTRIES`
entries or more; for an adapted encoder, measured on entries its probe training withheld and
passed in). Where the held-out rule is stricter than uncovered topics need (an adapted encoder
on a knowledge base with many paraphrases per entry), this answers the 10 % of wordings it would
refuse for nothing. The clarify floor is 0.05 below the answer threshold: both options must be plausible.

With one text per entry there is no held-out pair: no threshold is derived (`usable` False, the
settings' values stay in force) and the editor is told to add paraphrases. At 5,000 entries the
work is a sample (`sample` texts, default 1,000) against the whole matrix in chunks: a few
seconds of numpy, run in a background thread after the publish, never on an editor's request.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from knowledge.scoring import MASKED, entry_scores as _entry_scores, stretch as _stretch

OFFTOPIC_FILE = Path(__file__).resolve().parent / "offtopic.txt"
OFFTOPIC_ZH_FILE = Path(__file__).resolve().parent / "offtopic.zh.txt"  # for multilingual encoders
GRID = np.round(np.arange(0.20, 0.951, 0.01), 2)
CLARIFY_BELOW = 0.05  # the clarify floor sits this far below the answer threshold
MIN_HELDOUT = 20  # fewer held-out paraphrases than this: too little to trust, keep the settings
TOPIC_MIN_ENTRIES = 10  # a topic floor only for a knowledge base with at least this many entries ...
TOPIC_MIN_LEFT_OUT = 3  # ... measured on at least this many entries the encoder never learnt


def offtopic_questions(path: Path = OFFTOPIC_FILE) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]


def offtopic_for(multilingual: bool) -> list[str]:
    """English off-topic questions, plus the Chinese ones when the encoder reads Chinese (a Chinese
    knowledge base calibrated on English trivia only would refuse nothing Chinese)."""
    return offtopic_questions() + (offtopic_questions(OFFTOPIC_ZH_FILE) if multilingual else [])


@dataclass(frozen=True)
class Calibration:
    """What the knowledge base's own texts say about its thresholds, for one revision."""

    revision: int
    computed_at: float
    entries: int
    texts: int
    faq_threshold: float
    clarify_floor: float
    heldout: int  # held-out paraphrases asked
    heldout_top1: float  # ... whose own entry ranked first (no threshold)
    heldout_answered: float  # ... answered with their own entry at faq_threshold
    siblings: int  # left-out entries asked
    siblings_refused: float
    offtopic: int
    offtopic_refused: float
    seconds: float
    note: str = ""
    encoder: str = ""  # the sentence encoder whose scores these are (knowledge/models.py); "" = MiniLM
    topic_floor: float = 0.0  # the score refusing `topic_target` of unlearnt entries' texts (0: not measured)

    @property
    def usable(self) -> bool:
        return self.heldout >= MIN_HELDOUT

    @property
    def summary(self) -> str:
        if not self.usable:
            return self.note or "not enough paraphrases to calibrate: the configured thresholds are used"
        return (f"answers {self.heldout_answered:.0%} of its own held-out paraphrases; refuses {self.offtopic_refused:.0%} of "
                f"off-topic questions and {self.siblings_refused:.0%} of questions about a topic left out")

    def to_dict(self) -> dict:
        return {**asdict(self), "usable": self.usable, "summary": self.summary}

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Calibration":
        data = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def entry_scores(sims: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
    """(queries x texts) cosine -> (queries x entries): an entry scores its best text (as FaqIndex.search)."""
    out = np.full((sims.shape[0], len(groups)), -1.0, dtype=np.float32)
    for j, cols in enumerate(groups):
        if len(cols):
            out[:, j] = sims[:, cols].max(axis=1)
    return out


def topic_floor_of(left_out: np.ndarray, target: float = 0.95) -> float | None:
    """The lowest score on the grid that refuses `target` of these left-out texts (None: none does)."""
    scores = np.asarray(left_out, dtype=np.float32)
    if not len(scores):
        return None
    enough = [float(t) for t in GRID if float((scores < t).mean()) >= target]
    return enough[0] if enough else None


def left_out_top(vectors: np.ndarray, owners: Sequence[str], rows: np.ndarray, stretch: float = 1.0, chunk: int = 256) -> np.ndarray:
    """The best entry score of each of `rows` asked with its whole entry removed (as compute's
    left-out entries): what a probe measured on the entries it never learnt, kept for later."""
    owners = list(owners)
    position = {faq_id: j for j, faq_id in enumerate(sorted(set(owners)))}
    owner_col = np.array([position[o] for o in owners], dtype=np.int64)
    order = np.argsort(owner_col, kind="stable")
    where = np.empty_like(order)
    where[order] = np.arange(len(order))
    sorted_vectors, sorted_owner = np.ascontiguousarray(vectors[order], dtype=np.float32), owner_col[order]
    starts = np.flatnonzero(np.r_[True, sorted_owner[1:] != sorted_owner[:-1]])
    bounds = list(zip(starts, [*starts[1:], len(sorted_owner)]))
    picked = where[np.asarray(rows, dtype=np.int64)]
    out: list[np.ndarray] = []
    for start in range(0, len(picked), chunk):
        part = picked[start : start + chunk]
        sims = sorted_vectors[part] @ sorted_vectors.T
        for r, i in enumerate(part):
            a, b = bounds[sorted_owner[i]]
            sims[r, a:b] = MASKED
        out.append(_stretch(_entry_scores(sims, starts), stretch).max(axis=1))
    return np.concatenate(out) if out else np.zeros(0)


def compute(
    vectors: np.ndarray, owners: Sequence[str], offtopic: np.ndarray, revision: int,
    sample: int = 1000, offtopic_target: float = 0.95, heldout_target: float = 0.90, seed: int = 0, chunk: int = 256,
    encoder: str = "", stretch: float = 1.0, unseen: np.ndarray | None = None,
    unlearnt: np.ndarray | None = None, topic_target: float = 0.95, left_out: np.ndarray | None = None,
) -> Calibration:
    """Calibrate on the index's vectors (`owners[i]` is the entry of row i) and off-topic vectors.

    `stretch`: the encoder's score stretch (knowledge/scoring.stretch), as the search applies it.
    `unseen`: a mask of the rows an adapted encoder was not trained on (knowledge/adaptation.py);
    only those are held out, since a paraphrase the encoder learned scores near 1 with its entry.
    `unlearnt`: a mask of the rows of entries the encoder never trained on (None: every row, the
    shipped encoder); left-out entries are drawn from those. `left_out`: left-out scores measured
    elsewhere (an adapted encoder's probe, left_out_top), used where this knowledge base cannot
    measure its own: for the share refused and the topic floor."""
    started = time.perf_counter()

    def blend_scores(sims: np.ndarray, starts: np.ndarray) -> np.ndarray:
        return _stretch(_entry_scores(sims, starts), stretch)

    owners = list(owners)
    ids = sorted(set(owners))
    position = {faq_id: j for j, faq_id in enumerate(ids)}
    owner_col = np.array([position[o] for o in owners], dtype=np.int64)
    order = np.argsort(owner_col, kind="stable")  # each entry's texts side by side: one reduceat per chunk
    vectors, owner_col = np.ascontiguousarray(vectors[order], dtype=np.float32), owner_col[order]
    eligible = np.ones(len(owner_col), dtype=bool) if unseen is None else np.asarray(unseen, dtype=bool)[order]
    starts = np.flatnonzero(np.r_[True, owner_col[1:] != owner_col[:-1]]) if len(owner_col) else np.zeros(0, dtype=np.int64)
    groups = [np.arange(a, b) for a, b in zip(starts, [*starts[1:], len(owner_col)])]
    rng = np.random.default_rng(seed)
    multi = np.array([i for i, o in enumerate(owner_col) if len(groups[o]) >= 2 and eligible[i]], dtype=np.int64)
    held = rng.choice(multi, size=min(sample, len(multi)), replace=False) if len(multi) else multi
    pool = np.arange(len(owner_col)) if unlearnt is None else np.flatnonzero(np.asarray(unlearnt, dtype=bool)[order])
    measured = len(ids) >= 2 and len(set(owner_col[pool].tolist())) >= TOPIC_MIN_LEFT_OUT
    if not measured:  # report the entries' questions (for an adapted encoder an optimistic figure)
        pool = np.array([g[0] for g in groups if len(g)], dtype=np.int64)
    siblings = rng.choice(pool, size=min(sample, len(pool)), replace=False) if len(ids) >= 2 else pool[:0]

    def held_out(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row asked with only its own text removed: (best score, second score, best entry)."""
        top, second, winner = [], [], []
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            sims = vectors[part] @ vectors.T
            sims[np.arange(len(part)), part] = MASKED
            scores = blend_scores(sims, starts)
            order = np.argsort(-scores, axis=1)[:, :2]
            top.append(scores[np.arange(len(part)), order[:, 0]])
            second.append(scores[np.arange(len(part)), order[:, 1]] if scores.shape[1] > 1 else np.full(len(part), -1.0))
            winner.append(order[:, 0])
        if not top:
            return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
        return np.concatenate(top), np.concatenate(second), np.concatenate(winner)

    h_top, _h_second, h_win = held_out(held)
    h_right = h_win == owner_col[held] if len(held) else np.zeros(0, dtype=bool)
    if left_out is not None and len(left_out):
        s_top, measured = np.asarray(left_out, dtype=np.float32), True
    else:
        s_top = left_out_top(vectors, owner_col, siblings, stretch, chunk)
    if len(offtopic) and len(vectors):
        o_top = blend_scores(offtopic @ vectors.T, starts).max(axis=1)
    else:
        o_top = np.zeros(0)

    def share(values: np.ndarray, cond: np.ndarray) -> float:
        return float(cond.mean()) if len(values) else 0.0

    note = ""
    if len(held) < MIN_HELDOUT:
        note = (f"only {len(held)} held-out paraphrase(s): add paraphrases (other ways customers ask) to the entries "
                "so Tandem can calibrate itself; until then the configured thresholds are used")
        threshold, floor, topic_floor = float("nan"), float("nan"), None
    else:
        # Off-topic refused at least `offtopic_target` of the time, and below that the score that
        # `heldout_target` of the rightly ranked held-out paraphrases reach.
        allowed = [float(t) for t in GRID if (share(o_top, o_top < t) if len(o_top) else 1.0) >= offtopic_target]
        off_floor = allowed[0] if allowed else float(GRID[-1])
        right_scores = h_top[h_right]
        own = float(np.floor(np.quantile(right_scores, 1 - heldout_target) * 100) / 100) if len(right_scores) else off_floor
        topic_floor = topic_floor_of(s_top, topic_target) if measured and len(ids) >= TOPIC_MIN_ENTRIES else None
        threshold = max(off_floor, min(own, topic_floor) if topic_floor else own)
        # Clarify only between plausible entries: both within 0.05 of the answer threshold (a lower
        # floor made BANKING77's left-out questions get "did you mean" 26 % of the time).
        floor = float(np.round(max(off_floor, threshold - CLARIFY_BELOW), 2))
    t = threshold if threshold == threshold else 1.0  # NaN-safe for the rates below
    return Calibration(
        revision=revision, computed_at=time.time(), entries=len(ids), texts=len(owners),
        faq_threshold=round(threshold, 2) if threshold == threshold else 0.0,
        clarify_floor=floor if floor == floor else 0.0,
        heldout=int(len(held)), heldout_top1=share(h_top, h_right),
        heldout_answered=share(h_top, h_right & (h_top >= t)),
        siblings=int(len(s_top)), siblings_refused=share(s_top, s_top < t),
        offtopic=int(len(o_top)), offtopic_refused=share(o_top, o_top < t),
        seconds=round(time.perf_counter() - started, 3), note=note, encoder=encoder,
        topic_floor=float(topic_floor or 0.0),
    )
